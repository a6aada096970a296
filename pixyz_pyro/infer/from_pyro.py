"""Existing Pyro code as a pixyz_pyro distribution: ``from_pyro``.

A Pyro model or guide ``fn(**cond)`` becomes a :class:`Distribution` over the sites
named in ``var``:

* sampling runs ``fn`` under ``poutine.trace`` and reads the site values;
* the log-density runs ``fn`` under ``poutine.condition`` (the values of ``var``) and
  ``poutine.trace``, and sums the sites' log-densities (with their ``poutine.scale``
  and mask, as Pyro's ELBOs do) over their event and feature dimensions, one value per
  batch element.

``fn`` receives ``cond_var`` as keyword arguments, and also the variables of ``var``
that it takes as arguments (a Pyro model ``model(x)`` that observes ``obs=x``).

Its parameters are those of the ``nn.Module`` given as ``module`` (found automatically
when ``fn`` is a bound method of an ``nn.Module``, as in Pyro's VAE tutorial).  Then
``KullbackLeibler``, ``ELBO``, ``Expectation`` and extra terms work on existing Pyro code.
"""
import inspect
from typing import Optional, Sequence

import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask

from ..dist.distribution import Distribution
from ..dist.factor import _sum_features


class PyroFunctionDistribution(Distribution):
    """A Pyro program as a distribution (see :func:`from_pyro`)."""

    has_reparam = True

    def __init__(self, fn, var: Sequence[str], cond_var: Sequence[str] = (), name: str = "p",
                 module: Optional[torch.nn.Module] = None):
        super().__init__(var, cond_var, name)
        object.__setattr__(self, "_fn", fn)
        if module is None and isinstance(getattr(fn, "__self__", None), torch.nn.Module):
            module = fn.__self__
        if module is not None:
            self.module = module
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):  # a builtin or C callable: pass cond_var only
            params = {}
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        object.__setattr__(self, "_arg_vars",
                           tuple(v for v in self._var if takes_any or v in params))

    @property
    def distribution_name(self) -> str:
        return f"Pyro({getattr(self._fn, '__name__', 'fn')})"

    def _inputs(self, values):
        """The keyword arguments: ``cond_var``, plus the variables of ``var`` that ``fn``
        takes as arguments when they are known (a model's ``obs=x``)."""
        self._require(values, self._cond_var, "running the Pyro program")
        out = {v: values[v] for v in self._cond_var}
        out.update({v: values[v] for v in self._arg_vars if v in values})
        return out

    def _trace(self, values, condition: bool):
        fn = self._fn
        if condition:
            fn = poutine.condition(fn, data={v: values[v] for v in self._var})
        return poutine.trace(fn).get_trace(**self._inputs(values))

    def _sample_values(self, values, ctx, reparam, batch_n):
        tr = self._trace(values, condition=False)
        return {v: tr.nodes[v]["value"] for v in self._var}

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        self._require(values, self._var, "log_prob")
        tr = self._trace(values, condition=True)
        total = None
        for v in self._var:
            site = tr.nodes[v]
            lp = scale_and_mask(site["fn"].log_prob(site["value"]), site["scale"],
                                site["mask"])
            lp = _sum_features(lp, sum_features, feature_dims)
            total = lp if total is None else total + lp
        return total

    def pyro_dist(self, values, ctx=None):
        """The site distribution of the single variable (for analytic KL).

        Running ``fn`` draws the site's value; the random state is restored afterwards,
        so an analytic KL leaves the draws of the other terms as they were.
        """
        if len(self._var) != 1:
            raise NotImplementedError("pyro_dist needs a single variable")
        cuda = sorted({t.device.index or 0 for t in values.values()
                       if isinstance(t, torch.Tensor) and t.is_cuda})
        with torch.random.fork_rng(devices=cuda):
            tr = self._trace(values, condition=False)
        d = tr.nodes[self._var[0]]["fn"]
        while hasattr(d, "base_dist") and type(d).__name__ in ("Independent",):
            d = d.base_dist
        return d


def from_pyro(fn, var: Sequence[str], cond_var: Sequence[str] = (), name: str = "p",
              module: Optional[torch.nn.Module] = None) -> PyroFunctionDistribution:
    """Wrap a Pyro model or guide as a pixyz_pyro distribution over ``var``.

    Examples
    --------
    >>> import torch, pyro, pyro.distributions as pd
    >>> def guide(x):
    ...     with pyro.plate("data", x.shape[0]):
    ...         pyro.sample("z", pd.Normal(x, 1.).to_event(1))
    >>> q = from_pyro(guide, var=["z"], cond_var=["x"], name="q")
    >>> q.prob_text
    'q(z|x)'
    >>> q.get_log_prob({"x": torch.zeros(2, 3), "z": torch.zeros(2, 3)}).shape
    torch.Size([2])
    """
    return PyroFunctionDistribution(fn, var, cond_var, name, module)
