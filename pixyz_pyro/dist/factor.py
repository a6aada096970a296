"""A distribution with parameters: one ``pyro.distributions`` object per evaluation.

:class:`FactorDistribution` is the generic class behind every family.  Its parameters
come from three places, merged in this order:

1. constants given to the constructor, kept as buffers of shape ``(1, *features_shape)``;
2. conditioning variables bound by name (``Normal(loc="y", ...)``);
3. the dict returned by ``forward(**cond)``, for distributions that hide a network.

:meth:`FactorDistribution.pyro_dist` turns the parameters into ONE
``pyro.distributions`` object.  Both the direct executor and the Pyro executor use it.
Names, shapes and supports are validated on the first call only.
"""
from typing import Dict, Optional

import torch
from torch import nn

from ..errors import (
    ParameterError,
    PixyzError,
    ShapeError,
    SupportError,
    VariableError,
    describe,
)
from .checks import check_forward_batch, forward_error
from .context import Context
from .distribution import Distribution, to_dict
from .family import Family
from .shapes import SHAPES, broadcast_shapes, shape_str


def _sum_features(t: torch.Tensor, sum_features: bool, feature_dims) -> torch.Tensor:
    if not sum_features:
        return t
    if feature_dims is not None:
        return t.sum(dim=feature_dims)
    if t.dim() <= 1:
        return t
    return t.sum(dim=tuple(range(1, t.dim())))


