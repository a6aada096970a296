"""A joint as a Pyro program: ``to_pyro``.

The translation, for a joint with factors in topological order:

1. register each factor's parameters with ``pyro.param`` under a name unique to that
   module object (so SVI finds them and nothing is shared by accident);
2. open ``pyro.plate(plate_name, B)`` over the data batch ``B`` (dim ``-1``);
3. for each variable, emit ``pyro.sample(var, d.to_event(n), obs=...)``, where ``d`` is
   the factor's own ``pyro_dist`` (the same code the direct executor uses), ``n`` the
   number of feature dimensions, and ``obs`` the data for observed variables;
   ``global_vars`` are sampled once, before the plate;
4. return the dict of all values.

The number of feature dimensions is counted, not assumed.  Pyro may put extra dims to
the left of the batch (an enumerated discrete variable, vectorised particles,
``Predictive(parallel=True)``); a value then has shape
``extra + batch_shape + features_shape``.  The program records how many ``extra`` dims
each value carries (its dim minus the dims its own site needs) and a factor inherits the
most of its inputs, so that ``n = len(d.batch_shape) - len(extra) - 1``.

The same callable serves as model and as guide.
"""
import itertools
import weakref
from typing import Dict, Iterable, Optional, Sequence

import pyro
import torch

from ..dist.distribution import Distribution
from ..dist.joint import MarginalizeVarDistribution, MultiplyDistribution
from ..dist.special import Deterministic, EmpiricalDistribution
from ..errors import VariableError, did_you_mean, missing_vars_message

_RESERVED = {"_INPUT", "_RETURN"}


def ordered_factors(dist: Distribution):
    """The factors of ``dist`` in topological (sampling) order.  A marginal
    ``p.marginalize_var(["z"])`` contributes the factors of ``p``: integrating ``z`` out by
    sampling is what a Pyro model does with a latent site."""
    if isinstance(dist, MarginalizeVarDistribution):
        return ordered_factors(dist.p)
    if isinstance(dist, MultiplyDistribution):
        return [g for f in dist._order for g in ordered_factors(f)]
    return [dist]


_UIDS: "weakref.WeakKeyDictionary[torch.nn.Module, int]" = weakref.WeakKeyDictionary()
_COUNTER = itertools.count()


def module_name(module: torch.nn.Module) -> str:
    """A param-store name unique to this module object for the whole process.

    A counter, not ``id()``: an id is reused after garbage collection, and Pyro's store
    would then hand the new module the old module's tensors.
    """
    uid = _UIDS.get(module)
    if uid is None:
        uid = _UIDS[module] = next(_COUNTER)
    return f"pixyz_pyro_{type(module).__name__}_{uid}"


def register_modules(modules: Iterable[torch.nn.Module]) -> None:
    """Register each trainable parameter with ``pyro.param`` so that SVI finds it.

    The store then refers to the module's own tensors (parameters live in the module).
    An entry that no longer is the module's tensor (the parameter was replaced, e.g. by
    ``.to(device)``) is dropped first, so SVI never trains a stale copy.
    """
    store = pyro.get_param_store()
    for m in modules:
        prefix = module_name(m)
        for pname, p in m.named_parameters():
            if not p.requires_grad:
                continue
            full = f"{prefix}$$${pname}"
            if full in store and store[full] is not p:
                del store[full]
            pyro.param(full, p)


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
                raise VariableError(f'to_pyro: {dist.prob_text} has no variable "{v}"'
                                    f"{did_you_mean(v, names)}; its variables are {names}")
        sites = [v for f in self.factors for v in f.var] + dist.cond_var
        for v in sites:
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
        missing = [v for v in self.dist.cond_var if v not in data]
        if missing:
            raise VariableError(missing_vars_message(repr(self), missing, data, "Pyro"))
        register_modules(self.factors)
        values = dict(data)
        extra: Dict[str, int] = {}
        batch = self._batch(data)
        is_global = [bool(f.var) and all(v in self.global_vars for v in f.var)
                     for f in self.factors]
        for f, g in zip(self.factors, is_global):
            if g:
                self._site(f, values, extra, batch=False)
        local = [f for f, g in zip(self.factors, is_global) if not g]
        if batch is None:
            for f in local:
                self._site(f, values, extra, batch=False)
            return values
        with pyro.plate(self.plate_name, batch, dim=-1):
            for f in local:
                self._site(f, values, extra, batch=True)
        return values

    def _site(self, f: Distribution, values: Dict, extra: Dict[str, int],
              batch: bool) -> None:
        if isinstance(f, EmpiricalDistribution):
            return
        n_extra = max((extra.get(v, 0) for v in f.cond_var), default=0)
        if isinstance(f, Deterministic):
            out = f._sample_values(values, None, True, None)
            for k, v in out.items():
                n_event = max(v.dim() - n_extra - int(batch), 0)
                values[k] = pyro.deterministic(k, v, event_dim=n_event)
                extra[k] = n_extra
            return
        if not hasattr(f, "pyro_dist"):
            raise NotImplementedError(f"to_pyro: {f.prob_text} ({type(f).__name__}) has no "
                                      f"pyro.distributions form")
        var = f.var[0]
        d = f.pyro_dist(values) if var in self.observed or not hasattr(f, "family") \
            else f.family.build_sampler(f._params(values, None))
        own = len(d.batch_shape) + len(d.event_shape)
        n_event = max(len(d.batch_shape) - n_extra - int(batch), 0)
        d = d.to_event(n_event) if n_event > 0 else d
        infer = {"enumerate": "parallel"} if var in self.enumerate else {}
        obs = values.get(var) if var in self.observed else None
        value = pyro.sample(var, d, obs=obs, infer=infer)
        values[var] = value
        extra[var] = n_extra if obs is not None else max(value.dim() - own, 0) + n_extra


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
