"""Print loss expressions as LaTeX through real sympy expressions.

This is the ONLY module that imports sympy, and it is imported only when a formula is
printed.  A loss becomes a sympy expression: densities and divergences are symbols
named by their LaTeX (``\\log p(x|z)``), and every operator -- ``+ - * /``, ``mean``,
``sum``, ``abs``, ``detach``, :math:`\\mathbb{E}`, :math:`\\sum_t` -- is a sympy
operation or function.  So algebraically equal losses print equally
(``a + b`` and ``b + a``; ``-(-a)`` and ``a``), and terms are ordered as Pixyz orders
them.

>>> from pixyz_pyro.dist import Normal
>>> from pixyz_pyro.loss import LogProb
>>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"])
>>> loss_text(-(-LogProb(p))) == loss_text(LogProb(p))
True
"""
import functools
from typing import Any, Callable, Collection, Dict, List, Mapping, Optional, Sequence

import sympy
import torch

from ..dist.distribution import Distribution
from ..dist.naming import distinct_texts
from . import (
    adversarial,
    bounds,
    data_parallel,
    divergences,
    entropy,
    expectation,
    iterative,
    mmd,
    ops,
    pdf,
    values,
    wasserstein,
)
from .base import Loss

#: ``id(distribution) -> text`` of the distributions that print alike (see
#: :func:`distinct_names`).
Names = Mapping[int, str]

def _fn(name: str, template: str) -> type:
    """A sympy function printed with ``template`` (its args as LaTeX)."""

    def _latex(self: Any, printer: Any) -> str:
        return template.format(*(printer._print(a) for a in self.args))

    return type(name, (sympy.Function,), {"_latex": _latex, "nargs": None})


Mean = _fn("mean", "mean \\left({} \\right)")
Sum = _fn("sum", "sum \\left({} \\right)")
Abs = _fn("Abs", "|{}|")
DetachF = _fn("detach", "detach \\left({} \\right)")
MinF = _fn("Min", "min \\left({}, {}\\right)")
MaxF = _fn("Max", "max \\left({}, {}\\right)")
Expect = _fn("E", "\\mathbb{{E}}_{{{}}} \\left[{} \\right]")


def _sym(text: str) -> sympy.Symbol:
    return sympy.Symbol(text)


def _text(d: Distribution, names: Names) -> str:
    """The formula text of distribution ``d``: its own, or the disambiguated one when two
    different distributions of the loss print alike."""
    return names.get(id(d)) or d.prob_text


def distinct_names(loss: Loss) -> Dict[int, str]:
    """``id(dist) -> text`` for the distributions of ``loss`` that share their printed
    text with another one (:func:`~pixyz_pyro.dist.naming.distinct_texts`)."""
    return distinct_texts(loss.distributions())


def to_sympy(node: Loss, names: Optional[Names] = None) -> sympy.Expr:
    """The sympy expression of a loss node; ``names`` maps distributions to their texts
    (default: :func:`distinct_names` of ``node``)."""
    return _to_sympy(node, distinct_names(node) if names is None else names)


@functools.singledispatch
def _to_sympy(node: Loss, names: Names) -> sympy.Expr:
    """One handler per node type."""
    text = getattr(node, "_latex_text", None)
    if text is not None:
        return _sym(text() if callable(text) else text)
    return _sym(f"\\text{{{type(node).__name__}}}")


def _binary(op: Callable[[Any, Any], Any]) -> Callable[[ops.BinaryLoss, Names], Any]:
    def handler(node: ops.BinaryLoss, names: Names) -> Any:
        return op(to_sympy(node.a, names), to_sympy(node.b, names))
    return handler


def _unary(op: Callable[[Any], Any]) -> Callable[[ops.UnaryLoss, Names], Any]:
    return lambda node, names: op(to_sympy(node.a, names))


_to_sympy.register(ops.AddLoss)(_binary(lambda a, b: a + b))
_to_sympy.register(ops.SubLoss)(_binary(lambda a, b: a - b))
_to_sympy.register(ops.MulLoss)(_binary(lambda a, b: a * b))
_to_sympy.register(ops.DivLoss)(_binary(lambda a, b: a / b))
_to_sympy.register(ops.MinLoss)(_binary(MinF))
_to_sympy.register(ops.MaxLoss)(_binary(MaxF))
_to_sympy.register(ops.NegLoss)(_unary(lambda a: -a))
_to_sympy.register(ops.AbsLoss)(_unary(Abs))
_to_sympy.register(ops.BatchMean)(_unary(Mean))
_to_sympy.register(ops.BatchSum)(_unary(Sum))
_to_sympy.register(ops.Detach)(_unary(DetachF))


@_to_sympy.register(values.ValueLoss)
def _value(node: values.ValueLoss, names: Names) -> sympy.Expr:
    v = node.value
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        v = v.item()
    # Integers stay exact and floats stay floats, as Pixyz prints them (0.1 \log p, not
    # \frac{\log p}{10}).
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return _sym(str(v))
    return sympy.Integer(v) if isinstance(v, int) else sympy.Float(v)


