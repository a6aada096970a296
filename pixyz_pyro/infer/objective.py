"""A loss plan as a stock Pyro ELBO, where the formula is one.

:func:`objective` reads a loss's :class:`~pixyz_pyro.loss.plan.Plan` and returns an
:class:`Objective`: which of Pyro's ELBOs computes the same number, with which particles,
and how the loss scales it.  Walking the top-level terms (as the plan splits them: sums,
differences, constant factors, one ``.sum()`` or ``.mean()``), it matches

================================================================  =========================
formula (``c`` a constant, ``red`` ``.sum()`` or ``.mean()``)     Pyro's ELBO
================================================================  =========================
``-c * red(E_q[log p - log q])`` (``ELBO(p, q)``)                 ``Trace_ELBO``
the same with sites of ``q`` summed out (enumerated)              ``TraceEnum_ELBO``
``c * red(KL[q||p_z] - E_q[log p(x|z)])``, analytic KL            ``TraceMeanField_ELBO``
``-c * red(pyro_elbo(p, q))`` (score-function surrogate)          ``Trace_ELBO``
``-c * red(VRBound(p, q, k, alpha))``, ``IWAE`` (alpha 0)         ``RenyiELBO(alpha,
                                                                  num_particles=k)``
the same at ``alpha = 1`` (the ELBO with ``k`` draws)             ``Trace_ELBO``
================================================================  =========================

with ``sample_shape=[S]`` as ``num_particles=S, vectorize_particles=True``, and a bound's
``k`` draws as ``RenyiELBO(..., num_particles=k, vectorize_particles=True)`` (the bound's
``estimator`` must be ``"reparam"``: ``RenyiELBO`` differentiates the value, and has no
``"dreg"`` or ``"stl"`` gradient).  A bound is the whole loss or it does not map: with
other terms beside it (``-IWAE(p, q, k).mean() + beta * KL``) no stock ELBO computes the
sum.  Pyro's ELBOs
return :math:`-\\mathcal{L}` summed over the data plate, so the loss is
``scale * elbo.differentiable_loss(model, guide, ...)``, divided by the rows for
``.mean()``.  Any other formula (a β-weighted KL, a classifier term, MMD, ...)
has no stock ELBO: :attr:`Objective.elbo` is ``None`` and :attr:`Objective.reason` says
why; :class:`~pixyz_pyro.infer.SVILoss` then evaluates it with the direct executor.
"""
from typing import List, NamedTuple, Optional, Tuple

from ..dist.distribution import Distribution
from ..loss import bounds, divergences, expectation, ops, pdf
from ..loss import values as value_nodes
from ..loss.base import Loss
from ..loss.plan import Plan, compile_plan

#: The ELBO names :func:`objective` can choose.
ELBOS = ("Trace_ELBO", "TraceMeanField_ELBO", "TraceEnum_ELBO", "RenyiELBO")


class Objective(NamedTuple):
    """How a loss maps to Pyro (see the module docstring).

    Attributes
    ----------
    elbo : str or None
        ``"Trace_ELBO"``, ``"TraceMeanField_ELBO"``, ``"TraceEnum_ELBO"`` or
        ``"RenyiELBO"``; ``None`` when no stock ELBO computes the formula.
    kind : str
        ``"elbo"`` (reparameterised or enumerated), ``"score"`` (Pyro's score-function
        surrogate), ``"mean_field"`` (analytic KL), ``"renyi"`` (a multi-sample bound) or
        ``"direct"``.
    model, guide : Distribution or None
        The distributions whose Pyro programs the ELBO runs: the joint of the
        :math:`\\log p` terms and the :math:`q` of the expectation.
    model_factors : tuple
        The distributions whose product the model is (the likelihood and the prior of an
        analytic-KL form; the model itself otherwise).
    scale : float
        ``loss = scale * elbo(...)`` (before the ``.mean()`` division).
    mean : bool
        The loss is a ``.mean()`` over the rows.
    num_particles : int
        The draws of the expectation (``sample_shape``), or the bound's ``k``.
    reason : str
        Why the formula is not a stock ELBO (empty when it is one).
    alpha : float
        ``RenyiELBO``'s order (the bound's ``alpha``; 0 for IWAE).
    bound : VRBound or None
        The bound node that ``RenyiELBO`` computes.
    """

    elbo: Optional[str]
    kind: str
    model: Optional[Distribution]
    guide: Optional[Distribution]
    model_factors: Tuple[Distribution, ...]
    scale: float
    mean: bool
    num_particles: int
    reason: str
    alpha: float = 0.0
    bound: Optional[bounds.VRBound] = None

    def describe(self) -> str:
        """One line: the ELBO and its settings, or the fallback and why."""
        if self.elbo is None:
            return f"direct executor ({self.reason})"
        parts = [f"num_particles={self.num_particles}, vectorize_particles=True"
                 if self.num_particles > 1 else ""]
        if self.elbo == "RenyiELBO":
            parts.insert(0, f"alpha={self.alpha:g}" + (", " if parts[0] else ""))
        scale = f"{self.scale:g} * " if self.scale != 1 else ""
        mean = " / rows" if self.mean else ""
        return f"{scale}{self.elbo}({''.join(parts)}){mean}"


