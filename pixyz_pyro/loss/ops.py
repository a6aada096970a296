"""Arithmetic and reductions over losses: ``+ - * /``, negation, ``abs``, ``mean``,
``sum`` and ``detach``.  Each is one small immutable node."""
from typing import Tuple

import torch

from .base import Loss, as_loss


class BinaryLoss(Loss):
    """``a <op> b`` for two losses (numbers are wrapped as ``ValueLoss``)."""

    _is_operator = True
    symbol = "?"

    def __init__(self, a, b):
        self.a = as_loss(a)
        self.b = as_loss(b)
        self._freeze()

    @property
    def children(self) -> Tuple[Loss, ...]:
        return (self.a, self.b)

    def _op(self, x, y):
        raise NotImplementedError

    def _eval(self, values, ctx):
        x, nx = self.a._run(values, ctx)
        y, ny = self.b._run(values, ctx)
        if nx and ny:
            nx = {**nx, **ny}
        return self._op(x, y), (nx or ny)


class AddLoss(BinaryLoss):
    symbol = "+"

    def _op(self, x, y):
        return x + y


class SubLoss(BinaryLoss):
    symbol = "-"

    def _op(self, x, y):
        return x - y


class MulLoss(BinaryLoss):
    symbol = "*"

    def _op(self, x, y):
        return x * y


class DivLoss(BinaryLoss):
    symbol = "/"

    def _op(self, x, y):
        return x / y


class UnaryLoss(Loss):
    """``f(a)`` for one loss."""

    _is_operator = True

    def __init__(self, a):
        self.a = as_loss(a)
        self._freeze()

    @property
    def children(self) -> Tuple[Loss, ...]:
        return (self.a,)

    def _op(self, x):
        raise NotImplementedError

    def _eval(self, values, ctx):
        x, new = self.a._run(values, ctx)
        return self._op(x), new


class NegLoss(UnaryLoss):
    def _op(self, x):
        return -x


class AbsLoss(UnaryLoss):
    _is_operator = False

    def _op(self, x):
        return x.abs()


class BatchMean(UnaryLoss):
    """:math:`\\frac{1}{N} \\sum_n \\ell_n`: the mean over the batch (Pixyz's ``.mean()``)."""

    def _op(self, x):
        return x.mean() if isinstance(x, torch.Tensor) else x


class BatchSum(UnaryLoss):
    """:math:`\\sum_n \\ell_n`: the sum over the batch (Pixyz's ``.sum()``)."""

    def _op(self, x):
        return x.sum() if isinstance(x, torch.Tensor) else x


class Detach(UnaryLoss):
    """The value of the loss without its gradient."""

    _is_operator = False

    def _op(self, x):
        return x.detach() if isinstance(x, torch.Tensor) else x


class MinLoss(BinaryLoss):
    """Elementwise :math:`\\min(a, b)`."""

    _is_operator = False

    def _op(self, x, y):
        return torch.minimum(torch.as_tensor(x), torch.as_tensor(y))


class MaxLoss(BinaryLoss):
    """Elementwise :math:`\\max(a, b)`."""

    _is_operator = False

    def _op(self, x, y):
        return torch.maximum(torch.as_tensor(x), torch.as_tensor(y))
