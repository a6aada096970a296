"""A joint as a Pyro program: ``to_pyro``.

The translation, for a joint whose sites (:func:`~pixyz_pyro.infer.translate.site_plan`)
are in sampling order:

1. put each distribution's trainable parameters in Pyro's parameter store under a stable
   name, ``"{name}{prob_text}$$${parameter path}"`` (see :func:`register_modules`), so
   that SVI finds them;
2. take the data from the keyword arguments, or from the positional ones in the order
   ``cond_var + observed`` (``svi.step(x)``, ``model(x, y)``); every observed variable
   must be there: a missing one is an error, and ``y=None`` (Pyro's ``obs=None``, as
   ``Predictive`` uses it) samples it;
3. sample the ``global_vars`` once, outside the plate;
4. open ``pyro.plate(plate_name, N)`` over the data's ``N`` rows, or, with
   ``subsample_size=B`` / ``subsample=idx``, ``pyro.plate(plate_name, N,
   subsample_size=B)`` as Pyro spells it: the plate draws (or takes) the indices, records
   them in the trace (so that Trace_ELBO replays a guide's indices into the model), the
   batched data are indexed by them, and Pyro scales each site inside by ``N / B``;
5. inside it, emit each variable as ``pyro.sample(var, d.to_event(n), obs=...)``, where
   ``d`` is the factor's own ``pyro_dist`` (the same code the direct executor uses) and
   ``n`` the number of feature dimensions;
6. return the dict of all values.

The number of feature dimensions is counted, not assumed.  Pyro may put extra dims to
the left of the batch (an enumerated discrete variable, vectorised particles,
``Predictive(parallel=True)``); a value then has shape
``extra + batch_shape + features_shape``.  The program records how many ``extra`` dims
each value carries (its dim minus the dims its own site needs) and a factor inherits the
most of its inputs, so that ``n = len(d.batch_shape) - len(extra) - 1``.

A plate of the same name that the caller has already opened (an outer
``pyro.plate("data", N)`` around the program) is used as it is, not opened twice.

The same callable serves as model and as guide.
"""
from typing import Any, Dict, Iterable, List, Optional, Sequence

import pyro
import torch
from pyro.poutine.indep_messenger import IndepMessenger
from pyro.poutine.replay_messenger import ReplayMessenger
from pyro.poutine.runtime import _PYRO_STACK, InferDict

from ..dist.distribution import Distribution
from ..dist.factor import FactorDistribution
from ..errors import VariableError, did_you_mean, missing_vars_message
from .translate import Site, site_plan

_RESERVED = {"_INPUT", "_RETURN"}


def ordered_factors(dist: Distribution) -> List[Distribution]:
    """The atomic distributions of ``dist`` in topological (sampling) order."""
    return [s.dist for s in site_plan(dist)]


def register_modules(modules: Iterable[torch.nn.Module], prefix: str = "",
                     update_module_params: bool = False) -> None:
    """Put each trainable parameter of ``modules`` in Pyro's store, so that SVI finds it.

    The name is ``prefix + prob_text + "$$$" + parameter path`` (the module's
    ``type(m).__name__`` for a module without ``prob_text``), the same in every process,
    so that ``pyro.get_param_store().save()`` and ``load()`` round-trip.  The store then
    refers to the module's own tensor (parameters live in the module).

    When the name already holds another tensor, the module's tensor replaces it, unless
    ``update_module_params``: then the stored value is first copied into the module's
    parameter (as ``pyro.module(..., update_module_params=True)`` does after ``load``).
    """
    store = pyro.get_param_store()
    seen: Dict[str, int] = {}
    for m in modules:
        base = prefix + getattr(m, "prob_text", type(m).__name__)
        seen[base] = seen.get(base, 0) + 1
        if seen[base] > 1:  # two distributions that print alike: number the later ones
            base = f"{base}#{seen[base]}"
        for pname, p in m.named_parameters():
            if not p.requires_grad:
                continue
            full = f"{base}$$${pname}"
            if full in store:
                old = store[full]
                if old is not p:
                    if update_module_params and old.shape == p.shape:
                        with torch.no_grad():
                            p.copy_(old)
                    del store[full]
            pyro.param(full, p)  # every call: SVI finds its parameters by these sites


def _open_plates() -> Dict[str, IndepMessenger]:
    """The plates the caller has open, by name."""
    return {f.name: f for f in _PYRO_STACK if isinstance(f, IndepMessenger)}


def _scalar_constants(f: Distribution, d: Any) -> bool:
    """``f`` is a factor of scalar constants without a declared ``features_shape`` and
    without inputs (``Normal(loc=0., scale=1., var=["z"])``), ``d`` its distribution: the
    direct executor broadcasts it over whatever features its value has."""
    return isinstance(f, FactorDistribution) and not f.features_shape and not f.cond_var \
        and not d.event_shape and tuple(d.batch_shape) in ((), (1,))


