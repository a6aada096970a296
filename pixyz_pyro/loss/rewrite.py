"""Formula rewriting: a pure pass ``loss -> loss`` that keeps the value in expectation
and never raises the variance.

Three rules, applied bottom-up until nothing changes:

1. **Analytic KL.** :math:`\\mathbb{E}_{q}[\\log q - \\log p] \\to D_{KL}[q \\| p]` when
   ``q`` and ``p`` are single-family factors of the same variables with a registered
   closed form (:data:`~pixyz_pyro.dist.family.CLOSED_KL` or ``kl_divergence``'s
   registry): the Monte Carlo estimate becomes its exact expectation.
2. **No sampling where nothing depends on the draw.**
   :math:`\\mathbb{E}_{q(z|\\cdot)}[f] \\to f` when ``f`` reads none of ``q``'s variables
   and is deterministic (or takes one draw), so the value is the same number.
3. **Constant factors out.** :math:`\\mathbb{E}_q[c f] \\to c\\,\\mathbb{E}_q[f]`,
   :math:`\\mathbb{E}_q[f / c] \\to \\mathbb{E}_q[f] / c` and
   :math:`\\mathbb{E}_q[-f] \\to -\\mathbb{E}_q[f]` for a number ``c``: the same value.

A node that occurs several times is rewritten once, so shared subexpressions stay shared
(``e - e`` is still exactly 0).  The bodies of :class:`~pixyz_pyro.loss.IterativeLoss`
are left as they are (their expectations hand their draws to the next step), and so are
node types that the pass does not know.  The pass is off unless called:
``loss.rewritten()`` or :func:`rewrite`; the original loss is never changed.

Examples
--------
>>> import torch
>>> from pixyz_pyro.dist import Normal
>>> from pixyz_pyro.loss import Expectation, LogProb
>>> q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
>>> prior = Normal(loc=0., scale=1., var=["z"], name="p_{prior}")
>>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"])
>>> loss = (Expectation(q, LogProb(q) - LogProb(prior)) - Expectation(q, LogProb(p))).mean()
>>> print(rewrite(loss))  # doctest: +NORMALIZE_WHITESPACE
mean \\left(D_{KL} \\left[q(z|x)||p_{prior}(z) \\right]
- \\mathbb{E}_{q(z|x)} \\left[\\log p(x|z) \\right] \\right)
>>> float(rewrite(Expectation(q, LogProb(q) - LogProb(prior))).eval(
...     {"x": torch.ones(1, 1)})[0])  # KL(N(1, 1) || N(0, 1)) = 1/2
0.5
"""
from typing import TYPE_CHECKING, Dict, Optional

from torch.distributions import kl as torch_kl

from ..dist.distribution import Distribution
from ..dist.factor import FactorDistribution
from . import data_parallel, ops, pdf, values
from .base import Loss
from .divergences import KullbackLeibler
from .entropy import Entropy
from .expectation import Expectation

if TYPE_CHECKING:  # (typing_extensions comes with torch; only the checker needs it)
    from typing_extensions import TypeGuard

BINARY = (ops.AddLoss, ops.SubLoss, ops.MulLoss, ops.DivLoss, ops.MinLoss, ops.MaxLoss)
UNARY = (ops.NegLoss, ops.AbsLoss, ops.BatchMean, ops.BatchSum, ops.Detach)


def rewrite(loss: Loss) -> Loss:
    """``loss`` with the rewrites of :mod:`pixyz_pyro.loss.rewrite` applied (a new
    expression; ``loss`` itself is unchanged, and returned as is when nothing applies)."""
    while True:
        new = _Pass().run(loss)
        if new is loss:
            return loss
        loss = new


