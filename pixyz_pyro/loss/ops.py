"""Arithmetic and reductions over losses: ``+ - * /``, negation, ``abs``, ``mean``,
``sum``, ``detach``, ``min`` and ``max``.  Each is one small immutable node; what each
computes is registered in :mod:`pixyz_pyro.loss.evaluate`."""
from typing import Tuple

from .base import Loss, Operand, as_loss


class BinaryLoss(Loss):
    """``a <op> b`` for two losses (numbers are wrapped as ``ValueLoss``)."""

    _is_operator = True
    symbol = "?"

    def __init__(self, a: Operand, b: Operand) -> None:
        self.a = as_loss(a)
        self.b = as_loss(b)
        self._freeze()

    @property
    def children(self) -> Tuple[Loss, ...]:
        return (self.a, self.b)


def _constant(loss: Loss) -> bool:
    """A loss that reads no distribution (numbers, ``Parameter``) -- a scale factor."""
    return not loss.distributions()


class AddLoss(BinaryLoss):
    symbol = "+"


class SubLoss(BinaryLoss):
    symbol = "-"


class MulLoss(BinaryLoss):
    symbol = "*"

    def _is_linear(self) -> bool:
        return _constant(self.a) != _constant(self.b)

    def _linear_children(self) -> Tuple[Loss, ...]:
        return (self.b,) if _constant(self.a) else (self.a,)


class DivLoss(BinaryLoss):
    symbol = "/"

    def _is_linear(self) -> bool:
        return _constant(self.b) and not _constant(self.a)

    def _linear_children(self) -> Tuple[Loss, ...]:
        return (self.a,)


class UnaryLoss(Loss):
    """``f(a)`` for one loss."""

    _is_operator = True

    def __init__(self, a: Operand) -> None:
        self.a = as_loss(a)
        self._freeze()

    @property
    def children(self) -> Tuple[Loss, ...]:
        return (self.a,)


class NegLoss(UnaryLoss):
    """:math:`-\\ell`."""


class AbsLoss(UnaryLoss):
    _is_operator = False


class BatchMean(UnaryLoss):
    """:math:`\\frac{1}{N} \\sum_n \\ell_n`: the mean over the batch (Pixyz's ``.mean()``)."""


class BatchSum(UnaryLoss):
    """:math:`\\sum_n \\ell_n`: the sum over the batch (Pixyz's ``.sum()``)."""


class Detach(UnaryLoss):
    """The value of the loss without its gradient."""

    _is_operator = False


class MinLoss(BinaryLoss):
    """Elementwise :math:`\\min(a, b)` of two losses.

    .. math::

        \\min(a, b)_i = \\min(a_i, b_i)

    Parameters
    ----------
    a, b : Loss, float or tensor
        The two values (numbers are wrapped as :class:`ValueLoss`); per-row values must
        have the same shape.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import LogProb
    >>> p = Normal(loc=0., scale=1., var=["x"], name="p")
    >>> q = Normal(loc=1., scale=1., var=["x"], name="q")
    >>> m = MinLoss(LogProb(p), LogProb(q))
    >>> print(m)
    min \\left(\\log p(x), \\log q(x)\\right)
    >>> m.eval({"x": torch.zeros(2)})  # log N(0; 1, 1) = -log(2 pi)/2 - 1/2
    tensor([-1.4189, -1.4189])
    """

    _is_operator = False


class MaxLoss(BinaryLoss):
    """Elementwise :math:`\\max(a, b)` of two losses.

    .. math::

        \\max(a, b)_i = \\max(a_i, b_i)

    Parameters
    ----------
    a, b : Loss, float or tensor
        The two values (numbers are wrapped as :class:`ValueLoss`).

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import LogProb
    >>> p = Normal(loc=0., scale=1., var=["x"], name="p")
    >>> q = Normal(loc=1., scale=1., var=["x"], name="q")
    >>> m = MaxLoss(LogProb(p), LogProb(q))
    >>> print(m)
    max \\left(\\log p(x), \\log q(x)\\right)
    >>> m.eval({"x": torch.zeros(2)})  # log N(0; 0, 1) = -log(2 pi)/2
    tensor([-0.9189, -0.9189])
    """

    _is_operator = False
