"""The direct executor: one interpreter over loss nodes, by dispatch on the node type.

:func:`evaluate` has one handler per node type and returns ``(value, new_samples)``;
:func:`run` is how a handler evaluates a child.  The contract:

1. Values flow down as one dict ``{name: tensor}``; siblings see the same input values,
   as in Pixyz, and samples flow only into an expectation's body.
2. Distributions are called through their executor protocol (``_params``,
   ``_sample_values``, ``_log_prob_values``) inside one
   :class:`~pixyz_pyro.dist.context.Context`, which memoises each ``forward`` by input
   identity, records the plan's top-level terms and collects the support checks.
3. A node that occurs more than once in the expression is evaluated once per input
   dict (:attr:`Plan.shared <pixyz_pyro.loss.plan.Plan>`), so ``e - e`` is exactly 0.
4. No sympy, no deepcopy, no ``.item()`` and no host sync: the checks are host metadata
   and device flags (:mod:`pixyz_pyro.dist.checks`).
"""
import functools
import math
import operator
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch.distributions import kl_divergence

from ..dist.context import Context
from ..dist.factor import FactorDistribution
from ..dist.factor import _sum_features as sum_features
from ..dist.family import PYRO_NUMERICS, closed_kl
from ..dist.repeats import Repeats
from ..dist.shapes import SHAPES, fold, shape_str
from ..dist.validation import checking
from ..errors import LossError, ShapeError
from . import (
    adversarial,
    bounds,
    data_parallel,
    divergences,
    entropy,
    expectation,
    mmd,
    ops,
    pdf,
    sample_distance,
    wasserstein,
)
from . import values as value_nodes
from .base import Loss
from .plan import plain_factors

Values = Dict[str, object]
Result = Tuple[object, Values]


def run(node: Loss, values: Values, ctx: Context) -> Result:
    """Evaluate ``node`` on ``values``: once per input dict for a shared node, and its value
    recorded when it is one of the plan's top-level terms."""
    shared = ctx.shared
    if shared is not None and id(node) in shared:
        seen = shared[id(node)]
        for v, result in seen:
            if v is values:
                return result
        result = evaluate(node, values, ctx)
        seen.append((values, result))  # the dict is kept, so its id stays unique
    else:
        result = evaluate(node, values, ctx)
    terms = ctx.terms
    if terms is not None and id(node) in terms:
        terms[id(node)] = result[0]
    return result


@functools.singledispatch
def evaluate(node, values: Values, ctx: Context) -> Result:
    """``(value, new samples)`` of ``node`` (one handler per node type)."""
    raise LossError(f"{type(node).__name__} is not a loss node that pixyz_pyro can "
                    f"evaluate; register a handler with "
                    f"pixyz_pyro.loss.evaluate.evaluate.register({type(node).__name__})")


# --- leaves ---------------------------------------------------------------------------------
@evaluate.register(value_nodes.ValueLoss)
def _value(node, values, ctx):
    return node.tensor, {}


@evaluate.register(value_nodes.Parameter)
def _parameter(node, values, ctx):
    return values[node.name], {}


@evaluate.register(value_nodes.ConstantVar)
def _constant_var(node, values, ctx):
    return run(node.base, {**values, **node.constants}, ctx)


@evaluate.register(pdf.LogProb)
def _log_prob(node, values, ctx):
    return node.p._log_prob_values(values, ctx, node.sum_features, node.feature_dims), {}


@evaluate.register(pdf.Prob)
def _prob(node, values, ctx):
    lp = node.p._log_prob_values(values, ctx, node.sum_features, node.feature_dims)
    return lp.exp(), {}


# --- arithmetic -----------------------------------------------------------------------------
def _check_shapes(node, x, y) -> None:
    """Two per-row values must have the same shape: no silent broadcasting (a number, or
    a tensor with one element, broadcasts)."""
    if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and \
            x.shape != y.shape and x.numel() != 1 and y.numel() != 1:
        raise ShapeError(f"{node.a._short()} has shape {shape_str(x.shape)} and "
                         f"{node.b._short()} has shape {shape_str(y.shape)}: a loss combines "
                         f"values of one shape (one per batch element, or a scalar); "
                         f"reduce one with .mean() or .sum() first")