def _replayed(name: str) -> Optional[torch.Tensor]:
    """The value that a ``poutine.replay`` around the program gives the latent site
    ``name`` (a guide's draw, as the ELBOs replay it), or ``None``.  The outermost replay
    sets the value last, so it is the one that counts."""
    for frame in _PYRO_STACK:
        trace = getattr(frame, "trace", None) if isinstance(frame, ReplayMessenger) else None
        if trace is not None and name in trace.nodes and \
                trace.nodes[name]["type"] == "sample" and not trace.nodes[name]["is_observed"]:
            return trace.nodes[name]["value"]
    return None


class PyroProgram:
    """A pixyz_pyro distribution as a Pyro model/guide (see :func:`to_pyro`).

    Parameters
    ----------
    dist : Distribution
        The joint to translate.
    observed : sequence of str
        Variables given as data (``obs=``).
    global_vars : sequence of str
        Variables outside the data plate.
    enumerate : sequence of str
        Discrete variables to enumerate in parallel.
    plate_name : str
        The name of the data plate.
    subsample_size, subsample : optional
        Pyro's plate subsampling.
    name : str
        A prefix of the parameter names in Pyro's param store.
    update_module_params : bool
        Pyro's ``pyro.module(..., update_module_params=...)``.

    Examples
    --------
    >>> import pyro, torch
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.infer import to_pyro
    >>> program = to_pyro(Normal(loc=0., scale=1., var=["x"]), observed=["x"])
    >>> type(program).__name__
    'PyroProgram'
    >>> trace = pyro.poutine.trace(program).get_trace(x=torch.zeros(3))
    >>> trace.nodes["x"]["is_observed"], float(trace.log_prob_sum())  # 3 log N(0; 0, 1)
    (True, -2.756815...)
    """

    def __init__(self, dist: Distribution, observed: Sequence[str] = (),
                 global_vars: Sequence[str] = (), enumerate: Sequence[str] = (),
                 plate_name: str = "data", subsample_size: Optional[int] = None,
                 subsample: Optional[torch.Tensor] = None, name: str = "",
                 update_module_params: bool = False):
        self.dist = dist
        self.observed = list(observed)
        self.global_vars = list(global_vars)
        self.enumerate = list(enumerate) + [v for v in getattr(dist, "enumerated_var", ())
                                            if v not in enumerate]
        self.plate_name = plate_name
        self.subsample_size = subsample_size
        self.subsample = subsample
        self.name = name
        self.update_module_params = update_module_params
        self.sites = site_plan(dist)
        names = dist.var
        for v in self.observed + self.global_vars + self.enumerate:
            if v not in names:
                raise VariableError(f'to_pyro: {dist.prob_text} has no variable "{v}"'
                                    f"{did_you_mean(v, names)}; its variables are {names}")
        outer = [s.outer(v) for s in self.sites for v in s.dist.var] + dist.cond_var
        for v in outer:
            if v == plate_name or v in _RESERVED:
                raise VariableError(
                    f'to_pyro: variable "{v}" of {dist.prob_text} clashes with the Pyro '
                    f'{"plate" if v == plate_name else "site"} of the same name; rename it '
                    f"with replace_var or pass plate_name=...")
        self.arg_names = dist.cond_var + [v for v in self.observed if v not in dist.cond_var]
        self._modules = [s.dist for s in self.sites]

    def __repr__(self) -> str:
        return f"to_pyro({self.dist.prob_text}, observed={self.observed})"

    def _data(self, args: Sequence[object], data: Dict) -> Dict:
        if len(args) > len(self.arg_names):
            raise VariableError(
                f"{self!r} takes the data {self.arg_names} (positional, in that order, or "
                f"by keyword); got {len(args)} positional arguments")
        for n, a in zip(self.arg_names, args):
            if n in data:
                raise VariableError(f'{self!r}: "{n}" was given both by position and by '
                                    f"keyword")
            data[n] = a
        missing = [v for v in self.dist.cond_var + self.observed if v not in data]
        if missing:
            raise VariableError(missing_vars_message(repr(self), missing, data,
                                                     "the Pyro program (observed variables "
                                                     "are data, never sampled)"))
        for v in self.observed:
            if data[v] is None:  # Pyro's obs=None: sample it (Predictive, y=None)
                del data[v]
            elif not isinstance(data[v], torch.Tensor):
                raise VariableError(f'{self!r}: the observed variable "{v}" must be a tensor, '
                                    f"got {type(data[v]).__name__}")
        return data

    def _rows(self, data: Dict) -> Optional[int]:
        for k in self.observed + self.dist.cond_var + list(data):
            v = data.get(k)
            if isinstance(v, torch.Tensor) and v.dim() > 0:
                return v.shape[0]
        return None

    def __call__(self, *args: object, **data: object) -> Dict[str, torch.Tensor]:
        values = self._data(args, dict(data))
        register_modules(self._modules, self.name, self.update_module_params)
        extra: Dict[str, int] = {}
        n = self._rows(values)
        is_global = [bool(s.dist.var) and all(s.outer(v) in self.global_vars
                                              for v in s.dist.var) for s in self.sites]
        for s, g in zip(self.sites, is_global):
            if g:
                self._site(s, values, extra, batch=False)
        local = [s for s, g in zip(self.sites, is_global) if not g]
        if n is None:
            for s in local:
                self._site(s, values, extra, batch=False)
            return values
        outer = _open_plates().get(self.plate_name)
        if outer is not None:  # the caller's plate of this name: use it as it is
            for s in local:
                self._site(s, values, extra, batch=True)
            return values
        with pyro.plate(self.plate_name, n, dim=-1, subsample_size=self.subsample_size,
                        subsample=self.subsample) as idx:
            if idx is not None and (self.subsample_size is not None or
                                    self.subsample is not None):
                for k, v in list(values.items()):
                    if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == n \
                            and k not in self.global_vars:
                        values[k] = v.index_select(0, idx.to(v.device))
            for s in local:
                self._site(s, values, extra, batch=True)
        return values

    def _with_features_of(self, d: Any, value: Optional[torch.Tensor], batch: bool) -> Any:
        """``d`` (one scalar distribution) expanded to ``value``'s batch and features
        (the dims to their left are Pyro's: one per open plate but the data plate);
        ``d`` itself without a value: a draw of one scalar per row."""
        if value is None:
            return d
        left = sum(1 for p in _open_plates().values()
                   if p.dim is not None and not (batch and p.name == self.plate_name))
        return d.expand(value.shape[left:]) if value.dim() > left else d

    def _site(self, s: Site, values: Dict, extra: Dict[str, int], batch: bool) -> None:
        if s.kind == "data":
            return
        f = s.dist
        inner = s.inner_values(values)
        n_extra = max((extra.get(s.outer(v), 0) for v in f.cond_var), default=0)
        if s.kind == "deterministic":
            out = f._sample_values(inner, None, True, None)
            for k, v in out.items():
                n_event = max(v.dim() - n_extra - int(batch), 0)
                values[s.outer(k)] = pyro.deterministic(s.outer(k), v, event_dim=n_event)
                extra[s.outer(k)] = n_extra
            return
        var = s.outer(f.var[0])
        observed = var in self.observed and var in values
        d = f.pyro_dist(inner) if observed or not isinstance(f, FactorDistribution) \
            else f.family.build_sampler(f._params(inner, None))
        if _scalar_constants(f, d):  # no declared features: its value's are its own
            d = self._with_features_of(d, values[var] if observed else _replayed(var), batch)
        own = len(d.batch_shape) + len(d.event_shape)
        n_event = max(len(d.batch_shape) - n_extra - int(batch), 0)
        d = d.to_event(n_event) if n_event > 0 else d
        infer: InferDict = {"enumerate": "parallel"} if var in self.enumerate else {}
        obs = values[var] if observed else None
        value = pyro.sample(var, d, obs=obs, infer=infer)
        values[var] = value
        extra[var] = n_extra if obs is not None else max(value.dim() - own, 0) + n_extra


