"""A family: how parameters become one ``pyro.distributions`` object.

A :class:`Family` is one row of the table in :mod:`pixyz_pyro.dist.families`: the name,
the Pyro class, the parameter names, whether it can be reparameterised, and the checks
of its support.  :func:`lift` turns a row into a :class:`FactorDistribution` subclass,
so users lift any other Pyro distribution in one line:

>>> import pyro.distributions as pd
>>> from pixyz_pyro.dist import lift
>>> StudentT = lift(pd.StudentT, params=("df", "loc", "scale"))
>>> p = StudentT(df=3., loc=0., scale=1., var=["x"])
>>> round(float(p.get_log_prob({"x": torch.zeros(1, 1)})), 4)
-1.0009
"""
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import torch
from pyro.distributions import constraints

_LOG_PROB = Callable[[object, torch.Tensor], torch.Tensor]


def _default_log_prob(d, x: torch.Tensor) -> torch.Tensor:
    return d.log_prob(x)


class Family:
    """How a family's parameters map to ``pyro.distributions``.

    Parameters
    ----------
    name : str
        ``distribution_name`` shown in ``print``.
    pyro_cls : type
        The ``pyro.distributions`` class that scores values (``log_prob``, entropy, KL).
    params : sequence of str
        Parameter names, in Pixyz's order.
    alternatives : mapping
        A parameter that may be given instead of another, e.g. ``{"probs": "logits"}``.
    reparam : bool
        Whether samples are reparameterised.
    sampler_cls : type, optional
        A different class to draw samples with (the relaxed families).
    defaults : mapping
        Constructor defaults (``temperature=0.1``).
    log_prob : callable, optional
        ``(d, x) -> elementwise log-density``; defaults to ``d.log_prob(x)``.
    value_check : callable, optional
        ``x -> problem text or ''``, run on the first ``log_prob``.
    static : mapping
        Non-tensor constructor arguments passed to ``pyro_cls`` (``total_count``).
    """

    def __init__(self, name: str, pyro_cls: type, params: Sequence[str],
                 alternatives: Optional[Mapping[str, str]] = None, reparam: bool = False,
                 sampler_cls: Optional[type] = None, sampler_params: Sequence[str] = (),
                 defaults: Optional[Mapping[str, object]] = None,
                 log_prob: Optional[_LOG_PROB] = None,
                 value_check: Optional[Callable[[torch.Tensor], str]] = None,
                 float_values: bool = True, static: Optional[Mapping[str, object]] = None):
        self.name = name
        self.pyro_cls = pyro_cls
        self.params: Tuple[str, ...] = tuple(params)
        self.alternatives: Dict[str, str] = dict(alternatives or {})
        self.sampler_params: Tuple[str, ...] = tuple(sampler_params)
        self.all_params: Tuple[str, ...] = (self.params + tuple(self.alternatives.values())
                                            + self.sampler_params)
        self.reparam = reparam
        self.sampler_cls = sampler_cls
        self.defaults = dict(defaults or {})
        self.log_prob = log_prob or _default_log_prob
        self.value_check = value_check
        self.float_values = float_values
        self.static = dict(static or {})
        self.all_params += tuple(self.static)

    def __repr__(self) -> str:
        return f"Family({self.name}, {self.pyro_cls.__name__}, params={self.params})"

    def missing(self, params: Mapping[str, object]):
        return [p for p in self.params + self.sampler_params
                if p not in params and self.alternatives.get(p) not in params]

    def _kwargs(self, params: Mapping[str, object], names: Sequence[str]):
        out = {k: params[k] for k in self.static if k in params}
        for p in names:
            if p in params:
                out[p] = params[p]
            elif self.alternatives.get(p) in params:
                out[self.alternatives[p]] = params[self.alternatives[p]]
        return out

    def build(self, params: Mapping[str, object]):
        """The scoring ``pyro.distributions`` object (validation is ours, on first call)."""
        return self.pyro_cls(**self._kwargs(params, self.params), validate_args=False)

    def build_sampler(self, params: Mapping[str, object]):
        if self.sampler_cls is None:
            return self.build(params)
        return self.sampler_cls(**self._kwargs(params, self.sampler_params + self.params),
                                validate_args=False)

    def check_params(self, params: Mapping[str, object]) -> str:
        """Return a problem text if a parameter is outside its constraint, else ``''``."""
        cls = self.sampler_cls or self.pyro_cls
        for cls_ in (self.pyro_cls, cls):
            for k, c in getattr(cls_, "arg_constraints", {}).items():
                v = params.get(k)
                if not isinstance(v, torch.Tensor) or v.requires_grad and v.numel() > 10 ** 7:
                    continue
                if torch.isnan(v).any():
                    return f"parameter {k} contains NaN"
                if c is constraints.real:
                    continue
                try:
                    ok = bool(c.check(v.detach()).all())
                except Exception:  # noqa: BLE001 - a constraint that cannot be checked here
                    continue
                if not ok:
                    return (f"parameter {k} is outside its support ({c}); got values in "
                            f"[{float(v.min()):.4g}, {float(v.max()):.4g}]")
        return ""

    def check_value(self, x: torch.Tensor) -> str:
        if self.value_check is not None:
            return self.value_check(x)
        support = self.pyro_cls.support
        if isinstance(support, constraints.Constraint) and not getattr(
                support, "is_discrete", False):
            try:
                if not bool(support.check(x).all()):
                    return f"is outside the support of {self.name} ({support})"
            except Exception:  # noqa: BLE001
                return ""
        return ""
