"""Existing Pyro code as a pixyz_pyro distribution: ``from_pyro``.

A Pyro model or guide becomes a :class:`Distribution` whose log-density is read from
ONE run of the function:

1. the function runs once under ``poutine.trace``, with its arguments taken from the
   data (``inputs=`` maps argument names to data names; by default an argument takes the
   variable of its own name, and a non-tensor argument passes through unchanged);
2. sampling reads the values of the trace's sample sites (``sites=`` maps variable names
   to site names; by default a variable is the site of its own name);
3. the log-density of those very values is read from the same trace, so a guide runs
   once per step and its draws are Pyro's draws; values that did not come from this
   distribution's own draw are scored by one run under ``poutine.condition``;
4. the log-density sums every counted site with its scale and mask (see
   :mod:`pixyz_pyro.infer.site_terms` for the per-row rule: rows of the data plate,
   global sites spread over the rows so that ``.sum()`` is Pyro's number).  Counted are
   the sites of ``var``, every site the function observes itself (``obs=``, listed in
   ``var`` or not) and auxiliary sites (an AutoGuide's unconstrained draw).  Another
   latent site is integrated out by sampling: a model replays it from the data when its
   value is there (as Pyro replays a guide's sites), and does not count it.  A scoring
   run that had to draw such a site leaves the random state as it found it, so that
   scoring never moves the draws of the terms after it.

Each site keeps its own reparameterisation: a site whose distribution has no
``rsample`` (a ``OneHotCategorical`` in a guide) refuses a reparameterised expectation
with a :class:`~pixyz_pyro.errors.LossError`; :func:`pyro_elbo` gives Pyro's
score-function surrogate for it.  A site the function marks
``infer={"enumerate": "parallel"}`` (``config_enumerate``) is instead summed out inside an
expectation, as ``TraceEnum_ELBO`` does: the draw runs once under Pyro's
``EnumMessenger`` (:meth:`PyroFunctionDistribution._draw`, see
:mod:`pixyz_pyro.infer.enumeration`).

Parameters live in the modules that own them: the ``nn.Module`` given as ``module``
(found automatically for a bound method of a module, or a module used as the function),
and the function's own ``pyro.param`` sites, held by the distribution
(:mod:`pixyz_pyro.infer.local_params`).  Pyro's global parameter store is not used.
"""
import inspect
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Sequence

import torch
from pyro import poutine
from pyro.poutine.enum_messenger import EnumMessenger

from ..dist.distribution import Distribution, Draw
from ..errors import LossError, VariableError, did_you_mean
from .enumeration import (
    EnumLayout,
    enumerated_sites,
    fold_inputs,
    fold_site_value,
    folded_log_prob,
    layout,
    log_weight,
)
from .local_params import LocalParams
from .site_terms import (
    find_data_plate,
    per_row_log_prob,
    sample_sites,
    subsample_sites,
)


class _Folded(NamedTuple):
    """An enumerated draw remembered in the context: its trace and how it was folded."""

    trace: Any
    layout: EnumLayout
    frame: object


def _signature(fn):
    if isinstance(fn, torch.nn.Module):  # a module is called through its forward
        fn = fn.forward
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin or C callable: keyword arguments only
        return None


def _fn_name(fn) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return name or type(fn).__name__