def to_pyro(dist: Distribution, observed: Sequence[str] = (), global_vars: Sequence[str] = (),
            enumerate: Sequence[str] = (), plate_name: str = "data",
            subsample_size: Optional[int] = None, subsample: Optional[torch.Tensor] = None,
            name: str = "", update_module_params: bool = False) -> PyroProgram:
    """Turn a pixyz_pyro distribution or joint into a Pyro program.

    Parameters
    ----------
    dist : Distribution
        A factor or a joint.
    observed : list of str
        Variables given as data (``obs=``).  Each must be in the data of every call.
    global_vars : list of str
        Variables sampled once, outside the data plate (parameters with priors).
    enumerate : list of str
        Discrete variables marked ``infer={"enumerate": "parallel"}`` (besides those of an
        :func:`~pixyz_pyro.infer.enumerated` distribution, always marked).
    plate_name : str
        Name of the data plate.
    subsample_size : int, optional
        Minibatch size: each call on the full data of ``N`` rows draws ``B`` of them, as
        ``pyro.plate(plate_name, N, subsample_size=B)`` does.
    subsample : tensor, optional
        The indices to use instead of drawing them.
    name : str
        A prefix for the parameter-store names (see :func:`register_modules`).
    update_module_params : bool
        Copy values already in the store under this program's names into the modules
        (after ``pyro.get_param_store().load(...)``).

    Examples
    --------
    >>> import torch, pyro
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"]) * Normal(
    ...     loc=0., scale=1., var=["z"], features_shape=[2])
    >>> model = to_pyro(p, observed=["x"])
    >>> tr = pyro.poutine.trace(model).get_trace(torch.zeros(3, 2))
    >>> [n for n in tr.nodes if tr.nodes[n]["type"] == "sample"]
    ['data', 'z', 'x']
    >>> tr.nodes["z"]["fn"].event_shape, tr.nodes["z"]["fn"].batch_shape
    (torch.Size([2]), torch.Size([3]))
    """
    return PyroProgram(dist, observed, global_vars, enumerate, plate_name, subsample_size,
                       subsample, name, update_module_params)
