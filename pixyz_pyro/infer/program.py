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
   ``n`` the number of feature dimensions; an observed value first passes the direct
   executor's checks (type, dtype, shape), and its features must be the site's event
   shape (Pyro would broadcast the two, counting the value more than once);
6. return the dict of all values.

The number of feature dimensions is counted, not assumed.  Pyro may put extra dims to
the left of the batch (an enumerated discrete variable, vectorised particles,
``Predictive(parallel=True)``); a value then has shape
``extra + batch_shape + features_shape``.  The program records how many ``extra`` dims
each value carries (its dim minus the dims its own site needs) and a factor inherits the
most of its inputs, so that ``n = len(d.batch_shape) - len(extra) - 1``.

A factor without a declared ``features_shape`` whose parameters have no features
(``Normal(loc="w", scale=1.)`` of a global ``w`` drawn by ``Normal(loc=0., scale=1.)``)
takes its value's features, as the direct executor broadcasts it: those of the observed
value, or the event shape of the guide's draw that Pyro replays.  ``y`` of shape
``(N, 1)`` is then one site of event shape ``(1,)``, with one ``log_prob`` per row.

A plate of the same name that the caller has already opened (an outer
``pyro.plate("data", N)`` around the program) is used as it is, not opened twice.

The same callable serves as model and as guide.
"""
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import pyro
import torch
from pyro.poutine.indep_messenger import IndepMessenger
from pyro.poutine.replay_messenger import ReplayMessenger
from pyro.poutine.runtime import _PYRO_STACK, InferDict, Message

from ..dist.distribution import Distribution
from ..dist.factor import FactorDistribution
from ..dist.shapes import SHAPES, shape_str
from ..dist.validation import checking
from ..errors import ParameterError, ShapeError, VariableError, did_you_mean, missing_vars_message
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

    When the name already holds another tensor, the module's tensor replaces it (a
    module made anew, in a notebook, after ``load``), unless ``update_module_params``:
    then the stored value is first copied into the module's parameter (as
    ``pyro.module(..., update_module_params=True)`` does after ``load``).  Where the other
    tensor is the one that the program replayed around this one registered in the same
    step (a guide and a model whose distributions print alike, both ``p(z)``, Pixyz's
    default name), it is an error: one of the two would never be trained.
    """
    store = pyro.get_param_store()
    seen: Dict[str, int] = {}
    for m in modules:
        text = getattr(m, "prob_text", type(m).__name__)
        base = prefix + text
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
                    replayed = _replayed(full, "param")
                    if replayed is not None and replayed["value"] is old:
                        raise ParameterError(
                            f'to_pyro: the parameter "{full}" of {text} ({type(m).__name__}) '
                            f"has the same Pyro param-store name as the parameter of another "
                            f"distribution that prints as {text}, in the program run before "
                            f"this one (the guide): SVI would train only one of the two. Give "
                            f'one of them its own name (name="q" on the distribution) or a '
                            f'prefix (to_pyro(..., name="guide."))')
                    if update_module_params and old.shape == p.shape:
                        with torch.no_grad():
                            p.copy_(old)
                    del store[full]
            pyro.param(full, p)  # every call: SVI finds its parameters by these sites


def _open_plates() -> Dict[str, IndepMessenger]:
    """The plates the caller has open, by name."""
    return {f.name: f for f in _PYRO_STACK if isinstance(f, IndepMessenger)}


def _featureless(f: Distribution, d: Any, n_extra: int) -> bool:
    """``f`` is a factor without a declared ``features_shape`` whose parameters, ``d``'s
    batch shape without the ``n_extra`` dims to its left, are ``()`` or ``(1,)``
    (``Normal(loc=0., scale=1.)``, or ``Normal(loc="w", scale=1.)`` of a global ``w`` of
    no features): the direct executor broadcasts it over whatever features its value
    has."""
    return isinstance(f, FactorDistribution) and not f.features_shape and \
        not d.event_shape and tuple(d.batch_shape)[n_extra:] in ((), (1,))