def _binary(op):
    def handler(node, values, ctx):
        x, nx = run(node.a, values, ctx)
        y, ny = run(node.b, values, ctx)
        if checking():
            _check_shapes(node, x, y)
        if nx and ny:
            nx = {**nx, **ny}
        return op(x, y), (nx or ny)
    return handler


def _tensor_op(op):
    return lambda x, y: op(torch.as_tensor(x), torch.as_tensor(y))


def _unary(op):
    def handler(node, values, ctx):
        x, new = run(node.a, values, ctx)
        return op(x), new
    return handler


def _reduce(method: str):
    return lambda x: getattr(x, method)() if isinstance(x, torch.Tensor) else x


#: The operator nodes and what they compute.
BINARY = {ops.AddLoss: operator.add, ops.SubLoss: operator.sub, ops.MulLoss: operator.mul,
          ops.DivLoss: operator.truediv, ops.MinLoss: _tensor_op(torch.minimum),
          ops.MaxLoss: _tensor_op(torch.maximum)}
UNARY = {ops.NegLoss: operator.neg, ops.AbsLoss: lambda x: x.abs(),
         ops.BatchMean: _reduce("mean"), ops.BatchSum: _reduce("sum"),
         ops.Detach: _reduce("detach")}
for _cls, _op in BINARY.items():
    evaluate.register(_cls)(_binary(_op))
for _ucls, _uop in UNARY.items():
    evaluate.register(_ucls)(_unary(_uop))


@evaluate.register(data_parallel.DataParalleledLoss)
def _data_parallel(node, values, ctx):
    return run(node.loss, values, ctx)


# --- expectations -----------------------------------------------------------------------------
def _batch_of(dist, values, default):
    """The batch size of ``dist``'s first batched input, else ``default``."""
    return first_batch(dist.input_var, values, default)


def first_batch(names, values, default):
    """The batch size of the first batched tensor of ``values`` named in ``names``, else
    ``default``."""
    for v in names:
        t = values.get(v)
        if isinstance(t, torch.Tensor) and t.dim() > 0:
            return t.shape[0]
    return default


def _fold_rows(values, b: int, n: int) -> Values:
    """``values`` with every tensor of ``b`` rows repeated for ``n`` draws, draw-major
    (:func:`~pixyz_pyro.dist.shapes.fold`)."""
    names = [k for k, v in values.items()
             if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == b]
    return fold(values, names, n)


#: The body nodes that pass the values only to their children or to a distribution's score.
_LAZY_NODES = (pdf.LogProb, pdf.Prob, ops.AddLoss, ops.SubLoss, ops.MulLoss, ops.DivLoss,
               ops.NegLoss, ops.BatchMean, ops.BatchSum, value_nodes.ValueLoss)


def lazy_body(f: Loss) -> bool:
    """Whether an expectation's body ``f`` may see its repeated inputs as their ``b`` rows
    (:mod:`pixyz_pyro.dist.repeats`): every node is arithmetic or a score, and every
    scored distribution reads the values through factors only."""
    if type(f) not in _LAZY_NODES:
        return False
    if isinstance(f, pdf.LogProb) and plain_factors(f.p) is None:
        return False
    return all(lazy_body(c) for c in f.children)


def _repeats(node, values, b: int, ctx) -> Optional[Repeats]:
    """The :class:`~pixyz_pyro.dist.repeats.Repeats` of ``values``' ``b``-row tensors for
    an expectation's draws, or ``None``: fold them (a body that :func:`lazy_body` does not
    allow)."""
    return _repeats_of(node.p, node.n, values, b, ctx) if lazy_body(node.f) else None


def _repeats_of(q, n: int, values, b: int, ctx) -> Optional[Repeats]:
    """The ``b``-row tensors of ``values`` besides ``q``'s variables, standing for their
    repeats for ``n`` draws of ``q``; ``None`` in a compiled evaluation (which folds)."""
    if ctx.traced or ctx.repeats is not None:
        return None
    names = q.var
    originals = {k: v for k, v in values.items() if k not in names and
                 isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == b}
    return Repeats(n, b, originals) if originals else None