class _Pass:
    """One bottom-up pass, with a memo by node identity that lives for this pass only."""

    def __init__(self) -> None:
        self.memo: Dict[int, Loss] = {}

    def run(self, node: Loss) -> Loss:
        hit = self.memo.get(id(node))
        if hit is not None:
            return hit
        out = self._node(node)
        self.memo[id(node)] = out
        return out

    def _node(self, node: Loss) -> Loss:
        if isinstance(node, BINARY):
            a, b = self.run(node.a), self.run(node.b)
            return node if (a is node.a and b is node.b) else type(node)(a, b)
        if isinstance(node, UNARY):
            a = self.run(node.a)
            return node if a is node.a else type(node)(a)
        if isinstance(node, values.ConstantVar):
            base = self.run(node.base)
            return node if base is node.base else values.ConstantVar(base, node.constants)
        if isinstance(node, data_parallel.DataParalleledLoss):
            inner = self.run(node.loss)
            return node if inner is node.loss else \
                data_parallel.DataParalleledLoss(inner, **node.data_parallel_kwargs)
        if type(node) is Expectation:
            f = self.run(node.f)
            e = node if f is node.f else Expectation(node.p, f, node.sample_shape,
                                                     node.reparam, node._gradient_free)
            return _expectation(e)
        return node


def _expectation(e: Expectation) -> Loss:
    if e._gradient_free:  # a score-function estimator: its body is its gradient
        return e
    kl = _as_kl(e)
    if kl is not None:
        return kl
    f, q = e.f, e.p
    if not set(f.input_var) & set(q.var) and (e.n == 1 or _deterministic(f)):
        return f
    if isinstance(f, ops.NegLoss):
        return -_again(e, f.a)
    if isinstance(f, ops.MulLoss):
        if _number(f.a):
            return f.a * _again(e, f.b)
        if _number(f.b):
            return _again(e, f.a) * f.b
    if isinstance(f, ops.DivLoss) and _number(f.b):
        return _again(e, f.a) / f.b
    return e


def _again(e: Expectation, f: Loss) -> Loss:
    return _expectation(Expectation(e.p, f, e.sample_shape, e.reparam, e._gradient_free))


def _number(node: Loss) -> bool:
    if not isinstance(node, values.ValueLoss):
        return False
    v = node.value
    return isinstance(v, (int, float)) or (hasattr(v, "numel") and v.numel() == 1)


#: Node types that compute a value without drawing anything.
_EXACT = (pdf.LogProb, values.ValueLoss, values.Parameter) + BINARY + UNARY


def _deterministic(f: Loss) -> bool:
    if isinstance(f, (KullbackLeibler, Entropy)):
        return f.mc is None
    if not isinstance(f, _EXACT):
        return False
    return all(_deterministic(c) for c in f.children)


def _simple_factor(d: Distribution) -> "TypeGuard[FactorDistribution]":
    """A single-family factor whose ``pyro_dist`` is its family's class."""
    return isinstance(d, FactorDistribution) and \
        type(d).pyro_dist is FactorDistribution.pyro_dist


def _has_closed_kl(q: FactorDistribution, p: FactorDistribution) -> bool:
    from ..dist.family import closed_kl
    if closed_kl(q.family, p.family) is not None:
        return True
    return torch_kl._dispatch_kl(q.family.pyro_cls, p.family.pyro_cls) is not NotImplemented


def _log_prob_of(node: Loss, d: Distribution) -> bool:
    return type(node) is pdf.LogProb and node.p is d and node.sum_features and \
        node.feature_dims is None


def _as_kl(e: Expectation) -> Optional[Loss]:
    """:math:`D_{KL}[q\\|p]` for :math:`\\mathbb{E}_q[\\log q - \\log p]`, else ``None``."""
    f, q = e.f, e.p
    if not isinstance(f, ops.SubLoss) or not _log_prob_of(f.a, q) or \
            type(f.b) is not pdf.LogProb or not _log_prob_of(f.b, f.b.p):
        return None
    p = f.b.p
    if p is q or not (_simple_factor(q) and _simple_factor(p)) or set(p.var) != set(q.var):
        return None
    if not _has_closed_kl(q, p):
        return None
    return KullbackLeibler(q, p)


__all__ = ["rewrite"]
