"""A distribution with parameters: one ``pyro.distributions`` object per evaluation.

:class:`FactorDistribution` is the generic class behind every family.  Its parameters
come from three places, merged in this order:

1. constants given to the constructor, kept as buffers of shape ``(1, *features_shape)``;
2. conditioning variables bound by name (``Normal(loc="y", ...)``);
3. the dict returned by ``forward(**cond)``, for distributions that hide a network.

:meth:`FactorDistribution.pyro_dist` turns the parameters into ONE
``pyro.distributions`` object.  Both the direct executor and the Pyro executor use it.
Names, shapes and supports are validated on every call, as the validation policy says
(:mod:`pixyz_pyro.dist.validation`): names and shapes on the host, supports as device
flags read once per evaluation (:mod:`pixyz_pyro.dist.checks`).
"""
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..errors import (
    ParameterError,
    PixyzError,
    ShapeError,
    SupportError,
    VariableError,
    describe,
)
from .checks import Site, check_forward_batch, flag, forward_error, group_of
from .context import Context, memo_key
from .distribution import Distribution, to_dict
from .family import PYRO_NUMERICS, Family, Numerics
from .naming import Renamed, outer_name
from .repeats import Repeats
from .shapes import SHAPES, broadcast_shapes, repeat_rows, shape_str
from .validation import UnbatchedValueWarning, checking, strict, user_stacklevel


def _sum_features(t: torch.Tensor, sum_features: bool, feature_dims) -> torch.Tensor:
    if not sum_features:
        return t
    if feature_dims is not None:  # [] sums nothing (torch's sum(dim=[]) would sum all)
        return t.sum(dim=tuple(feature_dims)) if len(feature_dims) else t
    n = t.dim()
    if n <= 2:  # (batch, features): one dimension, without building a tuple of dims
        return t.sum(1) if n == 2 else t
    return t.sum(dim=tuple(range(1, n)))


def _fold_param(t, n: int, rows: Optional[int]):
    """A parameter of ``rows`` rows repeated for ``n`` draws, draw-major (as ``fold``)."""
    if not isinstance(t, torch.Tensor) or t.dim() == 0 or rows is None or \
            t.shape[0] != rows or rows == 1:
        return t
    return repeat_rows(t, n)


def _old_dim(fam: Family, dim, features_shape) -> torch.Size:
    """Pixyz 0.1/0.2's ``dim=n`` (features ``(n,)``), with a DeprecationWarning that says
    the 0.3 spelling; an error where ``features_shape`` says something else."""
    shape = torch.Size([dim]) if isinstance(dim, int) else torch.Size(dim)
    if features_shape and torch.Size(features_shape) != shape:
        raise ParameterError(f"{fam.name}: dim={dim!r} and features_shape="
                             f"{list(features_shape)} disagree; give features_shape only")
    warnings.warn(f"{fam.name}(dim={dim!r}) is the Pixyz 0.1/0.2 spelling; use "
                  f"features_shape={list(shape)} (Pixyz 0.3)", DeprecationWarning,
                  stacklevel=4)
    return shape


def _unbatched(dist, var: str, x: torch.Tensor) -> torch.Tensor:
    """``x[None]`` for a value given without its batch dimension whose shape is exactly
    the features (Pixyz scores it as a batch of 1), with an :class:`UnbatchedValueWarning`
    on every call; a :class:`ShapeError` under ``"strict"`` validation."""
    shown, batched = shape_str(x.shape), shape_str((1,) + tuple(x.shape))
    what = (f'{dist.prob_text}: "{var}" has shape {shown}, the features of this '
            f"{dist.family.name}, without a batch dimension")
    if strict():
        raise ShapeError(f"{what}; write {var}[None] (shape {batched}) for a batch of 1 "
                         f"(strict validation; by default it is scored as a batch of 1 "
                         f"with an UnbatchedValueWarning) ({SHAPES})")
    warnings.warn(f"{what}: it is scored as a batch of 1, as Pixyz does; write "
                  f"{var}[None] (shape {batched}) to say so (strict validation makes "
                  f"this an error)", UnbatchedValueWarning, stacklevel=user_stacklevel())
    return x.unsqueeze(0)