@evaluate.register(expectation.Expectation)
def _expectation(node, values, ctx):
    """:math:`\\frac1n \\sum_s f(z_s)`: ``p``'s parameters are computed once on the
    ``b`` rows and ``n`` draws taken from them, folded draw-major to ``n * b`` rows
    (``fold``), on which ``f`` is evaluated once and averaged over the draws."""
    n, p = node.n, node.p
    batch_n = _batch_of(p, values, ctx.batch_n)
    if p.enumerates:
        return _enumerated(node, values, ctx, batch_n)
    # p draws all of its variables afresh, as Pixyz's sample does: a value of one of them
    # in the input (last step's z, carried by an IterativeLoss) is not a draw of p.
    given = values
    if any(v in values for v in p.var):
        given = {k: v for k, v in values.items() if k not in p.var}
    options = ctx.options
    if options is not None and options.sample_mean:  # every draw would be the mean
        from ..dist.mean_sample import mean_values
        new = mean_values(p, given)
        value, more = run(node.f, {**values, **new}, ctx)
        return value, ({**new, **more} if more else new)
    if n == 1:
        new = p._sample_values(given, ctx, node.reparam, batch_n)
        value, more = run(node.f, {**values, **new}, ctx)
        return value, ({**new, **more} if more else new)
    if mixes_rows(node.f):
        return _per_draw(node, values, given, ctx, batch_n)
    repeats = _repeats(node, values, batch_n or 1, ctx)
    # with repeats, the b rows stand for their repeats (pixyz_pyro.dist.repeats)
    folded = _fold_rows(values, batch_n or 1, n) if repeats is None else values
    new = p._sample_n(given, ctx, node.reparam, batch_n, n, folded if given is values else
                      {k: v for k, v in folded.items() if k in given}, repeats)
    outer, ctx.repeats = ctx.repeats, repeats
    try:
        value, more = run(node.f, {**folded, **new}, ctx)
    finally:
        ctx.repeats = outer
    if isinstance(value, torch.Tensor) and value.dim() > 0:
        value = value.reshape(n, -1, *value.shape[1:]).mean(0)
    new.update(more)
    return value, {k: v.reshape(*node.sample_shape, -1, *v.shape[1:]) for k, v in new.items()}


#: Nodes whose value combines the batch's rows (a reduction, a distance between samples,
#: a discriminator's loss): on folded rows they would reduce over every draw at once.
_ROW_MIXING = (ops.BatchMean, ops.BatchSum, sample_distance.SampleDistance,
               adversarial.AdversarialLoss)


def mixes_rows(f: Loss) -> bool:
    """Whether some node of ``f`` combines rows (:data:`_ROW_MIXING`), so that ``f`` on
    ``n`` draws folded into ``n * b`` rows is not ``n`` values of ``f`` side by side."""
    return isinstance(f, _ROW_MIXING) or any(mixes_rows(c) for c in f.children)


def _per_draw(node, values, given, ctx, batch_n):
    """:math:`\\frac1n \\sum_s f(z_s)` with ``f`` evaluated once per draw on the ``b``
    rows, for a body that combines rows (:func:`mixes_rows`): for ``f = LogProb(p).sum()``
    the expectation is :math:`\\frac1n \\sum_s \\sum_i \\log p(x_i|z_{s,i})`, which one
    evaluation on the folded ``n * b`` rows would give ``n`` times over (Pixyz also
    evaluates the body once per draw).  The draws come from one evaluation of ``p``'s
    parameters, as on the folded path, and are returned the same way."""
    n = node.n
    new = node.p._sample_values(given, ctx, node.reparam, batch_n, n)
    b = next(iter(new.values())).shape[0] // n if new else 0
    parts: List[Any] = []
    more: Values = {}
    for s in range(n):
        draw = {k: v[s * b:(s + 1) * b] for k, v in new.items()}
        value, more = run(node.f, {**values, **draw}, ctx)
        parts.append(value)
    value = torch.stack(parts).mean(0) if isinstance(parts[0], torch.Tensor) \
        else sum(parts) / n
    samples = {k: v.reshape(*node.sample_shape, -1, *v.shape[1:]) for k, v in new.items()}
    return value, {**samples, **more}