class FactorDistribution(Distribution):
    """A distribution from a :class:`Family` of ``pyro.distributions``.

    Subclasses of the families (``Normal``, ``Bernoulli``, ...) override ``forward`` to
    compute parameters with a network, as in Pixyz.
    """

    family: Family = None  # set by lift()

    def __init__(self, var=("x",), cond_var=(), name: str = "p", features_shape=torch.Size(),
                 **params):
        fam = self.family
        unknown = set(params) - set(fam.all_params)
        if unknown:
            raise ParameterError(f"{fam.name} has no parameter(s) {sorted(unknown)}; its "
                                 f"parameters are {list(fam.all_params)}")
        super().__init__(var, cond_var, name, features_shape)
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
        if consts and not self._features_shape:
            self._features_shape = broadcast_shapes(*(c.shape for c in consts.values()))
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
        self._forward_vars = tuple(v for v in self._cond_var if v not in self._bound.values())
        self._has_forward = type(self).forward is not Distribution.forward
        self._checked = False
        self._checked_value = False

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
        cond = self._cond_var
        n = len(cond)
        if n > 1:
            inputs = tuple([values[k] for k in cond])  # plain Python: Dynamo traces it
        else:
            inputs = (values[cond[0]],) if n else ()
        if ctx is not None:
            hit = ctx.recall(self, inputs)
            if hit is not None:
                return hit
        fixed = self.__dict__.get("_fixed_names")
        if fixed is None:  # constants and nn.Parameters, looked up once
            fixed = self.__dict__["_fixed_names"] = tuple(
                k for k in self._param_names if k not in self._bound)
            # Only forward gives parameters: it takes every cond_var, in order.
            self.__dict__["_forward_only"] = self._has_forward and not (
                fixed or self._static or self._bound)
        if self.__dict__["_forward_only"] and self._checked:  # the hot path
            try:
                out = self.forward(**dict(zip(self._cond_var, inputs)))
            except PixyzError:
                raise
            except Exception as e:  # noqa: BLE001 - re-raised in the user's terms
                raise forward_error(self, values, self._forward_vars, e) from e
            params = dict(out)
            if ctx is not None:
                ctx.remember(self, inputs, params)
            return params
        params = {k: getattr(self, k) for k in fixed} if fixed else {}
        params.update(self._static)
        for k, v in self._bound.items():
            params[k] = values[v]
        if self._has_forward:
            try:
                out = self.forward(**{v: values[v] for v in self._forward_vars})
            except PixyzError:
                raise
            except Exception as e:  # noqa: BLE001 - re-raised in the user's terms
                raise forward_error(self, values, self._forward_vars, e) from e
            if not self._checked:
                self._check_forward(out, values)
            params.update(out)
        if not self._checked:
            self._check_params(params)
        if ctx is not None:
            ctx.remember(self, inputs, params)
        return params

    def _check_forward(self, out, values: Dict) -> None:
        fam = self.family
        if not isinstance(out, dict):
            raise ParameterError(f"{self.prob_text}.forward must return a dict of parameters "
                                 f"{list(fam.params)}, got {type(out).__name__}")
        bad = set(out) - set(fam.all_params)
        if bad:
            raise ParameterError(
                f"{self.prob_text}.forward returned parameter names {sorted(out)}; a "
                f"{fam.name} expects {list(fam.params)} (unknown: {sorted(bad)})")
        check_forward_batch(self, out, values, self._forward_vars)

    def _check_params(self, params: Dict[str, torch.Tensor]) -> None:
        fam = self.family
        missing = fam.missing(params)
        if missing:
            raise ParameterError(
                f"{self.prob_text} has no value for parameter(s) {missing}: a {fam.name} "
                f"needs {list(fam.params)}, got {sorted(params)} from constants, bound "
                f"variables and forward")
        tensors = {k: v for k, v in params.items()
                   if isinstance(v, torch.Tensor) and k not in self._static}
        try:
            broadcast_shapes(*(t.shape for t in tensors.values()))
        except RuntimeError:
            shapes = {k: shape_str(t.shape) for k, t in tensors.items()}
            raise ShapeError(f"{self.prob_text}: parameter shapes {shapes} do not broadcast "
                             f"({SHAPES})") from None
        for k, t in tensors.items():
            if self._features_shape and t.dim() > 1 and \
                    tuple(t.shape[-len(self._features_shape):]) != tuple(self._features_shape) \
                    and t.shape[1:].numel() != 1:
                raise ShapeError(
                    f"{self.prob_text}: parameter {k} has features {shape_str(t.shape[1:])}, "
                    f"but features_shape is {shape_str(self._features_shape)} ({SHAPES})")
        if any(t.is_floating_point() and bool(torch.isnan(t).any()) for t in tensors.values()):
            return  # checked on a later call; the NaN guard of Model.train names the term
        problem = fam.check_params(params)
        if problem:
            raise SupportError(f"{self.prob_text}: {problem}")
        self._checked = True

    def get_params(self, params_dict=None, **kwargs) -> Dict[str, torch.Tensor]:
        """The parameters given the conditioning variables."""
        values = to_dict(params_dict, self._cond_var)
        self._require(values, self._cond_var, "get_params")
        return dict(self._params(values, None))

    # --- the one translation to pyro.distributions ------------------------------------------
    def pyro_dist(self, values: Dict, ctx: Optional[Context] = None):
        """The ``pyro.distributions`` object of this factor given ``values``.

        Its ``batch_shape`` is ``batch_shape + features_shape`` (up to the family's own
        event dimensions); ``to_pyro`` adds ``.to_event``.
        """
        return self.family.build(self._params(values, ctx))

    def _sample_values(self, values, ctx, reparam, batch_n):
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
        closed = self.__dict__.get("_rsample_plan", False)
        if closed is False:  # the closed-form sampler, looked up once
            closed = self.__dict__["_rsample_plan"] = \
                self.family.closed_rsample if self._closed_ok() else None
        if not reparam:
            closed = None
        x = closed(params, shape) if closed is not None else None  # the same draw, faster
        if x is None:
            d = self.family.build_sampler(params)
            x = (d.rsample if (reparam and d.has_rsample) else d.sample)(shape)
        if widen and x.dim() > 1:
            x = x.reshape(batch_n, *x.shape[2:])
        return {self._var[0]: x}

    def _closed_ok(self) -> bool:
        """Whether the family's closed forms stand for :meth:`pyro_dist` (a subclass that
        overrides it gets the pyro object)."""
        ok = self.__dict__.get("_closed_ok_cache")
        if ok is None:
            ok = self.__dict__["_closed_ok_cache"] = \
                type(self).pyro_dist is FactorDistribution.pyro_dist
        return ok

    def _lp_names(self):
        """``var + cond_var``, the names a log-density needs (built once)."""
        names = self.__dict__.get("_lp_names_cache")
        if names is None:
            names = self.__dict__["_lp_names_cache"] = self._var + self._cond_var
        return names

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        plan = self.__dict__.get("_lp_plan")
        if plan is None:  # names, scored variable, closed form: worked out once
            plan = self.__dict__["_lp_plan"] = (
                self._lp_names(), self._var[0],
                self.family.closed_log_prob if self._closed_ok() else None)
        names, var, closed = plan
        self._require(values, names, "log_prob")
        x = values[var]
        if closed is not None and self._checked_value:  # the hot path: no pyro object
            lp = closed(self._params(values, ctx), x)
            if lp is not None:
                return _sum_features(lp, sum_features, feature_dims)
        params = self._params(values, ctx)
        d = self.family.build(params)
        if not self._checked_value:
            self._check_value(d, x)
        try:
            lp = closed(params, x) if closed is not None else None
            if lp is None:
                lp = self.family.log_prob(d, x)
        except Exception as e:  # noqa: BLE001 - re-raised in the user's terms
            full = shape_str(tuple(d.batch_shape + d.event_shape))
            raise ShapeError(
                f'{self.prob_text}: cannot score "{self._var[0]}" ({describe(x)}) against '
                f"parameters of shape {full} ({SHAPES}). {type(e).__name__}: {e}") from e
        return _sum_features(lp, sum_features, feature_dims)

    def _check_value(self, d, x) -> None:
        if not isinstance(x, torch.Tensor):
            raise SupportError(f'{self.prob_text}: value of "{self._var[0]}" must be a tensor, '
                               f"got {type(x).__name__}")
        if x.numel() == 0:
            raise ShapeError(f'{self.prob_text}: "{self._var[0]}" is an empty batch '
                             f"(shape {shape_str(x.shape)})")
        if x.is_floating_point() and bool(torch.isnan(x).any()):
            return  # not checked: the NaN guard of Model.train names the term
        ref = next((t for t in d.__dict__.values() if isinstance(t, torch.Tensor)), None)
        if ref is not None and ref.device != x.device:
            raise ShapeError(f'{self.prob_text}: "{self._var[0]}" is on {x.device}, but the '
                             f"parameters are on {ref.device}; move one with .to()")
        if not x.is_floating_point() and self.family.float_values:
            raise SupportError(f'{self.prob_text}: "{self._var[0]}" has dtype {x.dtype}; a '
                               f"{self.family.name} takes floating-point values "
                               f"(use .float())")
        full = tuple(d.batch_shape + d.event_shape)
        try:
            broadcast_shapes(full, tuple(x.shape))
        except RuntimeError:
            raise ShapeError(
                f'{self.prob_text}: "{self._var[0]}" has shape {shape_str(x.shape)}, but the '
                f"parameters have shape {shape_str(full)} ({SHAPES})") from None
        problem = self.family.check_value(x)
        if problem:
            raise SupportError(f'{self.prob_text}: "{self._var[0]}" {problem}')
        self._checked_value = True

    # --- moments ------------------------------------------------------------------------
    def _given(self, x_dict, purpose: str = "this") -> Dict:
        return self._checked_input(x_dict, self._cond_var, self._cond_var, purpose)

    def sample_mean(self, x_dict=None) -> torch.Tensor:
        values = self._given(x_dict, "sample_mean")
        return self._guarded(lambda: self.pyro_dist(values).mean, "sample_mean", values)

    def sample_variance(self, x_dict=None) -> torch.Tensor:
        values = self._given(x_dict, "sample_variance")
        return self._guarded(lambda: self.pyro_dist(values).variance, "sample_variance",
                             values)

    def get_entropy(self, x_dict=None, sum_features: bool = True,
                    feature_dims=None) -> torch.Tensor:
        values = self._given(x_dict, "get_entropy")
        return self._guarded(
            lambda: self._entropy_values(values, None, sum_features, feature_dims),
            "get_entropy", values)

    def _entropy_values(self, values, ctx, sum_features=True, feature_dims=None):
        return _sum_features(self.pyro_dist(values, ctx).entropy(), sum_features, feature_dims)
