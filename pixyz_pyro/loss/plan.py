"""The plan of a loss: everything about it that does not depend on the data.

A :class:`Plan` is built once per loss (``Model`` keeps its own; ``Loss.eval`` builds
one per call, a walk over the tree) and is immutable data:

* ``input_var``: the variables an evaluation needs;
* ``terms``: the top-level terms, the maximal subexpressions under ``+ - mean sum`` and
  scaling by constants, each with its stable path in the tree;
* ``shared``: the nodes that occur more than once, evaluated once per evaluation;
* ``blocked``: the expectations whose distribution cannot be reparameterised, decided
  here, independently of grad mode (see :func:`check_gradients`);
* ``numerics``: the closed forms each factor uses (:data:`~pixyz_pyro.dist.family.NUMERICS`);
* ``keywords``: the evaluation keywords that the loss's nodes declare;
* ``series``: the ``IterativeLoss`` nodes (``Model(compile=True)`` compiles their step
  body once instead of unrolling the steps);
* ``once``: the factors whose parameters exactly one node reads (:func:`read_once`): the
  context's memo keeps no entry for them, so that each is freed after its one use, as in
  hand-written code;
* ``side``: for adversarial losses, which side this plan computes
  (``"generator"`` or ``"discriminator"``: two plans).

>>> from pixyz_pyro.dist import Normal
>>> from pixyz_pyro.loss import KullbackLeibler, Expectation, LogProb
>>> q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
>>> prior = Normal(loc=0., scale=1., var=["z"], name="p_{prior}")
>>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"])
>>> plan = compile_plan((KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean())
>>> plan.input_var, [t.path for t in plan.terms]
(('x',), ['a.a', 'a.b'])
"""
from typing import Dict, FrozenSet, List, NamedTuple, Optional, Tuple

from torch import nn

from ..dist.distribution import Distribution
from ..dist.factor import FactorDistribution
from ..dist.family import Numerics
from ..dist.joint import MultiplyDistribution
from ..dist.running import running_slots
from ..errors import LossError
from . import divergences, ops, pdf, values
from .base import Loss
from .expectation import Expectation
from .iterative import IterativeLoss

SIDES = ("generator", "discriminator")


class Term(NamedTuple):
    """One top-level term: its path from the root (attribute names joined by ``.``) and
    its node."""

    path: str
    node: Loss


class Plan(NamedTuple):
    """The data-independent decisions about one loss (see the module docstring)."""

    loss: Loss
    side: str
    input_var: Tuple[str, ...]
    terms: Tuple[Term, ...]
    #: ids of the nodes whose values the term split reads (the linear structure).
    recorded: Tuple[int, ...]
    shared: FrozenSet[int]
    blocked: Tuple[Expectation, ...]
    keywords: FrozenSet[str]
    distributions: Tuple[Distribution, ...]
    numerics: Tuple[Tuple[Distribution, Optional[Numerics]], ...]
    #: ``(module, buffer name)`` of every running statistic the loss's modules keep.
    running: Tuple[Tuple[nn.Module, str], ...]
    series: Tuple[IterativeLoss, ...] = ()
    once: FrozenSet[int] = frozenset()


#: The executor protocol, as :class:`FactorDistribution` writes it.
_PROTOCOL = ("_params", "_sample_values", "_sample_n", "_log_prob_values")


def plain_factors(d: Distribution) -> Optional[List[FactorDistribution]]:
    """The factors of ``d`` when it is a factor or a product of factors that read the
    values only through the factors' own parameters, draws and scores (the protocol not
    overridden), else ``None``."""
    if type(d) is MultiplyDistribution:
        out: List[FactorDistribution] = []
        for f in d._order:
            inner = plain_factors(f)
            if inner is None:
                return None
            out.extend(inner)
        return out
    if not isinstance(d, FactorDistribution) or any(
            getattr(type(d), m) is not getattr(FactorDistribution, m) for m in _PROTOCOL):
        return None
    return [d]


#: The nodes that read each distribution they name once (a score, or an expectation's
#: draw), or none (arithmetic and constants).
_READS_ONCE = (pdf.LogProb, pdf.Prob, Expectation)
_READS_NONE = (ops.AddLoss, ops.SubLoss, ops.MulLoss, ops.DivLoss, ops.NegLoss, ops.AbsLoss,
               ops.BatchMean, ops.BatchSum, ops.MinLoss, ops.MaxLoss, values.ValueLoss)