def _weighted_sum(value, log_w, k: int, who: str):
    """:math:`\\sum_e q(e|x) f_e` from ``f`` on the ``K * B`` folded rows."""
    if not isinstance(value, torch.Tensor) or value.dim() == 0 or \
            value.shape[0] != log_w.shape[0]:
        got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise LossError(f"{who}: an expectation over enumerated sites needs a body with one "
                        f"value per row ({log_w.shape[0]} folded rows), got {got}; reduce "
                        f"with .sum() or .mean() outside the expectation")
    w = log_w.exp().reshape(k, -1, *([1] * (value.dim() - 1)))
    return (value.reshape(k, -1, *value.shape[1:]) * w).sum(0)


def _enumerated(node, values, ctx, batch_n):
    """:math:`\\sum_e q(e|x)\\,\\mathbb{E}_{q(z|x,e)}[f]` for a distribution whose
    ``_draw`` enumerates some of its sites (:mod:`pixyz_pyro.infer.enumeration`): ``f`` on
    the ``K * b`` folded rows, weighted and summed over the ``K`` values; plain draws
    otherwise.  ``sample_shape`` folds the draws first, as above."""
    n, p = node.n, node.p
    if n > 1:
        values, batch_n = _fold_rows(values, batch_n or 1, n), n * (batch_n or 1)
    draw = p._draw(values, ctx, node.reparam, batch_n)
    value, more = run(node.f, {**draw.inputs, **draw.values}, ctx)
    new = {**draw.values, **more} if more else draw.values
    if draw.log_weight is not None:
        value, new = _weighted_sum(value, draw.log_weight, draw.k, p.prob_text), {}
    if n > 1 and isinstance(value, torch.Tensor) and value.dim() > 0:
        value = value.reshape(n, -1, *value.shape[1:]).mean(0)
        new = {k: v.reshape(*node.sample_shape, -1, *v.shape[1:]) for k, v in new.items()}
    return value, new


# --- divergences and entropies --------------------------------------------------------------
def _sum_features(kl, dim):
    if dim is not None and not (isinstance(dim, (list, tuple)) and not dim):  # [], as None
        return kl.sum(dim=dim)
    return sum_features(kl, True, None)  # every dimension after the batch, as a factor


def _scalar(d, full) -> bool:
    """A distribution of scalar constants without a features_shape broadcasts."""
    return not getattr(d, "features_shape", True) and tuple(full) in ((1,), ())


def _check_kl_shapes(node, fp, fq) -> None:
    """The same features on both sides; a batch of 1 broadcasts."""
    if _scalar(node.p, fp) or _scalar(node.q, fq):
        return
    if len(fp) != len(fq) or fp[1:] != fq[1:] or (
            len(fp) and fp[0] != fq[0] and 1 not in (fp[0], fq[0])):
        var = node.p.var[0] if node.p.var else "?"
        raise ShapeError(f"{node.p.prob_text} gave {var} with features "
                         f"{shape_str(fp[1:])}, {node.q.prob_text} expects "
                         f"{shape_str(fq[1:])}: a KL divergence needs the same features on "
                         f"both sides ({SHAPES})")


def _closed_kl(p, q):
    """The numerics table's closed-form KL when both sides are factors that use the
    table (``None``: ``kl_divergence`` of the pyro objects)."""
    if getattr(p, "_numerics", PYRO_NUMERICS) is PYRO_NUMERICS or \
            getattr(q, "_numerics", PYRO_NUMERICS) is PYRO_NUMERICS:
        return None
    return closed_kl(p.family, q.family)