class FactorDistribution(Distribution):
    """A distribution from a :class:`Family` of ``pyro.distributions``.

    Subclasses of the families (``Normal``, ``Bernoulli``, ...) override ``forward`` to
    compute parameters with a network, as in Pixyz.

    Parameters
    ----------
    var, cond_var, name, features_shape
        As for :class:`Distribution`.
    **params
        The family's parameters: a constant, the name of a conditioning variable, or
        ``None`` (computed by ``forward``).

    Examples
    --------
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc=0., scale=2., var=["x"])
    >>> isinstance(p, FactorDistribution), p.family.params
    (True, ('loc', 'scale'))
    >>> p.get_params()["scale"]
    tensor([2.])
    """

    # None only on this abstract base: each family class (or lift()) sets it
    family: Family = None  # type: ignore[assignment]
    #: The closed forms of :data:`~pixyz_pyro.dist.family.NUMERICS` this class uses,
    #: declared when the class is made (a subclass that overrides :meth:`pyro_dist` gets
    #: the pyro object everywhere).
    _numerics: Numerics = PYRO_NUMERICS
    #: Whether a subclass overrides :meth:`get_params` (Pixyz programs decorate it with
    #: :func:`~pixyz_pyro.utils.lru_cache_for_sample_dict`): then sampling and scoring
    #: compute the parameters through it, as in Pixyz.  A class with its own ``_params``
    #: (the products of experts) computes them there.
    _own_get_params: bool = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        fam = cls.__dict__.get("family", cls.family)
        own = cls.pyro_dist is FactorDistribution.pyro_dist
        cls._numerics = fam.numerics if (fam is not None and own) else PYRO_NUMERICS
        cls._own_get_params = cls.get_params is not FactorDistribution.get_params and \
            cls._params is FactorDistribution._params

    def __init__(self, var=("x",), cond_var=(), name: str = "p", features_shape=torch.Size(),
                 **params):
        fam = self.family
        if "dim" in params and "dim" not in fam.all_params:
            features_shape = _old_dim(fam, params.pop("dim"), features_shape)
        unknown = set(params) - set(fam.all_params)
        if unknown:
            raise ParameterError(f"{fam.name} has no parameter(s) {sorted(unknown)}; its "
                                 f"parameters are {list(fam.all_params)}")
        super().__init__(var, cond_var, name, features_shape)
        if len(self._var) != 1:
            raise VariableError(f"{self.prob_text}: a {fam.name} defines one variable, got "
                                f"var={self._var} (make one distribution per variable and "
                                f"multiply them)")
        for key, default in fam.defaults.items():
            if params.get(key) is None:
                params[key] = default
        self._static = {k: params.pop(k, v) for k, v in fam.static.items()}
        self._bound: Dict[str, str] = {}
        consts: Dict[str, torch.Tensor] = {}
        for key, value in params.items():
            if value is None:
                continue
            if isinstance(value, str):
                if value not in self._cond_var:
                    raise VariableError(
                        f'{self.prob_text}: parameter {key}="{value}" binds a conditioning '
                        f"variable, but cond_var is {self._cond_var}")
                self._bound[key] = value
            elif isinstance(value, nn.Parameter):
                self.register_parameter(key, value)
            else:
                consts[key] = torch.as_tensor(value, dtype=torch.get_default_dtype()
                                              if not torch.is_tensor(value) else None)
        trainable = [k for k, v in params.items() if isinstance(v, nn.Parameter)]
        if (consts or trainable) and not self._features_shape:
            shapes = {k: c.shape for k, c in consts.items()}
            shapes.update({k: params[k].shape for k in trainable})
            try:
                self._features_shape = broadcast_shapes(*shapes.values())
            except RuntimeError:
                shown = {k: shape_str(s) for k, s in shapes.items()}
                raise ShapeError(f"{self.prob_text}: the constant parameters' shapes {shown} "
                                 f"do not broadcast to one features_shape ({SHAPES})") from None
        for key, c in consts.items():
            try:
                c = c.expand(self._features_shape)
            except RuntimeError:
                raise ShapeError(
                    f"{self.prob_text}: constant {key} has shape {shape_str(c.shape)}, which "
                    f"does not fit features_shape {shape_str(self._features_shape)}") from None
            self.register_buffer(key, c.unsqueeze(0).clone())
        self._param_names = tuple(k for k in fam.all_params
                                  if k in consts or k in self._bound or
                                  isinstance(params.get(k), nn.Parameter))
        both = fam.given_twice(self._param_names)
        if both is not None:
            raise ParameterError(self._given_twice_message(both, None))
        self._forward_vars = tuple(v for v in self._cond_var if v not in self._bound.values())
        self._has_forward = type(self).forward is not Distribution.forward
        self._fixed_names = tuple(k for k in self._param_names
                                  if k not in self._bound and k not in trainable)
        #: nn.Parameters have features_shape; they get their batch dimension per call.
        self._trainable_names = tuple(trainable)
        #: Whether any parameter comes from elsewhere than ``forward``.
        self._has_given = bool(self._fixed_names or self._trainable_names or self._static
                               or self._bound)
        self._lp_names = self._var + [v for v in self._cond_var if v not in self._var]
        #: The names sampling and scoring need, as sets (a subset test, in C, per call).
        self._cond_keys = frozenset(self._cond_var)
        self._lp_keys = frozenset(self._lp_names)

    @property
    def distribution_name(self) -> str:
        return self.family.name

    @property
    def has_reparam(self) -> bool:
        return self.family.reparam

    def _network_repr(self) -> str:
        return nn.Module.__repr__(self)

    def extra_repr(self) -> str:
        lines = [super().extra_repr()]
        for key in self._param_names:
            t = getattr(self, key, None)
            if isinstance(t, torch.Tensor) and key not in dict(self.named_parameters()):
                lines.append(f"({key}): {t.shape}")
        return "\n".join(lines)

    # --- parameters ---------------------------------------------------------------------
    def _params(self, values: Dict, ctx: Optional[Context]) -> Dict[str, torch.Tensor]:
        """The parameters given ``values`` (memoised in ``ctx`` by input identity), checked
        on every call by the validation policy (:mod:`pixyz_pyro.dist.validation`).

        Eagerly the memo is read and written here, under :func:`memo_key` (the key of
        :meth:`Context.recall`), with the inputs gathered in C (``map``): a series calls
        this three or four times per time step, and its Python is most of what the call
        adds to ``forward``."""
        if ctx is None or ctx.traced or ctx.repeats is not None:
            return self._params_in(values, ctx)
        inputs = tuple(map(values.__getitem__, self._cond_var))
        key = memo_key(self, inputs)
        memo = ctx.memo
        hit = memo.get(key)
        if hit is not None:
            return hit[1]
        if self._own_get_params:  # a subclass's get_params (lru_cache_for_sample_dict)
            params = dict(self.get_params({k: values[k] for k in self._cond_var}))
        else:
            params = self._computed_params(values, ctx)
        if id(self) not in ctx.once:
            memo[key] = (inputs, params)
        return params

    def _params_in(self, values: Dict, ctx: Optional[Context]) -> Dict[str, torch.Tensor]:
        """:meth:`_params` without an evaluation context, under ``torch.compile`` (plain
        Python that Dynamo traces, memoised by :meth:`Context.recall`) or on repeated
        inputs."""
        cond = self._cond_var
        inputs = tuple([values[k] for k in cond])
        if ctx is not None:
            repeats = ctx.repeats
            if repeats is not None and repeats.holds(values, cond):
                return self._repeated_params(values, ctx, repeats, inputs)
            hit = ctx.recall(self, inputs)
            if hit is not None:
                return hit
        if self._own_get_params:
            params = dict(self.get_params({k: values[k] for k in cond}))
        else:
            params = self._computed_params(values, ctx)
        if ctx is not None and id(self) not in ctx.once:
            ctx.remember(self, inputs, params)
        return params

    def _repeated_params(self, values: Dict, ctx: Context, repeats: Repeats,
                         inputs: Tuple) -> Dict[str, torch.Tensor]:
        """The parameters on the ``n``-fold repeats of inputs that ``values`` holds as
        their ``b`` rows (:mod:`~pixyz_pyro.dist.repeats`): the memo's entry under
        :meth:`Repeats.key`, else computed on the inputs folded (and remembered under
        both keys)."""
        key = repeats.key(inputs)
        hit = ctx.recall(self, key)
        if hit is None:
            hit = self._params(repeats.folded(values, self._cond_var), ctx)
            if id(self) not in ctx.once:
                ctx.remember(self, key, hit)
        return hit

    def _computed_params(self, values: Dict, ctx: Optional[Context]
                         ) -> Dict[str, torch.Tensor]:
        """The parameters given ``values``, computed and checked (no memo)."""
        check = checking()
        params = self._given_params(values) if self._has_given else {}
        out = None
        if self._has_forward:
            try:
                out = self.forward(**{v: values[v] for v in self._forward_vars})
            except PixyzError:
                raise
            except Exception as e:  # noqa: BLE001 - re-raised in the user's terms
                raise self._forward_error(values, ctx, e) from e
            if check and type(out) is not dict:
                self._check_forward(out, values, ctx)  # raises, unless a dict subclass
            if params:
                params.update(out)
            else:
                params = dict(out)
        if check:
            self._validate(params, out, values, ctx)
        return params

    def _given_params(self, values: Dict) -> Dict:
        """The parameters that do not come from ``forward``: constants, trainable
        parameters (given their batch dimension), static settings and bound variables."""
        params = {k: getattr(self, k) for k in self._fixed_names}
        for k in self._trainable_names:
            params[k] = getattr(self, k).unsqueeze(0)
        params.update(self._static)
        for k, v in self._bound.items():
            params[k] = values[v]
        return params

    def _who(self, ctx: Optional[Context]):
        """The factor as messages name it: itself, or inside ``replace_var`` a
        :class:`~pixyz_pyro.dist.naming.Renamed` view in the user's names."""
        return Renamed(self, ctx.scope) if ctx is not None and ctx.scope else self

    def _outer(self, ctx: Optional[Context], v: str) -> str:
        """The user's name of this factor's variable ``v`` (see :meth:`_who`)."""
        return outer_name(ctx.scope, v) if ctx is not None and ctx.scope else v

    def _value_text(self, ctx: Optional[Context]) -> str:
        """``p(x|z): "x"``, the start of a message about the value, in the user's names."""
        return f'{self._who(ctx).prob_text}: "{self._outer(ctx, self._var[0])}"'

    def _named_inputs(self, values: Dict, ctx: Optional[Context]
                      ) -> Tuple[Any, Dict, Sequence[str]]:
        """``(factor, inputs, names)`` of ``forward``'s inputs as messages name them: in
        the user's names inside ``replace_var`` (see :meth:`_who`)."""
        if ctx is None or not ctx.scope:
            return self, values, self._forward_vars
        names = [self._outer(ctx, v) for v in self._forward_vars]
        return self._who(ctx), dict(zip(names, map(values.__getitem__,
                                                   self._forward_vars))), names

    def _forward_error(self, values: Dict, ctx: Optional[Context], error: Exception):
        """The error of ``forward`` raising ``error``, naming the inputs as the user
        does."""
        return forward_error(*self._named_inputs(values, ctx), error)

    def _metadata(self, params: Dict, out: Optional[Dict], values: Dict,
                  scope: Tuple = ()) -> Tuple:
        """Everything the host checks of :meth:`_validate` read: which parameters
        ``forward`` returned, the shapes and dtypes of the parameters, and the shapes of
        its inputs, as one flat tuple (it is built on every call, and flat it costs half
        of a tuple of tuples; reading each tensor's attributes costs more than the
        Python around it: a C ``attrgetter`` of shape, dtype and device per tensor was
        measured slower).  The parameters' names are not in it: they follow from the
        names ``forward`` returned, the factor's constants being its own, and a tensor's
        entries (a shape, a dtype) never equal a non-tensor's (its type), so two
        different parameter dicts never make the same key.  ``scope`` (the renamings
        around the call, ``ctx.scope``) is in it: the sites it stores name the variables
        as the user does there."""
        key: List[object] = [id(self), scope, None if out is None else tuple(out)]
        append = key.append
        device = None
        for t in params.values():
            if isinstance(t, Tensor):  # the global name, not torch.Tensor: 10% less
                append(t.shape)
                append(t.dtype)
                if device is None:  # the flags' groups name it (one device per call:
                    device = t.device  # the family's ops combine the parameters)
                    append(device)
            else:
                append(type(t))
        append(None)  # the shapes of forward's inputs follow
        for v in self._forward_vars:
            t = values[v]
            append(t.shape if isinstance(t, Tensor) else None)
        return tuple(key)

    def _validate(self, params: Dict, out: Optional[Dict], values: Dict,
                  ctx: Optional[Context]) -> None:
        """The checks of ``forward``'s result and of the parameters, on every call.  Within
        one evaluation, metadata that passed once (a series repeats its first step's) is
        looked up in ``ctx.checked`` instead of checked again: the host checks are a
        function of :meth:`_metadata` alone.  Outside a series, a factor's first call in
        an evaluation is checked in full without a key (``ctx.seen_params``): most
        factors are called once, and only a later call could read it.  The support
        checks, which read the values, are left for every call: the lookup gives the
        names of the checked parameters and their :class:`~pixyz_pyro.dist.checks.Site`,
        which flag this call's tensors."""
        key = None
        if ctx is not None and not ctx.traced:
            if ctx.in_series or id(self) in ctx.seen_params:  # its metadata may have passed
                key = self._metadata(params, out, values, ctx.scope)
                passed = ctx.checked.get(key)
                if passed is not None:
                    names, sites = passed
                    if names:
                        flags = ctx.flags
                        flags.sites.extend(sites)
                        flags.tensors.extend(map(params.__getitem__, names))
                    return
            else:
                ctx.seen_params.add(id(self))
        if out is not None:
            self._check_forward(out, values, ctx)
        left = self._check_params(params, ctx)
        if key is not None and ctx is not None:
            ctx.checked[key] = left

    def _check_forward(self, out, values: Dict, ctx: Optional[Context] = None) -> None:
        fam = self.family
        if not isinstance(out, dict):
            raise ParameterError(f"{self._who(ctx).prob_text}.forward must return a dict of "
                                 f"parameters {list(fam.params)}, got {type(out).__name__}")
        if not out.keys() <= fam.all_params_set:
            raise ParameterError(
                f"{self._who(ctx).prob_text}.forward returned parameter names {sorted(out)}; a "
                f"{fam.name} expects {list(fam.params)} (unknown: "
                f"{sorted(set(out) - set(fam.all_params))})")
        who, inputs, names = self._named_inputs(values, ctx)
        check_forward_batch(who, out, inputs, names)

    def _check_params(self, params: Dict[str, torch.Tensor],
                      ctx: Optional[Context]) -> Tuple[Tuple[str, ...], Tuple[Site, ...]]:
        """Names and shapes on the host; supports as device flags (see :func:`flag`).
        Returns the support checks it left: the parameters' names and their sites."""
        fam = self.family
        missing = fam.missing(params)
        if missing:
            raise ParameterError(
                f"{self._who(ctx).prob_text} has no value for parameter(s) {missing}: a {fam.name} "
                f"needs {list(fam.params)}, got {sorted(params)} from constants, bound "
                f"variables and forward")
        if fam.alternatives:
            both = fam.given_twice(params)
            if both is not None:
                raise ParameterError(self._given_twice_message(both, ctx))
        static = self._static
        features = self._features_shape
        nf = len(features)
        shapes, names, sites, checked = [], [], [], []
        who = None  # the sites' factor, named as the user does (made for the first site)
        for k, t in params.items():  # one pass: the shapes, then the supports to flag
            if k in static or not isinstance(t, torch.Tensor):
                continue
            shape = t.shape
            shapes.append(shape)
            if nf:
                dim = len(shape)
                if dim <= nf and t.numel() != 1:
                    raise ShapeError(
                        f"{self._who(ctx).prob_text}: parameter {k} has shape "
                        f"{shape_str(shape)}, but it needs a batch dimension before the features "
                        f"{shape_str(features)} (was an input given without its batch "
                        f"dimension? {SHAPES})")
                if dim > 1 and shape[-nf:] != features and shape[1:].numel() != 1:
                    raise ShapeError(
                        f"{self._who(ctx).prob_text}: parameter {k} has features "
                        f"{shape_str(shape[1:])}, but features_shape is "
                        f"{shape_str(features)} ({SHAPES})")
            check = fam.param_check(k, t)
            if check is not None:
                if who is None:
                    who = self._who(ctx)
                names.append(k)
                sites.append(Site(check, who, f"parameter {k}", (fam, k), False,
                                  group_of(check, t)))
                checked.append(t)
        if len(shapes) > 1:
            try:
                broadcast_shapes(*shapes)
            except RuntimeError:
                shown = {k: shape_str(t.shape) for k, t in params.items()
                         if k not in static and isinstance(t, torch.Tensor)}
                raise ShapeError(f"{self._who(ctx).prob_text}: parameter shapes {shown} do not "
                                 f"broadcast ({SHAPES})") from None
        for site, t in zip(sites, checked):  # once the host checks have all passed
            flag(ctx, site, t)
        return tuple(names), tuple(sites)

    def _given_twice_message(self, both: Tuple[str, str], ctx: Optional[Context]) -> str:
        """The error of a factor given a parameter and its alternative."""
        who = self._who(ctx)
        def source(k: str) -> str:
            if k in self._bound:
                return f'bound to "{self._outer(ctx, self._bound[k])}"'
            return "a constant" if k in self._param_names else "returned by forward"
        a, b = both
        return (f"{who.prob_text}: a {self.family.name} takes either `{a}` or `{b}`, but "
                f"not both (as torch says: \"Either `{a}` or `{b}` must be specified, but "
                f"not both.\"); got {a} ({source(a)}) and {b} ({source(b)})")

    def get_params(self, params_dict=None, **kwargs) -> Dict[str, torch.Tensor]:
        """The parameters given the conditioning variables."""
        values = to_dict(params_dict, self._cond_var)
        self._require(values, self._cond_var, "get_params")
        # through _params (a product of experts has its own), except where _params calls
        # an overriding get_params, which calls this one
        params = self._computed_params(values, None) if self._own_get_params \
            else self._params(values, None)
        order = [k for k in self.family.all_params if k in params]
        return {k: params[k] for k in order + [k for k in params if k not in order]}

    # --- the one translation to pyro.distributions ------------------------------------------
    def pyro_dist(self, values: Dict, ctx: Optional[Context] = None):
        """The ``pyro.distributions`` object of this factor given ``values``.

        Its ``batch_shape`` is ``batch_shape + features_shape`` (up to the family's own
        event dimensions); ``to_pyro`` adds ``.to_event``.
        """
        return self.family.build(self._params(values, ctx))

    def _sample_values(self, values, ctx, reparam, batch_n, n: int = 1):
        """Draw ``var``: ``n`` draws per batch row from ONE evaluation of the parameters,
        folded draw-major into ``(n * batch, *features)``."""
        if not values.keys() >= self._cond_keys:
            self._require(values, self._cond_var, "sampling")
        params = self._params(values, ctx)
        # Widen to batch_n when every parameter has batch size 1 (or none), i.e. the
        # largest batch size b = max(1, ...) is 1 and batch_n is another one.
        widen = batch_n is not None and batch_n != 1
        if widen:
            for t in params.values():
                if isinstance(t, torch.Tensor) and t.dim() > 0 and t.shape[0] > 1:
                    widen = False
                    break
        shape = (batch_n,) if widen else ()
        if n > 1:
            shape = (n,) + shape
        closed = self._numerics.rsample if reparam else None
        x = closed(params, shape) if closed is not None else None  # the same draw, faster
        if x is None:
            d = self.family.build_sampler(params)
            x = (d.rsample if (reparam and d.has_rsample) else d.sample)(shape)
        if widen and x.dim() > len(shape):  # (..., batch_n, 1, *F) -> (..., batch_n, *F)
            x = x.reshape(*shape, *x.shape[len(shape) + 1:])
        if n > 1:
            x = x.reshape(-1, *x.shape[2:])
        return {self._var[0]: x}

    def _sample_n(self, values, ctx, reparam, batch_n, n, folded=None, repeats=None):
        """``n`` draws per row from ONE evaluation of the parameters on the ``batch``
        rows; the parameters, folded to the ``n * batch`` rows of ``folded``, are left in
        ``ctx`` so that scoring the draws there runs no second ``forward`` (under
        :meth:`Repeats.key` where ``folded`` holds ``b``-row inputs that stand for their
        ``repeats``)."""
        out = self._sample_values(values, ctx, reparam, batch_n, n)
        if ctx is not None and folded is not None and self._cond_var and \
                id(self) not in ctx.once:  # scored there
            inputs = tuple([folded[k] for k in self._cond_var])
            if repeats is not None and repeats.holds(folded, self._cond_var):
                inputs = repeats.key(inputs)
            if ctx.recall(self, inputs) is None:
                params = self._params(values, ctx)  # the memo's entry
                ctx.remember(self, inputs, {k: _fold_param(t, n, batch_n)
                                            for k, t in params.items()})
        return out

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None,
                         negate=False):
        """:math:`\\log p(x|\\ldots)` given ``values``, checked; with ``negate``,
        :math:`-\\log p` with the same bits, from the numerics table's ``nll`` where it has
        one (no negation kernel: see :mod:`pixyz_pyro.loss.series`)."""
        if not values.keys() >= self._lp_keys:
            self._require(values, self._lp_names, "log_prob")
        x = values[self._var[0]]
        params = self._params(values, ctx)
        if ctx is not None and ctx.repeats is not None and \
                ctx.repeats.originals.get(self._var[0]) is x:
            scored = self._log_prob_repeated(params, x, ctx, negate)
            if scored is not None:
                total = _sum_features(scored[0], sum_features, feature_dims)
                return -total if negate and not scored[1] else total
            x = ctx.repeats.folded(values, self._var)[self._var[0]]  # scored as usual
        numerics = self._numerics
        closed = numerics.log_prob
        nll = numerics.nll if negate else None
        d = None
        if checking():
            d = None if closed is not None else self.family.build(params)
            x = self._check_value(params, d, x, ctx, values)
        try:
            lp = nll(params, x) if nll is not None else None
            if lp is not None:  # -log p already
                return _sum_features(lp, sum_features, feature_dims)
            lp = closed(params, x) if closed is not None else None
            if lp is None:
                d = d if d is not None else self.family.build(params)
                lp = self.family.log_prob(d, x)
        except PixyzError:
            raise
        except Exception as e:  # noqa: BLE001 - re-raised in the user's terms
            full = shape_str(self._value_shape(params, d))
            var = self._outer(ctx, self._var[0])
            raise ShapeError(
                f'{self._who(ctx).prob_text}: cannot score "{var}" ({describe(x)}) against '
                f"parameters of shape {full} ({SHAPES}). {type(e).__name__}: {e}") from e
        lp = _sum_features(lp, sum_features, feature_dims)
        return -lp if negate else lp

    def _log_prob_repeated(self, params, x, ctx, negate
                           ) -> Optional[Tuple[torch.Tensor, bool]]:
        """Score the ``b`` rows ``x`` of a repeated variable (:mod:`.repeats`) as its
        ``n``-fold repeat would be scored: ``x`` expanded to ``(n, b, *features)`` (a
        view) against the parameters of ``n * b`` rows viewed as ``(n, b, *features)``,
        elementwise the same numbers.  Returns the ``(n * b, *features)`` scores and
        whether they are :math:`-\\log p` already (the numerics' ``nll``, for
        ``negate``); ``None`` for a family without an elementwise closed-form score, a
        parameter of other rows or a value that fails its checks, which the caller scores
        folded as usual (so that an error names the same shapes on either path)."""
        numerics = self._numerics
        closed = numerics.log_prob
        if closed is None:
            return None
        n, b = ctx.repeats.n, ctx.repeats.rows
        rows = n * b
        viewed, sliced = {}, {}  # (n, b, ...) and the first draw's (b, ...), to check
        for k, t in params.items():
            if isinstance(t, torch.Tensor) and t.dim() > 0 and k not in self._static:
                if t.shape[0] == rows:
                    v = t.reshape(n, b, *t.shape[1:])
                    viewed[k], sliced[k] = v, v[0]
                    continue
                if t.shape[0] != 1:
                    return None
            viewed[k] = sliced[k] = t
        if checking():
            try:
                if self._check_value(sliced, None, x, ctx) is not x:
                    return None
            except PixyzError:  # raised again by the folded value, in its shapes
                return None
        expanded = x.expand(n, *x.shape)
        try:
            lp = numerics.nll(viewed, expanded) if negate and numerics.nll is not None \
                else None
            negated = lp is not None
            if lp is None:
                lp = closed(viewed, expanded)
            if lp is None:
                lp = self.family.log_prob(self.family.build(viewed), expanded)
        except Exception:  # noqa: BLE001 - scored folded, whose error names the shapes
            return None
        if lp.shape[:2] != (n, b):
            return None
        return lp.reshape(rows, *lp.shape[2:]), negated

    def _value_shape(self, params, d) -> Tuple[int, ...]:
        """The full shape of one value, ``batch_shape + features_shape``."""
        if d is not None:
            return tuple(d.batch_shape + d.event_shape)
        static = self._static
        shapes = [t.shape for k, t in params.items()
                  if k not in static and isinstance(t, torch.Tensor)]
        if len(shapes) == 1:
            return shapes[0]  # a torch.Size is a tuple
        return broadcast_shapes(*shapes) if shapes else ()

    def _check_value(self, params, d, x, ctx, values=None) -> torch.Tensor:
        """The value's type, dtype, device and shape on the host; its support as a device
        flag; returns the value to score.  Features must equal the parameters' features
        exactly (no broadcasting); a batch of 1 on either side broadcasts, and so does a
        distribution of scalar constants without a features_shape
        (``Normal(loc=0., scale=1.)``).  A value of exactly the features' shape against
        parameters of batch 1 is unambiguous: it is returned as ``x[None]`` (see
        :func:`_unbatched`).  As in :meth:`_validate`, metadata that passed once in this
        evaluation is looked up from the factor's second value on (not a value without
        its batch dimension, which warns on every call)."""
        key = None
        if ctx is not None and not ctx.traced and isinstance(x, Tensor):
            if not ctx.in_series and id(self) not in ctx.seen_values:  # the first: no key
                ctx.seen_values.add(id(self))
            else:  # the value's metadata, the parameters' device and shapes, flat
                meta: List[object] = ["value", id(self), ctx.scope, x.shape, x.dtype,
                                      x.device]
                device = None
                for t in params.values():
                    if isinstance(t, Tensor):
                        if device is None:
                            device = t.device
                            meta.append(device)
                        meta.append(t.shape)
                key = tuple(meta)
                passed = ctx.checked.get(key)
                if passed is not None:  # the flag's site as made the first time (or ())
                    if passed:
                        ctx.flags.add(passed, x)
                    return x
        scored = self._check_value_metadata(params, d, x, values, ctx)
        check = self.family.value_check_for(scored)
        made: Tuple = ()  # a Site, or () for a family without a value check
        if check is not None:
            made = self._flag_value(check, scored, ctx)
        if key is not None and scored is x:
            ctx.checked[key] = made
        return scored

    def _flag_value(self, check, x, ctx) -> Site:
        """Flag ``x`` for ``check``; returns the flag's :class:`Site`."""
        site = Site(check, self._who(ctx), f'"{self._outer(ctx, self._var[0])}"',
                    (self.family, None),
                    self.family.lenient_support and not strict(), group_of(check, x))
        flag(ctx, site, x)
        return site

    def _check_value_metadata(self, params, d, x, values=None, ctx=None) -> torch.Tensor:
        """The host part of :meth:`_check_value`: the value to score, or an error."""
        var = self._var[0]
        if not isinstance(x, torch.Tensor):
            raise SupportError(f"{self._value_text(ctx)} must be a tensor, "
                               f"got {type(x).__name__}")
        if x.numel() == 0:
            raise ShapeError(f"{self._value_text(ctx)} is an empty batch "
                             f"(shape {shape_str(x.shape)})")
        fam = self.family
        if not x.is_floating_point() and fam.float_values:
            raise SupportError(f"{self._value_text(ctx)} has dtype {x.dtype}; a "
                               f"{fam.name} takes floating-point values (use .float())")
        ref = None  # the first tensor parameter (a loop: no generator frame per call)
        for t in params.values():
            if isinstance(t, torch.Tensor):
                ref = t
                break
        if ref is not None and ref.device != x.device:
            raise ShapeError(f"{self._value_text(ctx)} is on {x.device}, but the "
                             f"parameters are on {ref.device}; move one with .to()")
        try:
            full = self._value_shape(params, d)
        except RuntimeError:
            full = None  # the parameters' own error is raised by _check_params
        scalar = not self._features_shape and full is not None and len(full) == 1 \
            and full[0] == 1
        # Leading dimensions before the batch are sample_shape (SHAPES); the batch and the
        # features are compared.
        lead = x.dim() - len(full) if full is not None else 0
        if full is not None and lead == -1 and not scalar and full[0] == 1 \
                and x.shape == self._features_shape:
            x = _unbatched(self._who(ctx), self._outer(ctx, var), x)
            lead = 0
        if full is not None and len(full) > 0 and not scalar and (
                lead < 0 or x.shape[lead + 1:] != full[1:]
                or (x.shape[lead] != full[0] and 1 not in (x.shape[lead], full[0]))):
            if lead >= 0 and x.shape[lead + 1:] == full[1:]:  # the features agree
                raise ShapeError(self._batch_message(params, x, lead, full, values, ctx))
            raise ShapeError(
                f"{self._value_text(ctx)} has shape {shape_str(x.shape)}, but the "
                f"parameters have shape {shape_str(full)}: its features must be "
                f"{shape_str(full[1:])}, and features never broadcast ({SHAPES})")
        return x

    def _batch_message(self, params, x, lead: int, full, values, ctx) -> str:
        """The error of a value whose batch differs from the parameters' (the features
        agree), naming the inputs or parameters that have the parameters' batch."""
        who = self._who(ctx)
        var, batch = self._outer(ctx, self._var[0]), full[0]
        inputs = [v for v in self._cond_var if isinstance(t := (values or {}).get(v), Tensor)
                  and t.dim() > 0 and t.shape[0] == batch]
        if inputs:
            source = "from " + ", ".join(f'"{self._outer(ctx, v)}"' for v in inputs)
        else:
            names = [k for k, t in params.items() if k not in self._static and
                     isinstance(t, Tensor) and t.dim() > 0 and t.shape[0] == batch]
            source = "of parameter(s) " + ", ".join(names)
        return (f'{who.prob_text}: "{var}" has batch {x.shape[lead]} (shape '
                f"{shape_str(x.shape)}), but the parameters have batch {batch} ({source}; "
                f"shape {shape_str(full)}); the features {shape_str(full[1:])} agree. Give "
                f'"{var}" and the inputs the same batch (a batch of 1 broadcasts) ({SHAPES})')

    # --- moments ------------------------------------------------------------------------
    def _given(self, x_dict, purpose: str = "this") -> Dict:
        return self._checked_input(x_dict, self._cond_var, self._cond_var, purpose)

    def sample_mean(self, x_dict=None) -> torch.Tensor:
        values = self._given(x_dict, "sample_mean")
        ctx = Context()
        return self._guarded(lambda: self.pyro_dist(values, ctx).mean, "sample_mean", values,
                             ctx)

    def sample_variance(self, x_dict=None) -> torch.Tensor:
        values = self._given(x_dict, "sample_variance")
        ctx = Context()
        return self._guarded(lambda: self.pyro_dist(values, ctx).variance, "sample_variance",
                             values, ctx)

    def get_entropy(self, x_dict=None, sum_features: bool = True,
                    feature_dims=None) -> torch.Tensor:
        values = self._given(x_dict, "get_entropy")
        ctx = Context()
        return self._guarded(
            lambda: self._entropy_values(values, ctx, sum_features, feature_dims),
            "get_entropy", values, ctx)

    def _entropy_values(self, values, ctx, sum_features=True, feature_dims=None):
        return _sum_features(self.pyro_dist(values, ctx).entropy(), sum_features, feature_dims)
