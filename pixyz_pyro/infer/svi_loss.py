"""Any pixyz_pyro loss as a Pyro SVI loss.

``pyro.infer.SVI(model, guide, optim, loss=SVILoss(loss))`` trains any objective of the
loss algebra with Pyro's own loop: ``svi.step(x=x)`` evaluates the loss with the direct
executor on the keyword data, backpropagates, and registers every distribution's
network with ``pyro.module`` so that SVI's optimizer finds the parameters.  ``model``
and ``guide`` are accepted for the interface (``to_pyro`` programs, typically) and are
not run: the loss already names its distributions.

``SVILoss(loss, executor="pyro")`` runs the stock Pyro ELBO that the loss maps to instead,
on the model and guide SVI hands it: so far the multi-sample bounds, ``-IWAE(p, q,
k).sum()`` as ``RenyiELBO(alpha=0, num_particles=k, vectorize_particles=True)`` (see
:mod:`pixyz_pyro.infer.renyi`, whose ``renyi_objective(loss)`` gives the model and guide):
``svi.step`` and ``svi.evaluate_loss`` run Pyro's ``loss_and_grads`` / ``loss``, while
``differentiable_loss`` (which ``RenyiELBO`` does not have) stays on the direct executor,
whose value and gradient are the same on the same draws.
"""
import torch

from ..errors import LossError
from ..loss.base import Loss
from .program import register_modules
from .renyi import renyi_objective

EXECUTORS = ("direct", "pyro")


class SVILoss:
    """Wrap a scalar :class:`~pixyz_pyro.loss.Loss` for ``pyro.infer.SVI``.

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

    def __init__(self, loss: Loss, executor: str = "direct"):
        if not isinstance(loss, Loss):
            raise LossError(f"SVILoss needs a pixyz_pyro loss, got {type(loss).__name__}")
        if executor not in EXECUTORS:
            raise LossError(f"SVILoss: executor must be one of {EXECUTORS}, got {executor!r}")
        self.objective = loss
        self._modules = loss.distributions()
        self.executor = executor
        self.pyro_objective = renyi_objective(loss) if executor == "pyro" else None
        if executor == "pyro" and self.pyro_objective is None:
            raise LossError(f"SVILoss(executor='pyro'): {loss.loss_text} maps to no stock "
                            f"Pyro ELBO (so far: -IWAE(p, q, k).sum() or .mean(), and "
                            f"VRBound, with estimator='reparam'); use executor='direct'")

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
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

    def loss(self, model, guide, *args, **kwargs) -> float:
        if self.pyro_objective is not None:
            return self.pyro_objective.loss(model, guide, *args, **kwargs)
        with torch.no_grad():
            return self.differentiable_loss(model, guide, *args, **kwargs).item()

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        if self.pyro_objective is not None:
            return self.pyro_objective.loss_and_grads(model, guide, *args, **kwargs)
        value = self.differentiable_loss(model, guide, *args, **kwargs)
        value.backward()
        return value.detach().item()

    def __call__(self, model, guide, *args, **kwargs) -> torch.Tensor:
        return self.differentiable_loss(model, guide, *args, **kwargs)


def as_svi_loss(loss: Loss) -> SVILoss:
    """``loss`` as an object that ``pyro.infer.SVI(..., loss=...)`` accepts."""
    return SVILoss(loss)