def _direct(reason: str) -> Objective:
    return Objective(None, "direct", None, None, (), 0.0, False, 1, reason)


class _Term(NamedTuple):
    coef: float
    reduction: Optional[str]
    node: Loss


def _number(node: Loss) -> Optional[float]:
    if isinstance(node, value_nodes.ValueLoss):
        v = node.value
        try:
            return float(v)
        except (TypeError, ValueError):
            return None
    return None


def _terms(node: Loss, coef: float, reduction: Optional[str], out: List[_Term]) -> str:
    """Split ``node`` into constant-weighted terms; '' or why it cannot be split."""
    if isinstance(node, ops.NegLoss):
        return _terms(node.a, -coef, reduction, out)
    if isinstance(node, (ops.BatchSum, ops.BatchMean)):
        if reduction is not None:
            return "it reduces over the batch twice"
        return _terms(node.a, coef, "mean" if isinstance(node, ops.BatchMean) else "sum", out)
    if isinstance(node, (ops.AddLoss, ops.SubLoss)):
        why = _terms(node.a, coef, reduction, out)
        sign = -1.0 if isinstance(node, ops.SubLoss) else 1.0
        return why or _terms(node.b, sign * coef, reduction, out)
    if isinstance(node, (ops.MulLoss, ops.DivLoss)):
        a, b = _number(node.a), _number(node.b)
        if isinstance(node, ops.MulLoss) and a is not None:
            return _terms(node.b, coef * a, reduction, out)
        if isinstance(node, ops.MulLoss) and b is not None:
            return _terms(node.a, coef * b, reduction, out)
        if isinstance(node, ops.DivLoss) and b is not None and b != 0:
            return _terms(node.a, coef / b, reduction, out)
        weight = next((c for c in node.children if not c.distributions()), None)
        if weight is None:
            return f"{node._short()} multiplies two terms"
        return f"a term is weighted by {weight._short()}, which is not a number"
    out.append(_Term(coef, reduction, node))
    return ""


def _log_prob_of(node: Loss) -> Optional[Distribution]:
    """``p`` of a plain ``LogProb(p)`` (summed over the features), else ``None``."""
    if type(node) is pdf.LogProb and node.sum_features and node.feature_dims is None:
        return node.p
    return None


def _elbo_body(node: Loss) -> Optional[Tuple[Distribution, Distribution]]:
    """``(p, q)`` of ``log p - log q``."""
    if isinstance(node, ops.SubLoss):
        p, q = _log_prob_of(node.a), _log_prob_of(node.b)
        if p is not None and q is not None:
            return p, q
    return None


def _classify(node: Loss):
    """``(kind, details)`` of one term, or ``(None, why)``."""
    if isinstance(node, expectation.Expectation):
        if not node.reparam:
            return None, f"{node._short()} is not reparameterised"
        q = node.p
        score_of = getattr(q, "q", None)
        if score_of is not None and isinstance(node.f, ops.AddLoss):  # pyro_elbo's surrogate
            pq = _elbo_body(node.f.a)
            if pq is not None and pq[1] is score_of:
                return "score", (pq[0], score_of, node.n)
        pq = _elbo_body(node.f)
        if pq is not None and pq[1] is q:
            return "elbo", (pq[0], q, node.n)
        lik = _log_prob_of(node.f)
        if lik is not None:
            return "lik", (lik, q, node.n)
        return None, f"the body of {node._short()} is not log p - log q"
    if isinstance(node, divergences.KullbackLeibler):
        if not node.analytical or node.dim is not None:
            return None, f"{node._short()} is not an analytic KL over all features"
        return "kl", (node.p, node.q)
    if isinstance(node, bounds.VRBound):
        if node.estimator != "reparam":
            return None, (f"{node._short()} takes the {node.estimator!r} gradient estimator, "
                          f"which Pyro's RenyiELBO does not have (it differentiates the "
                          f"bound's value, the 'reparam' estimator)")
        return "renyi", (node.p, node.q, node.k, node)
    return None, f"{node._short()} is not a term of an ELBO"