def read_once(nodes: List[Loss]) -> FrozenSet[int]:
    """The ids of the factors whose parameters one node of ``nodes`` (each node once)
    reads, once: none of them needs a memo entry.  Empty unless every node is a score,
    an expectation or arithmetic over plain factors (another node may read a
    distribution's parameters twice itself, as a multi-sample bound's ``stl`` does; a
    closed-form KL counts as two reads of each side)."""
    reads: Dict[int, int] = {}
    read: Tuple[Distribution, ...]
    for node in nodes:
        kind = type(node)
        if kind in _READS_NONE:
            continue
        if kind is divergences.KullbackLeibler and isinstance(node, divergences.KullbackLeibler):
            # a closed form reads both sides, and Pyro's kl_divergence reads them again;
            # a Monte Carlo KL is its child expectation
            read, n = ((node.p, node.q) if node.mc is None else ()), 2
        elif kind in _READS_ONCE and isinstance(node, _READS_ONCE):  # the exact types
            read, n = (node.p,), 1
        else:
            return frozenset()
        for d in read:
            factors = plain_factors(d)
            if factors is None:
                return frozenset()
            for f in factors:
                reads[id(f)] = reads.get(id(f), 0) + n
    return frozenset(i for i, k in reads.items() if k == 1)


def _walk(node: Loss, count: Dict[int, int], nodes: List[Loss]) -> None:
    count[id(node)] = count.get(id(node), 0) + 1
    if count[id(node)] > 1:
        return
    nodes.append(node)
    for c in node.children:
        _walk(c, count, nodes)


def _linear(node: Loss, path: str, terms: List[Term], recorded: List[int]) -> None:
    recorded.append(id(node))
    if not node._is_linear():
        if all(t.node is not node for t in terms):
            terms.append(Term(path or "loss", node))
        return
    names = ("a", "b")
    for name, child in zip(names, node.children):
        if any(child is c for c in node._linear_children()):
            _linear(child, f"{path}.{name}" if path else name, terms, recorded)
        else:
            recorded.append(id(child))  # a constant factor: its value scales the terms


def compile_plan(loss: Loss, side: str = "generator", rewrite: bool = False) -> Plan:
    """The :class:`Plan` of ``loss`` (its ``side`` for an adversarial loss); with
    ``rewrite``, of ``loss.rewritten()`` (:mod:`pixyz_pyro.loss.rewrite`: analytic KLs,
    needless sampling dropped, constants out of expectations)."""
    if not isinstance(loss, Loss):
        raise LossError(f"a plan is made of a pixyz_pyro loss expression, got "
                        f"{type(loss).__name__}")
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    if rewrite:
        from .rewrite import rewrite as rewritten
        loss = rewritten(loss)
    count: Dict[int, int] = {}
    nodes: List[Loss] = []
    _walk(loss, count, nodes)
    terms: List[Term] = []
    recorded: List[int] = []
    _linear(loss, "", terms, recorded)
    dists = tuple(loss.distributions())
    keywords = frozenset(k for n in nodes for k in type(n).keywords)
    blocked = tuple(n for n in nodes if isinstance(n, Expectation) and
                    not n._gradient_free and not n.p.has_reparam)
    return Plan(
        loss=loss, side=side, input_var=tuple(loss.input_var), terms=tuple(terms),
        recorded=tuple(dict.fromkeys(recorded)),
        shared=frozenset(i for i, k in count.items() if k > 1),
        blocked=blocked, keywords=keywords, distributions=dists,
        numerics=tuple((d, getattr(d, "_numerics", None)) for d in dists),
        running=tuple(s for d in dists for s in running_slots(d)),
        series=tuple(n for n in nodes if isinstance(n, IterativeLoss)),
        once=read_once(nodes))


def check_gradients(plan: Plan) -> None:
    """Raise if an expectation needs gradients through samples that its distribution
    cannot give: checked on every call that computes gradients (``Loss.eval`` in grad
    mode, every ``Model.train``), whatever ran before."""
    for node in plan.blocked:
        p = node.p
        if any(t.requires_grad for t in p.parameters()):
            name = p.prob_text.split("(")[0]
            raise LossError(
                f"Expectation over {p.prob_text}: {p.distribution_name or 'it'} cannot be "
                f"reparameterised, so no gradient reaches its parameters through samples. "
                f"Use REINFORCE({name}, f) for a score-function estimator, a relaxed family "
                f"(RelaxedCategorical), or sum it out exactly with "
                f"pixyz_pyro.infer.enumerated({name}, [...]).")