_to_sympy.register(values.Parameter)(lambda n, names: sympy.Symbol(n.name))
_to_sympy.register(values.ConstantVar)(lambda n, names: to_sympy(n.base, names))
_to_sympy.register(data_parallel.DataParalleledLoss)(lambda n, names: to_sympy(n.loss, names))
_to_sympy.register(pdf.LogProb)(lambda n, names: _sym(f"\\log {_text(n.p, names)}"))
_to_sympy.register(pdf.Prob)(lambda n, names: _sym(_text(n.p, names)))


@_to_sympy.register(expectation.Expectation)
def _expectation(node: expectation.Expectation, names: Names) -> sympy.Expr:
    return Expect(_sym(_text(node.p, names)), to_sympy(node.f, names))


@_to_sympy.register(divergences.KullbackLeibler)
def _kl(node: divergences.KullbackLeibler, names: Names) -> sympy.Expr:
    if node.mc is not None:
        return to_sympy(node.mc, names)
    return _sym(f"D_{{KL}} \\left[{_text(node.p, names)}||{_text(node.q, names)} \\right]")


@_to_sympy.register(entropy.Entropy)
def _entropy(node: entropy.Entropy, names: Names) -> sympy.Expr:
    if node.mc is not None:
        return to_sympy(node.mc, names)
    return _sym(f"H \\left[ {{{_text(node.p, names)}}} \\right]")


@_to_sympy.register(iterative.IterativeLoss)
def _iterative(node: iterative.IterativeLoss, names: Names) -> sympy.Expr:
    t = sympy.Symbol(node.timestep_var[0] if node.timestep_var else "t")
    upper = node.max_iter if node.max_iter else sympy.Symbol(sympy.latex(t) + "_{max}")
    return sympy.Sum(to_sympy(node.step_loss, names), (t, 0, upper - 1))


def _pair(template: str) -> Callable[[Any, Names], sympy.Expr]:
    return lambda n, names: _sym(template.format(_text(n.p, names), _text(n.q, names)))


_to_sympy.register(adversarial.AdversarialJensenShannon)(
    _pair("mean(D_{{JS}}^{{Adv}} \\left[{}||{} \\right])"))
_to_sympy.register(adversarial.AdversarialKullbackLeibler)(
    _pair("mean(D_{{KL}}^{{Adv}} \\left[{}||{} \\right])"))
_to_sympy.register(adversarial.AdversarialWassersteinDistance)(
    _pair("mean(W^{{Adv}} \\left({}, {} \\right))"))
_to_sympy.register(mmd.MMD)(_pair("D_{{MMD^2}} \\left[{}||{} \\right]"))
_to_sympy.register(wasserstein.WassersteinDistance)(_pair("W^{{upper}} \\left({}, {} \\right)"))


def loss_text(loss: Loss) -> str:
    """The LaTeX text of a loss, as ``print(loss)`` shows it."""
    return sympy.latex(to_sympy(loss, distinct_names(loss)))


def loss_texts(root: Loss, nodes: Sequence[Loss]) -> List[str]:
    """The texts of ``nodes`` (parts of ``root``), named as in ``root``'s text."""
    names = distinct_names(root)
    return [sympy.latex(to_sympy(n, names)) for n in nodes]


def print_latex(obj: Any) -> Any:
    """Render a loss or a distribution as LaTeX in a notebook (or return the text)."""
    text = obj.loss_text if hasattr(obj, "loss_text") else obj.prob_joint_factorized_and_text
    try:
        from IPython.display import Math
        return Math(text)
    except ImportError:
        return text


def _indexed(text: str, names: Collection[str]) -> str:
    """``p(x,z)`` with the variables ``names`` written ``z_i``."""
    head, sep, args = text.partition("(")
    if not sep:
        return text
    import re
    return head + "(" + re.sub(r"[^,|()]+", lambda m: m.group(0) + "_i"
                               if m.group(0) in names else m.group(0), args)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@_to_sympy.register(bounds.VRBound)
def _vr_bound(node: bounds.VRBound, names: Names) -> sympy.Expr:
    zs = set(node.q.var)
    ratio = (f"\\frac{{{_indexed(_text(node.p, names), zs)}}}"
             f"{{{_indexed(_text(node.q, names), zs)}}}")
    mean = f"\\log \\frac{{1}}{{{node.k}}}\\sum_{{i=1}}^{{{node.k}}}"
    if isinstance(node, bounds.IWAE):
        return _sym(f"{mean} {ratio}")
    if node.alpha == 1.0:
        return _sym(f"\\frac{{1}}{{{node.k}}}\\sum_{{i=1}}^{{{node.k}}} \\log {ratio}")
    a = _number(node.alpha)
    return _sym(f"\\frac{{1}}{{1-{a}}} {mean} \\left({ratio}\\right)^{{1-{a}}}")
