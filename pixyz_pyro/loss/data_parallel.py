"""``DataParalleledLoss``: Pixyz's data-parallel wrapper, kept for compatibility.

Pixyz wrapped a loss in ``torch.nn.DataParallel`` (one process, several GPUs).
pixyz_pyro scales out with ``torch.distributed`` instead: ``Model(..., distributed=True)``
under ``torchrun`` (see ``docs/distributed.md``).  This node therefore evaluates the
wrapped loss unchanged, on whatever device its inputs live, so Pixyz code that uses it
keeps running and gets the same numbers.
"""
from typing import Any, List, Tuple

from ..dist.distribution import Distribution
from .base import Loss


class DataParalleledLoss(Loss):
    """The wrapped loss, evaluated as is (data parallelism comes from
    ``Model(..., distributed=True)``).

    Parameters
    ----------
    loss : Loss
        The loss.
    **kwargs
        Pixyz's ``nn.DataParallel`` options, kept for compatibility (unused).

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import LogProb
    >>> p = Normal(loc=0., scale=1., var=["x"])
    >>> loss = DataParalleledLoss(LogProb(p))
    >>> print(loss)
    \\log p(x)
    >>> torch.equal(loss.eval({"x": torch.zeros(2, 1)}), LogProb(p).eval({"x": torch.zeros(2, 1)}))
    True
    """

    def __init__(self, loss: Loss, **kwargs: Any) -> None:
        self.loss = loss
        self.data_parallel_kwargs = dict(kwargs)
        self._freeze()

    @property
    def children(self) -> Tuple[Loss, ...]:
        return (self.loss,)

    def distributions(self) -> List[Distribution]:
        return self.loss.distributions()
