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

import sympy

from . import (
    adversarial,
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


def _fn(name: str, template: str):
    """A sympy function printed with ``template`` (its args as LaTeX)."""

    def _latex(self, printer):
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


@functools.singledispatch
def to_sympy(node) -> sympy.Expr:
    """The sympy expression of a loss node (one handler per node type)."""
    text = getattr(node, "_latex_text", None)
    if text is not None:
        return _sym(text() if callable(text) else text)
    return _sym(f"\\text{{{type(node).__name__}}}")


def _binary(op):
    def handler(node):
        return op(to_sympy(node.a), to_sympy(node.b))
    return handler


to_sympy.register(ops.AddLoss)(_binary(lambda a, b: a + b))
to_sympy.register(ops.SubLoss)(_binary(lambda a, b: a - b))
to_sympy.register(ops.MulLoss)(_binary(lambda a, b: a * b))
to_sympy.register(ops.DivLoss)(_binary(lambda a, b: a / b))
to_sympy.register(ops.MinLoss)(_binary(MinF))
to_sympy.register(ops.MaxLoss)(_binary(MaxF))
to_sympy.register(ops.NegLoss)(lambda n: -to_sympy(n.a))
to_sympy.register(ops.AbsLoss)(lambda n: Abs(to_sympy(n.a)))
to_sympy.register(ops.BatchMean)(lambda n: Mean(to_sympy(n.a)))
to_sympy.register(ops.BatchSum)(lambda n: Sum(to_sympy(n.a)))
to_sympy.register(ops.Detach)(lambda n: DetachF(to_sympy(n.a)))


@to_sympy.register(values.ValueLoss)
def _value(node):
    v = node.value
    if hasattr(v, "numel") and v.numel() == 1:
        v = v.item()
    # Integers stay exact and floats stay floats, as Pixyz prints them (0.1 \log p, not
    # \frac{\log p}{10}).
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return _sym(str(v))
    return sympy.Integer(v) if isinstance(v, int) else sympy.Float(v)


to_sympy.register(values.Parameter)(lambda n: sympy.Symbol(n.name))
to_sympy.register(values.ConstantVar)(lambda n: to_sympy(n.base))
to_sympy.register(data_parallel.DataParalleledLoss)(lambda n: to_sympy(n.loss))
to_sympy.register(pdf.LogProb)(lambda n: _sym(f"\\log {n.p.prob_text}"))
to_sympy.register(pdf.Prob)(lambda n: _sym(n.p.prob_text))


@to_sympy.register(expectation.Expectation)
def _expectation(node):
    return Expect(_sym(node.p.prob_text), to_sympy(node.f))


@to_sympy.register(divergences.KullbackLeibler)
def _kl(node):
    if node.mc is not None:
        return to_sympy(node.mc)
    return _sym(f"D_{{KL}} \\left[{node.p.prob_text}||{node.q.prob_text} \\right]")


@to_sympy.register(entropy.Entropy)
def _entropy(node):
    if node.mc is not None:
        return to_sympy(node.mc)
    return _sym(f"H \\left[ {{{node.p.prob_text}}} \\right]")


@to_sympy.register(iterative.IterativeLoss)
def _iterative(node):
    t = sympy.Symbol(node.timestep_var[0] if node.timestep_var else "t")
    upper = node.max_iter if node.max_iter else sympy.Symbol(sympy.latex(t) + "_{max}")
    return sympy.Sum(to_sympy(node.step_loss), (t, 0, upper - 1))


for _cls in (adversarial.AdversarialJensenShannon, adversarial.AdversarialKullbackLeibler,
             adversarial.AdversarialWassersteinDistance, mmd.MMD,
             wasserstein.WassersteinDistance):
    to_sympy.register(_cls)(lambda n: _sym(n._latex_text()))


def loss_text(loss) -> str:
    """The LaTeX text of a loss, as ``print(loss)`` shows it."""
    return sympy.latex(to_sympy(loss))


def print_latex(obj):
    """Render a loss or a distribution as LaTeX in a notebook (or return the text)."""
    text = obj.loss_text if hasattr(obj, "loss_text") else obj.prob_joint_factorized_and_text
    try:
        from IPython.display import Math
        return Math(text)
    except ImportError:
        return text