@evaluate.register(divergences.KullbackLeibler)
def _kl(node, values, ctx):
    """The closed form of the numerics table where both sides have one, else
    ``kl_divergence`` of the two ``pyro.distributions`` objects, else an error."""
    if node.mc is not None:
        return run(node.mc, values, ctx)
    p, q = node.p, node.q
    closed = _closed_kl(p, q)
    if closed is not None:
        pp, pq = p._params(values, ctx), q._params(values, ctx)
        if checking():
            _check_kl_shapes(node, p._value_shape(pp, None), q._value_shape(pq, None))
        kl = closed(pp, pq)
        if kl is not None:
            return _sum_features(kl, node.dim), {}
    if not hasattr(p, "pyro_dist") or not hasattr(q, "pyro_dist"):
        raise LossError(f"KullbackLeibler({p.prob_text}, {q.prob_text}): an analytic KL "
                        f"needs two single-factor distributions; use analytical=False for "
                        f"joints")
    dp, dq = p.pyro_dist(values, ctx), q.pyro_dist(values, ctx)
    if checking():
        _check_kl_shapes(node, tuple(dp.batch_shape + dp.event_shape),
                         tuple(dq.batch_shape + dq.event_shape))
    if dp.batch_shape != dq.batch_shape:  # a batch of 1 (a prior) against the batch:
        # torch's own closed forms do not all broadcast (Bernoulli's masks its rows)
        shape = torch.broadcast_shapes(dp.batch_shape, dq.batch_shape)
        dp, dq = dp.expand(shape), dq.expand(shape)
    try:
        kl = kl_divergence(dp, dq)
    except NotImplementedError:
        raise LossError(f"no analytic KL is registered between {type(dp).__name__} "
                        f"({p.prob_text}) and {type(dq).__name__} ({q.prob_text}); use "
                        f"KullbackLeibler(..., analytical=False)") from None
    return _sum_features(kl, node.dim), {}


@evaluate.register(entropy.Entropy)
def _entropy(node, values, ctx):
    if node.mc is not None:
        return run(node.mc, values, ctx)
    return node.p._entropy_values(values, ctx), {}


# --- losses between samples -------------------------------------------------------------------
def _inputs_of(dist, values):
    """The entries of ``values`` that ``dist`` takes as input (so that it draws all of its
    variables afresh, as Pixyz's ``sample`` does)."""
    return {k: values[k] for k in dist.input_var if k in values}


def _draw_pair(node, values, ctx):
    v = node.p.var[0]
    x = node.p._sample_values(_inputs_of(node.p, values), ctx, True, ctx.batch_n)[v]
    y = node.q._sample_values(_inputs_of(node.q, values), ctx, True, ctx.batch_n)[v]
    x, y = x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)
    if x.shape[1] != y.shape[1]:
        raise ShapeError(f"{type(node).__name__}: {node.p.prob_text} gave {v} with features "
                         f"{x.shape[1]}, {node.q.prob_text} gave {y.shape[1]}")
    return x, y


@evaluate.register(mmd.MMD)
def _mmd(node, values, ctx):
    x, y = _draw_pair(node, values, ctx)
    k, kp = node.kernel, node.kernel_params
    return (mmd._offdiag_mean(k(x, x, **kp)) + mmd._offdiag_mean(k(y, y, **kp))
            - 2 * k(x, y, **kp).mean()), {}


@evaluate.register(wasserstein.WassersteinDistance)
def _wasserstein(node, values, ctx):
    return node.metric(*_draw_pair(node, values, ctx)), {}


@evaluate.register(adversarial.AdversarialLoss)
def _adversarial(node, values, ctx):
    """Draws of both sides, scored by the discriminator; the discriminator side
    (``Plan.side``) sees them detached."""
    options = ctx.options
    detach = options is not None and options.side == "discriminator"
    b = ctx.batch_n
    # Each side samples from its own inputs only: the data "x" in the dict must not
    # stand in for the generator's "x" (a joint skips factors whose value is given).
    xp = node.p._sample_values(_inputs_of(node.p, values), ctx, True, b)
    xq = node.q._sample_values(_inputs_of(node.q, values), ctx, True, b)
    if detach:
        xp = {k: v.detach() for k, v in xp.items()}
        xq = {k: v.detach() for k, v in xq.items()}
    d = node.d
    yp = d._sample_values({**values, **xp}, ctx, True, None)[d.var[0]]
    yq = d._sample_values({**values, **xq}, ctx, True, None)[d.var[0]]
    return (node._d_loss(yp, yq) if detach else node._g_loss(yp, yq)), {}


