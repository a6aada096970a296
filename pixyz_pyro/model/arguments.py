"""Validate ``Model``'s arguments at construction, naming the parameter.

:func:`check_model_arguments` runs first in ``Model.__init__`` (and so in every
preset), before anything is built.  It refuses, with the parameter's name:

* ``test_loss`` that is a distribution or a list: ``Model(loss, [p, q])`` puts the
  distributions in ``test_loss``, the second positional parameter;
* ``distributions`` that is not a list or tuple of distinct Distributions (one
  distribution instead of a list is the common slip);
* a listed distribution that takes no part in ``loss``: it would get no gradient and
  never train.  ``allow_unused=True`` keeps it anyway (it is then saved and loaded with
  the model, but not trained);
* clip thresholds that are not positive numbers: a negative ``clip_grad_norm`` scales
  the gradients by a negative factor (gradient *ascent*), and a negative
  ``clip_grad_value`` clamps every gradient to one constant.  ``None`` turns clipping off;
* optimizers that need a closure (``torch.optim.LBFGS``): ``Model`` evaluates the loss
  once per step;
* float16 parameters on the CPU: without fp32 master weights and a loss scale (which
  ``torch.amp`` provides on GPUs) Adam's small updates and its ``eps`` underflow in
  float16 and write NaN.  bfloat16 (float32's range) and float32 train.

Examples
--------
>>> import torch
>>> from pixyz_pyro.dist import Normal
>>> from pixyz_pyro.loss import LogProb
>>> p = Normal(loc=torch.nn.Parameter(torch.zeros(1)), scale=1., var=["x"])
>>> check_model_arguments(-LogProb(p).mean(), None, [p], torch.optim.Adam, None, None)
>>> try:
...     check_model_arguments(-LogProb(p).mean(), None, p, torch.optim.Adam, None, None)
... except ArgumentError as e:
...     for line in str(e).split("; "):
...         print(line)
Model: distributions must be a list of Distribution, got the single distribution p(x)
wrap it in a list: distributions=[...]
"""
import inspect
from typing import Iterable, List, Optional, Sequence

import torch
from pyro.optim.optim import PyroOptim
from torch import nn

from ..dist.distribution import Distribution
from ..errors import ArgumentError, ModelError
from ..loss.base import Loss
from ..validate_args import check_optional_positive_number
from .optim import OptimizerError

_CLIP_HINT = {
    "clip_grad_norm": " (None turns clipping off; a negative threshold would scale the "
                      "gradients by a negative factor, i.e. gradient ascent)",
    "clip_grad_value": " (None turns clipping off; a negative threshold would clamp every "
                       "gradient to one constant)",
}


def _label(d: object) -> str:
    return getattr(d, "prob_text", None) or type(d).__name__


def _labels(ds: Iterable[object]) -> str:
    return "[" + ", ".join(_label(d) for d in ds) + "]"


def check_clip(name: str, value: object, who: str = "Model") -> Optional[float]:
    """``None`` or a positive, finite threshold."""
    return check_optional_positive_number(name, value, who, _CLIP_HINT.get(name, ""))


def check_test_loss(test_loss: object, who: str = "Model") -> None:
    """``None`` or a loss; a distribution or a list here is a positional slip."""
    if test_loss is None or isinstance(test_loss, Loss):
        return
    if isinstance(test_loss, Distribution):
        raise ArgumentError(
            f"{who}: test_loss got the distribution {_label(test_loss)}: the second "
            f"positional parameter of Model is test_loss; pass the distributions by "
            f"keyword: distributions=[...]")
    if isinstance(test_loss, (list, tuple, nn.ModuleList)):
        raise ArgumentError(
            f"{who}: test_loss got a list {_labels(test_loss)}: the second positional "
            f"parameter of Model is test_loss; pass the distributions by keyword: "
            f"distributions=[...]")
    raise ArgumentError(f"{who}: test_loss must be a pixyz_pyro loss or None, got "
                        f"{type(test_loss).__name__}")


def check_distribution(name: str, value: object, who: str) -> None:
    """``value`` is one Distribution (a preset's ``p``, ``encoder``, ...)."""
    if not isinstance(value, Distribution):
        hint = ("; pass one distribution here (the others go in other_distributions)"
                if isinstance(value, (list, tuple)) else "")
        raise ArgumentError(f"{who}: {name} must be a pixyz_pyro Distribution, got "
                            f"{type(value).__name__}{hint}")


