"""A joint as a Pyro program: ``to_pyro``.

The translation, for a joint with factors in topological order:

1. register each factor's network with ``pyro.module`` under a name unique to that
   module object (so SVI finds the parameters and nothing is shared by accident);
2. open ``pyro.plate(plate_name, B)`` over the data batch ``B`` (dim ``-1``);
3. for each variable, emit ``pyro.sample(var, d.to_event(n), obs=...)``, where ``d`` is
   the factor's own ``pyro_dist`` (the same code the direct executor uses), ``n`` the
   number of feature dimensions, and ``obs`` the data for observed variables;
   ``global_vars`` are sampled once, before the plate;
4. return the dict of all values.

The same callable serves as model and as guide.
"""
from typing import Dict, Iterable, Optional, Sequence

import pyro
import torch

from ..dist.distribution import Distribution
from ..dist.joint import MultiplyDistribution
from ..dist.special import Deterministic, EmpiricalDistribution
from ..errors import VariableError, missing_vars_message

_RESERVED = {"_INPUT", "_RETURN"}


def ordered_factors(dist: Distribution):
    """The factors of ``dist`` in topological (sampling) order."""
    if isinstance(dist, MultiplyDistribution):
        return list(dist._order)
    return [dist]


def module_name(module: torch.nn.Module) -> str:
    """A param-store name unique to this module object."""
    return f"pixyz_pyro_{type(module).__name__}_{id(module):x}"


def register_modules(modules: Iterable[torch.nn.Module]) -> None:
    """``pyro.module`` for each module that has trainable parameters."""
    for m in modules:
        if any(p.requires_grad for p in m.parameters()):
            pyro.module(module_name(m), m)


class PyroProgram:
    """A pixyz_pyro distribution as a Pyro model/guide (see :func:`to_pyro`)."""

    def __init__(self, dist: Distribution, observed: Sequence[str] = (),
                 global_vars: Sequence[str] = (), enumerate: Sequence[str] = (),
                 plate_name: str = "data"):
        self.dist = dist
        self.observed = list(observed)
        self.global_vars = list(global_vars)
        self.enumerate = list(enumerate)
        self.plate_name = plate_name
        self.factors = ordered_factors(dist)
        names = dist.var
        for v in self.observed + self.global_vars + self.enumerate:
            if v not in names:
                raise VariableError(f'to_pyro: {dist.prob_text} has no variable "{v}"; its '
                                    f"variables are {names}")
        for v in names + dist.cond_var:
            if v == plate_name or v in _RESERVED:
                raise VariableError(
                    f'to_pyro: variable "{v}" of {dist.prob_text} clashes with the Pyro '
                    f'{"plate" if v == plate_name else "site"} of the same name; rename it '
                    f"with replace_var or pass plate_name=...")

    def __repr__(self) -> str:
        return f"to_pyro({self.dist.prob_text}, observed={self.observed})"

    def _batch(self, data: Dict) -> Optional[int]:
        for k in self.observed + self.dist.cond_var + list(data):
            v = data.get(k)
            if isinstance(v, torch.Tensor) and v.dim() > 0:
                return v.shape[0]
        return None

    def __call__(self, **data) -> Dict[str, torch.Tensor]:
        missing = [v for v in self.observed + self.dist.cond_var if v not in data]
        if missing:
            raise VariableError(missing_vars_message(repr(self), missing, data, "Pyro"))
        register_modules(self.factors)
        values = dict(data)
        batch = self._batch(data)
        for f in self.factors:
            if f.var and all(v in self.global_vars for v in f.var):
                self._site(f, values)
        if batch is None:
            for f in self.factors:
                if not all(v in self.global_vars for v in f.var):
                    self._site(f, values)
            return values
        with pyro.plate(self.plate_name, batch, dim=-1):
            for f in self.factors:
                if not (f.var and all(v in self.global_vars for v in f.var)):
                    self._site(f, values)
        return values

    def _site(self, f: Distribution, values: Dict) -> None:
        if isinstance(f, EmpiricalDistribution):
            return
        if isinstance(f, Deterministic):
            out = f._sample_values(values, None, True, None)
            for k, v in out.items():
                values[k] = pyro.deterministic(k, v, event_dim=max(v.dim() - 1, 0))
            return
        if not hasattr(f, "pyro_dist"):
            raise NotImplementedError(f"to_pyro: {f.prob_text} ({type(f).__name__}) has no "
                                      f"pyro.distributions form")
        var = f.var[0]
        d = f.pyro_dist(values) if var in self.observed or not hasattr(f, "family") \
            else f.family.build_sampler(f._params(values, None))
        n_event = len(d.batch_shape) - 1 if len(d.batch_shape) > 0 else 0
        if var in self.global_vars:
            n_event = len(d.batch_shape)
        d = d.to_event(n_event) if n_event > 0 else d
        infer = {"enumerate": "parallel"} if var in self.enumerate else {}
        obs = values.get(var) if var in self.observed else None
        values[var] = pyro.sample(var, d, obs=obs, infer=infer)


def to_pyro(dist: Distribution, observed: Sequence[str] = (), global_vars: Sequence[str] = (),
            enumerate: Sequence[str] = (), plate_name: str = "data") -> PyroProgram:
    """Turn a pixyz_pyro distribution or joint into a Pyro program.

    Parameters
    ----------
    dist : Distribution
        A factor or a joint.
    observed : list of str
        Variables given as data (``obs=``).
    global_vars : list of str
        Variables sampled once, outside the data plate (parameters with priors).
    enumerate : list of str
        Discrete variables marked ``infer={"enumerate": "parallel"}``.
    plate_name : str
        Name of the data plate.

    Examples
    --------
    >>> import torch, pyro
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"]) * Normal(
    ...     loc=0., scale=1., var=["z"], features_shape=[2])
    >>> model = to_pyro(p, observed=["x"])
    >>> tr = pyro.poutine.trace(model).get_trace(x=torch.zeros(3, 2))
    >>> [n for n in tr.nodes if tr.nodes[n]["type"] == "sample"]
    ['data', 'z', 'x']
    >>> tr.nodes["z"]["fn"].event_shape, tr.nodes["z"]["fn"].batch_shape
    (torch.Size([2]), torch.Size([3]))
    """
    return PyroProgram(dist, observed, global_vars, enumerate, plate_name)
