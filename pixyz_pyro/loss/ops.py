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


def _constant(loss: Loss) -> bool:
    """A loss that reads no distribution (numbers, ``Parameter``) -- a scale factor."""
    return not loss.distributions()


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

    def _is_linear(self) -> bool:
        return _constant(self.a) != _constant(self.b)

    def _linear_children(self):
        return (self.b,) if _constant(self.a) else (self.a,)

    def _op(self, x, y):
        return x * y


class DivLoss(BinaryLoss):
    symbol = "/"

    def _is_linear(self) -> bool:
        return _constant(self.b) and not _constant(self.a)

    def _linear_children(self):
        return (self.a,)

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


def broadcast_like(c, x):
    """``c`` broadcast to the shape of ``x`` (numbers stay numbers when ``x`` is one)."""
    if not isinstance(x, torch.Tensor) or x.dim() == 0:
        return c
    return torch.broadcast_to(torch.as_tensor(c, dtype=x.dtype, device=x.device), x.shape)


def split_terms(node: Loss, values, ctx):
    """Evaluate ``node`` as ``_run`` does (same order, same draws) and split its value.

    Returns ``(value, new_samples, parts)``; ``parts`` is a list of ``(term,
    contribution)`` whose (broadcast) sum is ``value``: a term's contribution is its value
    carried through the linear operators above it.
    """
    if not node._is_linear():
        value, new = node._run(values, ctx)
        return value, new, [(node, value)]
    if isinstance(node, UnaryLoss):
        x, new, parts = split_terms(node.a, values, ctx)
        if isinstance(node, (BatchMean, BatchSum)):
            return node._op(x), new, [(t, node._op(broadcast_like(c, x))) for t, c in parts]
        return node._op(x), new, [(t, node._op(c)) for t, c in parts]
    if isinstance(node, (MulLoss, DivLoss)):
        scale_first = isinstance(node, MulLoss) and _constant(node.a)
        if scale_first:
            k, nk = node.a._run(values, ctx)
            y, ny, parts = split_terms(node.b, values, ctx)
            return node._op(k, y), {**nk, **ny}, [(t, k * c) for t, c in parts]
        x, nx, parts = split_terms(node.a, values, ctx)
        k, nk = node.b._run(values, ctx)
        return node._op(x, k), {**nx, **nk}, [(t, node._op(c, k)) for t, c in parts]
    x, nx, pa = split_terms(node.a, values, ctx)
    y, ny, pb = split_terms(node.b, values, ctx)
    if isinstance(node, SubLoss):
        pb = [(t, -c) for t, c in pb]
    return node._op(x, y), {**nx, **ny}, pa + pb
