"""Build ONE torch optimizer over every parameter, from a torch class or a Pyro optimizer.

Pixyz passes an optimizer *class* (``optim.Adam``) and its keyword arguments.  A Pyro
optimizer (``pyro.optim.Adam({"lr": 1e-3})``) wraps a torch class and its arguments;
we unwrap it into one torch optimizer over all parameters instead of Pyro's one
optimizer per parameter tensor.  Per-parameter updates such as Adam's are elementwise,
so the result is identical.
"""
import inspect
from typing import Any, Dict, Iterable, Optional, Type, Union

import torch
from pyro.optim.optim import PyroOptim  # (loaded with pyro itself)

from ..errors import PixyzError

#: An optimizer as Model takes it: a ``torch.optim.Optimizer`` subclass (built with
#: ``optimizer_params``), or a Pyro optimizer instance such as ``pyro.optim.Adam({...})``.
OptimizerSpec = Union[Type[torch.optim.Optimizer], PyroOptim]

class OptimizerError(PixyzError, TypeError):
    """The optimizer argument is not a class, a Pyro optimizer, or has bad arguments.

    Examples
    --------
    >>> import torch
    >>> p = torch.nn.Parameter(torch.zeros(1))
    >>> try:
    ...     build_optimizer(torch.optim.Adam([p]), [p])
    ... except OptimizerError as e:
    ...     print(str(e)[:61])
    optimizer must be an optimizer class such as torch.optim.Adam
    """


def build_optimizer(optimizer: OptimizerSpec, params: Iterable[torch.nn.Parameter],
                    optimizer_params: Optional[Dict] = None) -> torch.optim.Optimizer:
    """A single torch optimizer over ``params``.

    Parameters
    ----------
    optimizer : type or PyroOptim
        A ``torch.optim.Optimizer`` subclass, or a Pyro optimizer instance.
    params : iterable of Parameter
    optimizer_params : dict, optional
        Keyword arguments for a torch optimizer class.

    Raises
    ------
    OptimizerError
        For an optimizer instance, a class that is not a torch optimizer, or arguments it
        does not take.

    Examples
    --------
    >>> import pyro.optim
    >>> p = torch.nn.Parameter(torch.zeros(2))
    >>> build_optimizer(torch.optim.SGD, [p], {"lr": 0.1}).param_groups[0]["lr"]
    0.1
    >>> type(build_optimizer(pyro.optim.Adam({"lr": 0.01}), [p])).__name__
    'Adam'
    """
    params = list(params)
    optimizer_params = dict(optimizer_params or {})
    if isinstance(optimizer, torch.optim.Optimizer):
        raise OptimizerError(
            f"optimizer must be an optimizer class such as torch.optim.Adam (with "
            f"optimizer_params={{'lr': ...}}), or a Pyro optimizer such as "
            f"pyro.optim.Adam({{'lr': ...}}); got an instance of "
            f"{type(optimizer).__name__}, which already owns other parameters")
    if isinstance(optimizer, PyroOptim):
        if optimizer_params:
            raise OptimizerError("a Pyro optimizer carries its own arguments; do not also "
                                 "pass optimizer_params")
        args = optimizer.pt_optim_args
        make: Any = optimizer.pt_optim_constructor  # a torch class (Pyro types an instance)
        if callable(args):
            groups = [{"params": [p], **args(f"param_{i}")} for i, p in enumerate(params)]
            return make(groups)
        return make(params, **args)
    if inspect.isclass(optimizer) and issubclass(optimizer, torch.optim.Optimizer):
        try:
            return optimizer(params, **optimizer_params)
        except TypeError as e:
            raise OptimizerError(f"{optimizer.__name__}(**{optimizer_params}) failed: {e}") \
                from None
    if callable(optimizer) and getattr(optimizer, "__module__", "").startswith("pyro.optim"):
        raise OptimizerError(
            f"{optimizer.__module__}.{getattr(optimizer, '__name__', optimizer)} is a Pyro "
            f"optimizer factory; call it with its arguments, e.g. "
            f"pyro.optim.Adam({{'lr': 1e-3}})")
    raise OptimizerError(f"optimizer must be a torch.optim.Optimizer class or a Pyro "
                         f"optimizer, got {optimizer!r}")