class PyroFunctionDistribution(Distribution):
    """A Pyro program as a distribution (see :func:`from_pyro`).

    Parameters
    ----------
    fn : callable
        The Pyro function (a model or a guide).
    var, cond_var : sequence of str
        The variables it defines and takes (see :func:`from_pyro`).
    name : str
        The name in formulas.
    module : nn.Module, optional
        The module that owns the function's parameters.
    inputs, sites : dict, optional
        Argument names and site names, when they differ from the variables.
    plate : str, optional
        The data plate's name.
    max_plate_nesting : int
        Plates nested around a site, for sites marked for enumeration (default 1).

    Examples
    --------
    >>> import torch, pyro, pyro.distributions as pd
    >>> from pixyz_pyro.infer import from_pyro
    >>> def model():
    ...     pyro.sample("x", pd.Normal(torch.zeros(2), 1.).to_event(1))
    >>> p = from_pyro(model, var=["x"])
    >>> isinstance(p, PyroFunctionDistribution), p.prob_text
    (True, 'p(x)')
    >>> p.get_log_prob({"x": torch.zeros(1, 2)})  # -log(2 pi)
    tensor([-1.8379])
    """

    _fn: Callable[..., Any]  # the Pyro function (not a submodule)

    #: Whether samples carry gradients is decided per site, on every draw (see
    #: :meth:`_sample_values`); the expectation's own check is left to it.
    has_reparam = True
    #: An expectation over it sums out the sites the function marks for enumeration.
    enumerates = True

    def __init__(self, fn, var: Sequence[str], cond_var: Optional[Sequence[str]] = None,
                 name: str = "p", module: Optional[torch.nn.Module] = None,
                 inputs: Optional[Mapping[str, str]] = None,
                 sites: Optional[Mapping[str, str]] = None, plate: Optional[str] = None,
                 max_plate_nesting: int = 1):
        params = _signature(fn)
        self_inputs = dict(inputs or {})
        if params is not None:
            takes_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
            args = [a for a, p in params.items()
                    if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            unknown = [a for a in self_inputs if a not in args]
            if unknown and not takes_kw:
                raise VariableError(
                    f"from_pyro({_fn_name(fn)}): inputs= names the argument "
                    f'"{unknown[0]}"{did_you_mean(unknown[0], args)}, but the function '
                    f"takes ({', '.join(args)})")
            required = [a for a in args if params[a].default is inspect.Parameter.empty]
        else:
            takes_kw, args, required = True, [], []
        var = [var] if isinstance(var, str) else list(var)
        arg_data = {a: self_inputs.get(a, a) for a in args}
        arg_data.update(self_inputs)
        if cond_var is None:
            cond_var = [d for a, d in arg_data.items() if a in required and d not in var]
        super().__init__(var, cond_var, name)
        object.__setattr__(self, "_fn", fn)
        if module is None:
            owner = getattr(fn, "__self__", None)
            module = owner if isinstance(owner, torch.nn.Module) else \
                fn if isinstance(fn, torch.nn.Module) else None
        if module is not None:
            self.module = module
        self.pyro_params = torch.nn.ParameterDict()
        self._constraints: Dict[str, object] = {}
        self._arg_data = arg_data
        self._takes_kw = takes_kw
        self._positional_only = [a for a in args if params[a].kind is
                                 inspect.Parameter.POSITIONAL_ONLY] if params else []
        self._sites = {v: (sites or {}).get(v, v) for v in self._var}
        unknown = [v for v in (sites or {}) if v not in self._var]
        if unknown:
            raise VariableError(f"from_pyro({_fn_name(fn)}): sites= maps the variable "
                                f'"{unknown[0]}", which is not in var {self._var}')
        self._plate = plate
        if not isinstance(max_plate_nesting, int) or max_plate_nesting < 1:
            raise ValueError(f"from_pyro({_fn_name(fn)}): max_plate_nesting must be a "
                             f"positive int, got {max_plate_nesting!r}")
        self.max_plate_nesting = max_plate_nesting

    # --- description ------------------------------------------------------------------
    @property
    def distribution_name(self) -> str:
        return f"Pyro({_fn_name(self._fn)})"

    @property
    def fn(self):
        """The wrapped function."""
        return self._fn

    # --- running the function --------------------------------------------------------------
    def _call_args(self, values):
        """The arguments of one call: every argument whose data name is in ``values``
        (a function taking ``**kwargs`` also gets ``cond_var`` and the variables)."""
        kwargs = {a: values[d] for a, d in self._arg_data.items() if d in values}
        if self._takes_kw:
            for v in self._cond_var + self._var:
                if v in values and v not in kwargs and v not in self._sites.values():
                    kwargs[v] = values[v]
        args = [kwargs.pop(a) for a in self._positional_only if a in kwargs]
        return args, kwargs

    def _n_rows(self, values) -> Optional[int]:
        """The rows of the batch: of the first batched input of the function, else of the
        first batched value of the evaluation that is not one of ``var``."""
        for d in list(self._cond_var) + list(self._arg_data.values()):
            t = values.get(d)
            if isinstance(t, torch.Tensor) and t.dim() > 0:
                return t.shape[0]
        for k, t in values.items():
            if k not in self._var and isinstance(t, torch.Tensor) and t.dim() > 0:
                return t.shape[0]
        return None

    def _run(self, values, condition: Optional[Dict] = None, enum: bool = False):
        self._require(values, self._cond_var, "running the Pyro program")
        args, kwargs = self._call_args(values)
        fn = self._fn if not condition else poutine.condition(self._fn, data=condition)
        if enum:  # as TraceEnum_ELBO runs a guide: its marked sites take every value
            fn = EnumMessenger(first_available_dim=-1 - self.max_plate_nesting)(fn)
        with LocalParams(self.pyro_params, self._constraints):
            return poutine.trace(fn).get_trace(*args, **kwargs)

    def _site_of(self, trace, v: str, values) -> Optional[str]:
        """The site of variable ``v`` in ``trace``; ``None`` for a variable that is an
        argument (data the function observes itself); an error for one that is neither."""
        s = self._sites[v]
        if s in trace.nodes and trace.nodes[s]["type"] == "sample":
            return s
        if v in self._arg_data.values() and v in values:
            return None
        found = sample_sites(trace)
        raise VariableError(
            f'{self.prob_text}: the variable "{v}" has no sample site "{s}" in '
            f"{_fn_name(self._fn)}{did_you_mean(s, found)}; its sites are {found} (map a "
            f"variable to a site with sites={{\"{v}\": ...}})")

    # --- executor protocol --------------------------------------------------------------
    def _sample_values(self, values, ctx, reparam, batch_n, score_only: bool = False):
        return self._outputs(self._run(values), values, ctx, reparam, score_only)

    def _outputs(self, tr, values, ctx, reparam, score_only: bool = False):
        """The draw of one trace: the variables, and the other sites for a model."""
        out = {}
        for v in self._var:
            s = self._site_of(tr, v, values)
            out[v] = tr.nodes[s]["value"] if s is not None else values[v]
        names = sample_sites(tr)
        if reparam and not score_only and torch.is_grad_enabled():
            self._check_reparam(tr, names)
        site_var = {s: v for v, s in self._sites.items()}
        for n in names:  # the function's other sites, for a model to replay
            if n not in site_var and n not in values:
                out.setdefault(n, tr.nodes[n]["value"])
        for n in subsample_sites(tr):  # the plate's indices, for a model to replay
            out.setdefault(n, tr.nodes[n]["value"])
        if ctx is not None:
            ctx.remember(self, self._key(out), (tr, self._n_rows(values)))
        return out

    def _draw(self, values, ctx, reparam, batch_n) -> Draw:
        """One run under Pyro's ``EnumMessenger``: plain draws, or, where the function
        marks sites for enumeration, every value of theirs folded into the batch (see
        :mod:`pixyz_pyro.infer.enumeration`)."""
        tr = self._run(values, enum=True)
        enum = enumerated_sites(tr)
        if not enum:
            return Draw(values, self._outputs(tr, values, ctx, reparam), None, 1)
        names = sample_sites(tr)
        n_rows = self._n_rows(values)
        frame = find_data_plate(tr, self._plate, n_rows)
        lay = layout(tr, names, frame, n_rows, f"{self.prob_text} ({_fn_name(self._fn)})")
        if reparam and torch.is_grad_enabled():
            self._check_reparam(tr, [n for n in names if n not in enum])
        inputs = fold_inputs(values, lay)
        out = {}
        for v in self._var:
            s = self._site_of(tr, v, values)
            out[v] = inputs[v] if s is None else \
                fold_site_value(tr.nodes[s]["value"], tr.nodes[s]["fn"].event_dim, lay)
        site_var = {s: v for v, s in self._sites.items()}
        for n in names:  # the function's other sites, for a model to replay
            if n not in site_var and n not in values:
                site = tr.nodes[n]
                out.setdefault(n, fold_site_value(site["value"], site["fn"].event_dim, lay)
                               if site["cond_indep_stack"] else site["value"])
        if ctx is not None:
            ctx.remember(self, self._key(out), _Folded(tr, lay, frame))
        return Draw(inputs, out, log_weight(tr, frame, lay), lay.k)

    def _key(self, values):
        return tuple(values[v] for v in self._var)

    def _check_reparam(self, tr, names) -> None:
        for n in names:
            site = tr.nodes[n]
            if site["is_observed"] or getattr(site["fn"], "has_rsample", True) or \
                    site["infer"].get("_enumerate_dim") is not None:
                continue
            if any(t.requires_grad for t in self.parameters()):
                raise LossError(
                    f'{self.prob_text}: the site "{n}" ({type(site["fn"]).__name__}) of '
                    f"{_fn_name(self._fn)} cannot be reparameterised, so no gradient "
                    f"reaches its parameters through the draw. Use pixyz_pyro.infer."
                    f"pyro_elbo(p, {self.name}) for Pyro's score-function surrogate, or "
                    f"mark it infer={{\"enumerate\": \"parallel\"}} (config_enumerate) to "
                    f"sum it out as TraceEnum_ELBO does.")

    def _trace_for(self, values, ctx):
        """The trace that drew ``values`` in this evaluation (with the rows of its
        inputs), or one conditioned run on them, and the names of the sites to count."""
        if ctx is not None and all(v in values for v in self._var):
            hit = ctx.recall(self, self._key(values))
            if isinstance(hit, _Folded):
                return hit, None, self._counted(hit.trace, ())
            if hit is not None:
                tr, n_rows = hit
                return tr, n_rows, self._counted(tr, ())
        site_var = {s: v for v, s in self._sites.items()}
        condition = {self._sites.get(k, k): t for k, t in values.items()
                     if isinstance(t, torch.Tensor) and k not in self._arg_data.values()
                     and k not in self._cond_var and (k in self._sites or k not in site_var)}
        cuda = sorted({t.device.index or 0 for t in values.values()
                       if isinstance(t, torch.Tensor) and t.is_cuda})
        state = torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in cuda]
        tr = self._run(values, condition)
        for v in self._var:
            self._site_of(tr, v, values)
        marked = [n for n in sample_sites(tr) if not tr.nodes[n]["is_observed"]
                  and tr.nodes[n]["infer"].get("enumerate") == "parallel"]
        if marked:
            raise LossError(
                f'{self.prob_text}: the site "{marked[0]}" of {_fn_name(self._fn)} is marked '
                f"for enumeration but has no value here: the direct executor sums out the "
                f"guide's enumerated sites only. Draw it in the guide, or train with SVI and "
                f"TraceEnum_ELBO (SVILoss does), which sums it out in the model")
        if any(not tr.nodes[n]["is_observed"] for n in sample_sites(tr)):
            # Scoring drew a site it integrates out: leave the random state as it was, so
            # that scoring does not move the draws of the terms after it.
            torch.set_rng_state(state[0])
            for d, st in zip(cuda, state[1]):
                torch.cuda.set_rng_state(st, d)
        return tr, self._n_rows(values), self._counted(tr, condition)

    def _counted(self, tr, given) -> list:
        """The sites of the log-density: those of ``var``, those the function observes
        itself (``obs=``, whether ``var`` lists them or not), and auxiliary ones (an
        AutoGuide's draw in unconstrained space).  A latent site outside ``var`` is
        integrated out by sampling, even when its value is given and replayed."""
        own = set(self._sites.values())
        return [n for n in sample_sites(tr)
                if n in own or (tr.nodes[n]["is_observed"] and n not in given)
                or tr.nodes[n]["infer"].get("is_auxiliary")]

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None,
                         sites=None):
        if not sum_features or feature_dims is not None:
            raise LossError(f"{self.prob_text}: a wrapped Pyro function sums each site over "
                            f"its event dims, as Pyro does; sum_features=False and "
                            f"feature_dims are not available")
        self._require(values, [v for v in self._var if v not in self._arg_data.values()],
                      "log_prob")
        tr, n_rows, counted = self._trace_for(values, ctx)
        like = next((t for t in values.values() if isinstance(t, torch.Tensor)), None)
        if isinstance(tr, _Folded):  # scoring an enumerated draw: its own trace, folded
            if sites is not None:
                counted = [n for n in counted if sites(tr.trace.nodes[n])]
            return folded_log_prob(tr.trace, counted, tr.frame, tr.layout, like)
        if sites is not None:
            counted = [n for n in counted if sites(tr.nodes[n])]
        frame = find_data_plate(tr, self._plate, n_rows)
        if frame is None and self._plate is not None:
            plates = sorted({f.name for n in sample_sites(tr)
                             for f in tr.nodes[n]["cond_indep_stack"]})
            raise VariableError(f'{self.prob_text}: plate="{self._plate}", but '
                                f"{_fn_name(self._fn)} opens no plate of that name"
                                f"{did_you_mean(self._plate, plates)}; its plates are {plates}")
        return per_row_log_prob(tr, counted, frame, n_rows, like)

    def pyro_dist(self, values, ctx=None):
        """The site distribution of the single variable (for an analytic KL).

        Running the function draws the site's value; the random state is restored
        afterwards, so an analytic KL leaves the draws of the other terms as they were.
        """
        if len(self._var) != 1:
            raise NotImplementedError(f"{self.prob_text}: pyro_dist needs a single variable")
        cuda = sorted({t.device.index or 0 for t in values.values()
                       if isinstance(t, torch.Tensor) and t.is_cuda})
        with torch.random.fork_rng(devices=cuda):
            tr = self._run(values)
        d = tr.nodes[self._site_of(tr, self._var[0], values)]["fn"]
        while hasattr(d, "base_dist") and type(d).__name__ in ("Independent",):
            d = d.base_dist
        return d

    # --- the score-function part ----------------------------------------------------------
    @property
    def score_part(self) -> "ScoreSites":
        """The same draw, scored on its non-reparameterised sites only (the
        :math:`\\log q` whose gradient Pyro's score-function surrogate uses)."""
        return ScoreSites(self)