__all__ = ["evaluate", "run", "BINARY", "UNARY"]


# --- multi-sample bounds (loss/bounds.py) -----------------------------------------------------
def _stopped_log_prob(q, values, ctx):
    """:math:`\\log q_{\\bar\\phi}(z|x)`: ``q``'s parameters as computed for the draw (the
    memo: no second ``forward``), with their gradient stopped; the value keeps its path."""
    factors = [q] if isinstance(q, FactorDistribution) else q.factors()
    total = None
    for f in factors:
        inner = [v for v in f.cond_var if v in q.var]
        if not isinstance(f, FactorDistribution) or inner:
            why = (f"its factor {f.prob_text} depends on the sampled {inner}" if inner
                   else f"{f.prob_text} is not a single-family factor")
            raise LossError(f"{q.prob_text}: the stl and dreg estimators stop the gradient "
                            f"of each factor's parameters, which needs factors whose "
                            f"parameters do not depend on q's own draws; {why}. Use "
                            f"estimator='reparam'")
        params = {k: (t.detach() if hasattr(t, "detach") else t)
                  for k, t in f._params(values, ctx).items()}
        x = values[f.var[0]]
        closed = f._numerics.log_prob
        lp = closed(params, x) if closed is not None else None
        if lp is None:
            lp = f.family.log_prob(f.family.build(params), x)
        lp = sum_features(lp, True, None)
        total = lp if total is None else total + lp
    return total


def _scaled_grad(z, box):
    """``z`` whose incoming gradient is multiplied by ``box[0]`` (set later in the same
    forward pass, read in backward)."""
    z = z.view_as(z)
    if z.requires_grad:
        z.register_hook(lambda g: g * box[0].reshape(-1, *([1] * (g.dim() - 1))).to(g.dtype))
    return z


@evaluate.register(bounds.VRBound)
def _vr_bound(node, values, ctx):
    """``k`` draws of ``q`` folded into the batch, ``log w`` once on the ``k * b`` rows,
    then the stabilised Rényi log-mean-exp over the draws (see :mod:`..bounds`)."""
    k, p, q, alpha = node.k, node.p, node.q, node.alpha
    batch_n = _batch_of(q, values, None)
    if batch_n is None:  # an unconditional q: one set of k draws per row of the data
        batch_n = next((values[v].shape[0] for v in node.input_var
                        if isinstance(values.get(v), torch.Tensor) and values[v].dim() > 0),
                       ctx.batch_n)
    # the data stands for its k-fold repeat where p and q score through factors
    repeats = _repeats_of(q, k, values, batch_n or 1, ctx) \
        if plain_factors(p) is not None and plain_factors(q) is not None else None
    folded = _fold_rows(values, batch_n or 1, k) if repeats is None else values
    new = q._sample_n(values, ctx, True, batch_n, k, folded, repeats)
    box: List[torch.Tensor] = []  # the DReG scale, set below
    if node.estimator == "dreg":
        new = {n: _scaled_grad(z, box) for n, z in new.items()}
    scored = {**folded, **new}
    outer, ctx.repeats = ctx.repeats, repeats
    try:
        log_p = p._log_prob_values(scored, ctx)
        if node.estimator == "reparam":
            log_q = q._log_prob_values(scored, ctx)
        else:
            log_q = _stopped_log_prob(q, scored, ctx)
    finally:
        ctx.repeats = outer
    lw = (log_p - log_q).reshape(k, -1)
    if alpha == 1.0:
        bound = lw.mean(0)
        v = torch.full_like(lw, 1.0 / k)
    else:
        scaled = (1.0 - alpha) * lw
        bound = (torch.logsumexp(scaled, 0) - math.log(k)) / (1.0 - alpha)
        v = torch.softmax(scaled, 0)
    if node.estimator != "dreg":
        return bound, {}
    v = v.detach()
    box.append((alpha + (1.0 - alpha) * v).reshape(-1))
    surrogate = (v * lw).sum(0)
    return bound.detach() + (surrogate - surrogate.detach()), {}


# The IterativeLoss handler and the step plan (they use the handlers above).
from . import series  # noqa: E402,F401