def objective(loss) -> Objective:
    """The :class:`Objective` of ``loss`` (a :class:`~pixyz_pyro.loss.Loss` or a
    :class:`~pixyz_pyro.loss.plan.Plan`).

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import ELBO, KullbackLeibler, Expectation, LogProb
    >>> q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
    >>> prior = Normal(loc=0., scale=1., var=["z"], name="p_{prior}")
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"])
    >>> objective(-ELBO(p * prior, q, sample_shape=[4]).sum()).describe()
    'Trace_ELBO(num_particles=4, vectorize_particles=True)'
    >>> objective((KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean()).describe()
    'TraceMeanField_ELBO() / rows'
    >>> beta_vae = (4 * KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).sum()
    >>> print(objective(beta_vae).reason)
    the KL and the likelihood are weighted 4 and 1; no stock ELBO weights them apart
    >>> from pixyz_pyro.loss import IWAE
    >>> objective(-IWAE(p * prior, q, k=50).mean()).describe()
    'RenyiELBO(alpha=0, num_particles=50, vectorize_particles=True) / rows'
    >>> print(objective(-IWAE(p * prior, q, k=50, estimator="dreg").mean()).reason)
    ... # doctest: +NORMALIZE_WHITESPACE
    \\log \\frac{1}{50}\\sum_{i=1}^{50} \\frac{p(x,z_i)}{q(z_i|x)} takes the 'dreg' gradient
    estimator, which Pyro's RenyiELBO does not have (it differentiates the bound's value,
    the 'reparam' estimator)
    """
    plan = loss if isinstance(loss, Plan) else compile_plan(loss)
    terms: List[_Term] = []
    why = _terms(plan.loss, 1.0, None, terms)
    if why:
        return _direct(why)
    if any(t.reduction is None for t in terms):
        return _direct("it is not reduced to a scalar with .sum() or .mean()")
    if len({t.reduction for t in terms}) > 1:
        return _direct("it mixes .sum() and .mean() terms")
    mean = terms[0].reduction == "mean"
    kinds = []
    for t in terms:
        kind, detail = _classify(t.node)
        if kind is None:
            return _direct(detail)
        kinds.append((kind, detail, t.coef))
    if len(kinds) == 1 and kinds[0][0] == "renyi":
        _, (p, q, k, bound), c = kinds[0]
        if bound.alpha == 1.0:  # the ELBO with k draws (RenyiELBO leaves it to Trace_ELBO)
            return Objective("Trace_ELBO", "elbo", p, q, (p,), -c, mean, k, "")
        return Objective("RenyiELBO", "renyi", p, q, (p,), -c, mean, k, "", bound.alpha,
                         bound)
    if any(k == "renyi" for k, _, _ in kinds):
        return _direct(f"its terms ({', '.join(k for k, _, _ in kinds)}) add other terms to "
                       f"a multi-sample bound; Pyro's RenyiELBO computes the bound alone")
    if len(kinds) == 1 and kinds[0][0] in ("elbo", "score"):
        kind, (p, q, n), c = kinds[0]
        elbo = "TraceEnum_ELBO" if kind == "elbo" and getattr(q, "enumerated_var", ()) \
            else "Trace_ELBO"
        return Objective(elbo, kind, p, q, (p,), -c, mean, n, "")
    if len(kinds) == 2 and {k for k, _, _ in kinds} == {"kl", "lik"}:
        (_, (kq, prior), a), (_, (lik, q, n), b) = sorted(kinds, key=lambda k: k[0] != "kl")
        if kq is not q:
            return _direct(f"the KL is over {kq.prob_text}, the expectation over "
                           f"{q.prob_text}")
        if a != -b:
            return _direct(f"the KL and the likelihood are weighted {a:g} and {-b:g}; no "
                           f"stock ELBO weights them apart")
        return Objective("TraceMeanField_ELBO", "mean_field", lik * prior, q, (lik, prior), a,
                         mean, n, "")
    return _direct(f"its terms ({', '.join(k for k, _, _ in kinds)}) are not one ELBO")


__all__ = ["Objective", "objective", "ELBOS"]