def check_distribution_list(distributions: object, who: str = "Model") -> List[Distribution]:
    """``distributions`` as a list of distinct Distributions (empty: take the loss's)."""
    if isinstance(distributions, Distribution):
        raise ArgumentError(f"{who}: distributions must be a list of Distribution, got the "
                            f"single distribution {_label(distributions)}; wrap it in a "
                            f"list: distributions=[...]")
    if isinstance(distributions, Loss):
        raise ArgumentError(f"{who}: distributions got a loss; the loss is the first "
                            f"parameter, distributions a list of Distribution")
    if distributions is None:
        return []
    if not isinstance(distributions, (list, tuple, nn.ModuleList)):
        raise ArgumentError(f"{who}: distributions must be a list or tuple of "
                            f"Distribution, got {type(distributions).__name__}")
    out: List[Distribution] = []
    for i, d in enumerate(distributions):
        if not isinstance(d, Distribution):
            hint = (" (a network is trained through the distribution that owns it)"
                    if isinstance(d, nn.Module) else "")
            raise ArgumentError(f"{who}: distributions[{i}] is a {type(d).__name__}, not "
                                f"a pixyz_pyro Distribution{hint}")
        if any(d is o for o in out):
            raise ArgumentError(f"{who}: distributions lists {_label(d)} twice (at "
                                f"{[j for j, o in enumerate(distributions) if o is d]})")
        out.append(d)
    return out


def _takes_part(d: nn.Module, used: Sequence[nn.Module]) -> bool:
    """Whether ``d`` is, contains, or is inside a distribution the loss uses."""
    for u in used:
        if not isinstance(u, nn.Module):
            continue
        if any(d is m for m in u.modules()) or any(u is m for m in d.modules()):
            return True
    return False


def check_used(distributions: Sequence[Distribution], loss: Loss, allow_unused: bool,
               who: str = "Model") -> None:
    """Every listed distribution takes part in ``loss``, unless ``allow_unused``."""
    if allow_unused or not distributions:
        return
    used = loss.distributions()
    unused = [d for d in distributions if not _takes_part(d, used)]
    if unused:
        raise ArgumentError(
            f"{who}: the distributions {_labels(unused)} take no part in the loss "
            f"{loss.loss_text} (it uses {_labels(used)}); they would get no gradient and "
            f"never train. Remove them from distributions, or pass allow_unused=True to "
            f"keep them in the model (saved and loaded, not trained)")


def optimizer_class(optimizer: object) -> Optional[type]:
    """The torch optimizer class behind ``optimizer`` (a class or a Pyro optimizer), or
    ``None`` if it is neither (``build_optimizer`` reports that)."""
    if isinstance(optimizer, PyroOptim):
        optimizer = getattr(optimizer, "pt_optim_constructor", None)
    return optimizer if inspect.isclass(optimizer) else None


def check_no_closure(optimizer: object, name: str = "optimizer", who: str = "Model") -> None:
    """Refuse optimizers whose ``step`` requires a closure (``torch.optim.LBFGS``)."""
    cls = optimizer_class(optimizer)
    if cls is None or not issubclass(cls, torch.optim.Optimizer):
        return
    closure = inspect.signature(cls.step).parameters.get("closure")
    if closure is not None and closure.default is inspect.Parameter.empty:
        raise OptimizerError(
            f"{who}: {name}={cls.__module__}.{cls.__name__} needs a closure (its step "
            f"evaluates the loss several times), which Model's one evaluation per step "
            f"cannot give; use a first-order optimizer (torch.optim.Adam, SGD, ...), or "
            f"drive {cls.__name__} yourself with a closure that calls loss.eval(...)")


def check_precision(distributions: Sequence[nn.Module], who: str = "Model") -> None:
    """Refuse float16 parameters on the CPU (see the module docstring)."""
    for d in distributions:
        half = [n for n, p in d.named_parameters()
                if p.dtype == torch.float16 and p.device.type == "cpu"]
        if half:
            shown = ", ".join(half[:3]) + (f" and {len(half) - 3} more" if len(half) > 3
                                           else "")
            raise ModelError(
                f"{who}: {_label(d)} has float16 parameters on the CPU ({shown}); float16 "
                f"training needs fp32 master weights and a loss scale, which Model does "
                f"not provide on the CPU (Adam's updates underflow and write NaN). Use "
                f"torch.bfloat16 ({type(d).__name__}.to(torch.bfloat16)) or float32")


def check_model_arguments(loss: Loss, test_loss: object, distributions: object,
                          optimizer: object, clip_grad_norm: object,
                          clip_grad_value: object, allow_unused: bool = False,
                          who: str = "Model") -> None:
    """Every check of this module, in the order of ``Model``'s parameters."""
    check_test_loss(test_loss, who)
    listed = check_distribution_list(distributions, who)
    check_no_closure(optimizer, "optimizer", who)
    check_clip("clip_grad_norm", clip_grad_norm, who)
    check_clip("clip_grad_value", clip_grad_value, who)
    if not isinstance(allow_unused, bool):
        raise ArgumentError(f"{who}: allow_unused must be True or False, got "
                            f"{allow_unused!r}")
    check_used(listed, loss, allow_unused, who)
    check_precision(listed or [d for d in loss.distributions() if isinstance(d, nn.Module)],
                    who)