class ScoreSites(Distribution):
    """``q`` drawn as ``q`` draws, with the log-density of its sites that have no
    ``rsample`` (see :func:`pyro_elbo`)."""

    q: PyroFunctionDistribution  # not a submodule: its parameters are q's

    has_reparam = True

    def __init__(self, q: PyroFunctionDistribution):
        super().__init__(q.var, q.cond_var, f"{q.name}_{{sf}}")
        object.__setattr__(self, "q", q)  # not a submodule: its parameters are q's

    def _sample_values(self, values, ctx, reparam, batch_n):
        return self.q._sample_values(values, ctx, reparam, batch_n, score_only=True)

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        return self.q._log_prob_values(
            values, ctx, sum_features, feature_dims,
            sites=lambda s: not s["is_observed"] and not getattr(s["fn"], "has_rsample",
                                                                 True))


def from_pyro(fn, var: Sequence[str], cond_var: Optional[Sequence[str]] = None,
              name: str = "p", module: Optional[torch.nn.Module] = None,
              inputs: Optional[Mapping[str, str]] = None,
              sites: Optional[Mapping[str, str]] = None,
              plate: Optional[str] = None,
              max_plate_nesting: int = 1) -> PyroFunctionDistribution:
    """Wrap a Pyro model or guide as a pixyz_pyro distribution over ``var``.

    Parameters
    ----------
    fn : callable
        A Pyro model or guide: a function, a bound method, an ``nn.Module`` whose
        ``forward`` is the program, or an AutoGuide.
    var : list of str
        The variables it defines: sample sites (by ``sites=``) or arguments that it
        observes (a model's ``x`` in ``obs=x``).
    cond_var : list of str, optional
        The inputs it needs.  By default the data names of its required arguments that
        are not in ``var``.  Any other argument whose data name is in the input dict is
        passed too, unchanged (a ``PackedSequence``, an int).
    inputs : dict, optional
        ``{argument name: data name}`` where they differ (``{"xs": "x"}``).
    sites : dict, optional
        ``{variable name: site name}`` where they differ (``{"z": "latent"}``).
    plate : str, optional
        The data plate (see :mod:`pixyz_pyro.infer.site_terms`).
    max_plate_nesting : int
        The plates the function nests, as ``TraceEnum_ELBO(max_plate_nesting=...)``: sites
        it marks ``infer={"enumerate": "parallel"}`` (``config_enumerate``) are summed out
        inside an expectation, on dims from ``-1 - max_plate_nesting`` leftwards (see
        :mod:`pixyz_pyro.infer.enumeration`).

    Examples
    --------
    >>> import torch, pyro, pyro.distributions as pd
    >>> def guide(x):
    ...     with pyro.plate("data", x.shape[0]):
    ...         pyro.sample("latent", pd.Normal(x, 1.).to_event(1))
    >>> q = from_pyro(guide, var=["z"], sites={"z": "latent"}, name="q")
    >>> q.prob_text
    'q(z|x)'
    >>> q.get_log_prob({"x": torch.zeros(2, 3), "z": torch.zeros(2, 3)})
    tensor([-2.7568, -2.7568])
    """
    return PyroFunctionDistribution(fn, var, cond_var, name, module, inputs, sites, plate,
                                    max_plate_nesting)