def _replayed(name: str, kind: str = "sample") -> Optional[Message]:
    """The site ``name`` of type ``kind`` that a ``poutine.replay`` around the program
    replays (the guide's, as the ELBOs and ``Predictive`` replay it): a latent draw
    (``"sample"``, never an observed one) or a parameter (``"param"``); ``None`` if none.
    The outermost replay sets the value last, so it is the one that counts."""
    for frame in _PYRO_STACK:
        trace = getattr(frame, "trace", None) if isinstance(frame, ReplayMessenger) else None
        node = trace.nodes.get(name) if trace is not None else None
        if node is not None and node["type"] == kind and not node.get("is_observed"):
            return node
    return None


def _widened(f: FactorDistribution, d: Any, params: Dict, n_extra: int, own: Tuple[int, ...],
             sampler: bool) -> Any:
    """``d``, of batch shape ``extra + ()`` or ``extra + (1,)``, as the distribution of
    batch shape ``extra + own`` (``own`` ends with the value's features): the same numbers,
    broadcast.  Without ``extra`` dims an ``expand``; with them the parameters get trailing
    dims of 1 first (``expand`` only adds dims on the left)."""
    mine = len(d.batch_shape) - n_extra
    if len(own) < mine:
        return d
    if n_extra and len(own) > mine:
        grow = (1,) * (len(own) - mine)
        params = {k: t.reshape(t.shape + grow) if isinstance(t, torch.Tensor) and t.dim() > 0
                  and k not in f._static else t for k, t in params.items()}
        d = f.family.build_sampler(params) if sampler else f.family.build(params)
    return d.expand(tuple(d.batch_shape)[:n_extra] + tuple(own))


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

    @staticmethod
    def _check_observed(f: Distribution, obs: torch.Tensor, params: Optional[Dict],
                        n_extra: int, batch: bool) -> None:
        """The direct executor's checks of an observed value (its type and dtype always;
        its shape against the parameters where these have no extra dims), by the same
        validation policy and with the same messages."""
        if not isinstance(f, FactorDistribution) or params is None or not checking():
            return
        f._check_value_metadata(params if batch and not n_extra else {}, None, obs)

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
        obs = values[var] if observed else None
        factor = f if isinstance(f, FactorDistribution) else None
        params = factor._params(inner, None) if factor is not None else None
        if factor is None or params is None:
            d = f.pyro_dist(inner)
        else:
            fam: Any = factor.family
            d = fam.build(params) if observed else fam.build_sampler(params)
        if obs is not None:
            self._check_observed(f, obs, params, n_extra, batch)
        if factor is not None and params is not None and _featureless(factor, d, n_extra):
            # no declared features: its value's are its own, as in the direct executor
            own = _own_shape(obs, _replayed(var), batch)
            if own is not None:
                d = _widened(factor, d, params, n_extra, own, obs is None)
        own_dims = len(d.batch_shape) + len(d.event_shape)
        n_event = max(len(d.batch_shape) - n_extra - int(batch), 0)
        d = d.to_event(n_event) if n_event > 0 else d
        if obs is not None and batch and tuple(obs.shape[1:]) != tuple(d.event_shape):
            raise ShapeError(
                f'to_pyro: the observed site "{var}" of {f.prob_text} has shape '
                f"{shape_str(obs.shape)}, whose features are {shape_str(obs.shape[1:])}"
                f", but its distribution has event shape {shape_str(d.event_shape)} (batch "
                f"shape {shape_str(d.batch_shape)}): Pyro would broadcast the two and count "
                f"the value more than once; give the factor features_shape=[...] or the "
                f"value the features it declares ({SHAPES})")
        infer: InferDict = {"enumerate": "parallel"} if var in self.enumerate else {}
        value = pyro.sample(var, d, obs=obs, infer=infer)
        values[var] = value
        extra[var] = n_extra if obs is not None else max(value.dim() - own_dims, 0) + n_extra


def _own_shape(obs: Optional[torch.Tensor], replayed: Optional[Message], batch: bool
               ) -> Optional[Tuple[int, ...]]:
    """The shape a featureless factor's distribution takes right of the extra dims: a
    batch dim of 1 (inside the data plate) and the features of its value, the observed
    one (data: its rows, then its features) or the event shape of the guide's draw that
    replays it; ``None`` without either."""
    if obs is not None:
        features = tuple(obs.shape[int(batch):])
    elif replayed is not None:
        features = tuple(getattr(replayed["fn"], "event_shape", ()))
    else:
        return None
    return ((1,) if batch else ()) + features


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
