"""Any pixyz_pyro loss as a Pyro SVI loss.

``pyro.infer.SVI(model, guide, optim, loss=SVILoss(loss))`` trains any objective of the
loss algebra with Pyro's own loop: ``svi.step(x=x)`` evaluates the loss with the direct
executor on the keyword data, backpropagates, and registers every distribution's
network with ``pyro.module`` so that SVI's optimizer finds the parameters.  ``model``
and ``guide`` are accepted for the interface (``to_pyro`` programs, typically) and are
not run: the loss already names its distributions.
"""
from typing import Any, Callable

import torch

from ..errors import LossError
from ..loss.base import Loss
from .program import register_modules


class SVILoss:
    """Wrap a scalar :class:`~pixyz_pyro.loss.Loss` for ``pyro.infer.SVI``.

    Parameters
    ----------
    loss : Loss
        The pixyz_pyro loss to minimise (its ``eval`` on the model's data).

    Examples
    --------
    >>> import torch, pyro
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import LogProb
    >>> from pixyz_pyro.infer import SVILoss, to_pyro
    >>> p = Normal(loc=torch.nn.Parameter(torch.zeros(1)), scale=1., var=["x"])
    >>> svi = pyro.infer.SVI(to_pyro(p, observed=["x"]), lambda **kw: None,
    ...                      pyro.optim.Adam({"lr": 0.1}), loss=SVILoss(-LogProb(p).sum()))
    >>> for _ in range(200):
    ...     _ = svi.step(x=torch.full((4, 1), 2.0))
    >>> round(p.loc.detach().item(), 2)
    2.0
    """

    def __init__(self, loss: Loss):
        if not isinstance(loss, Loss):
            raise LossError(f"SVILoss needs a pixyz_pyro loss, got {type(loss).__name__}")
        self.objective = loss
        self._modules = loss.distributions()

    def differentiable_loss(self, model: Callable[..., Any], guide: Callable[..., Any],
                            *args: Any, **kwargs: Any) -> torch.Tensor:
        if args:
            raise LossError(f"SVILoss takes the data as keyword arguments, svi.step(x=...), "
                            f"named after the variables {self.objective.input_var}; got "
                            f"{len(args)} positional argument(s)")
        register_modules(self._modules)
        value = self.objective.eval(kwargs)
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            raise LossError(f"SVILoss: {self.objective.loss_text} is not a scalar; reduce it with "
                            f".mean() or .sum()")
        return value

    def loss(self, model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
             **kwargs: Any) -> float:
        with torch.no_grad():
            return self.differentiable_loss(model, guide, *args, **kwargs).item()

    def loss_and_grads(self, model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
                       **kwargs: Any) -> float:
        value = self.differentiable_loss(model, guide, *args, **kwargs)
        value.backward()
        return value.detach().item()

    def __call__(self, model: Callable[..., Any], guide: Callable[..., Any], *args: Any,
                 **kwargs: Any) -> torch.Tensor:
        return self.differentiable_loss(model, guide, *args, **kwargs)


def as_svi_loss(loss: Loss) -> SVILoss:
    """``loss`` as an object that ``pyro.infer.SVI(..., loss=...)`` accepts.

    Parameters
    ----------
    loss : Loss
        The pixyz_pyro loss.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import LogProb
    >>> p = Normal(loc=0., scale=1., var=["x"])
    >>> svi_loss = as_svi_loss(-LogProb(p).sum())
    >>> float(svi_loss(lambda **kw: None, lambda **kw: None, x=torch.zeros(2)))  # log(2 pi)
    1.837877...
    """
    return SVILoss(loss)
