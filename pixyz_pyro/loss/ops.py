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
    """Elementwise :math:`\\min(a, b)`."""

    _is_operator = False


class MaxLoss(BinaryLoss):
    """Elementwise :math:`\\max(a, b)`."""

    _is_operator = False
