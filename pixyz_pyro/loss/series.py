"""Time series: an ``IterativeLoss`` runs its step body ``T`` times, from a step plan.

The interpreter (:mod:`pixyz_pyro.loss.evaluate`) decides at every node what to do: which
handler, which closed form, which checks.  In a series those decisions are the same at
every step, so :func:`step_plan` makes them once per evaluation, before the loop: it
turns the step body into nested closures, one per node,

.. math::

    \\mathcal{L}_t = \\mathrm{step}(x_t, h_{t-1}), \\qquad
    \\mathrm{step} = \\mathrm{plan}(\\mathcal{L}_{step}),

in which the handler, the closed form, the operator and the validation level are bound
once, and a check that depends only on the shapes of what it reads (the KL's) runs again
only when those shapes change.  Every other check runs at every step, as in the
interpreter: the factors validate their parameters and values on every call, and each
support is flagged at every step.  The values are the interpreter's, bit for bit, on the
same draws (``tests/test_series.py``).

A node without a plan of its own, one that occurs twice in the expression (its value is
shared) or a top-level term (its value is recorded) runs through the interpreter's
:func:`~pixyz_pyro.loss.evaluate.run` inside the plan, so any step body is planned.

>>> import torch
>>> from pixyz_pyro.dist import Normal
>>> from pixyz_pyro.loss import IterativeLoss, LogProb
>>> p = Normal(loc="h_prev", scale=1., var=["x"], cond_var=["h_prev"])
>>> loss = IterativeLoss(LogProb(p), max_iter=3, series_var=["x"])
>>> x = torch.zeros(3, 2, 1)
>>> round(float(loss.eval({"x": x, "h_prev": torch.zeros(2, 1)}).sum()), 4)
-5.5136
"""
import functools
import operator
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import torch

from ..dist.context import Context
from ..dist.factor import FactorDistribution
from ..dist.family import PYRO_NUMERICS
from ..dist.shapes import shape_str
from ..dist.validation import checking
from ..errors import ShapeError
from . import divergences, expectation, iterative, ops, pdf
from .base import Loss
from .evaluate import (
    BINARY,
    UNARY,
    Result,
    Values,
    _check_kl_shapes,
    _check_shapes,
    _closed_kl,
    _sum_features,
    evaluate,
    first_batch,
    run,
)

#: A planned node: ``(values, ctx) -> (value, new samples)``, as :func:`run`.
Step = Callable[[Values, Context], Result]


def _run_sees(node: Loss, ctx: Context) -> bool:
    """Whether ``run`` must evaluate ``node``: its value is shared, or recorded as a term."""
    shared, terms = ctx.shared, ctx.terms
    return (shared is not None and id(node) in shared) or \
        (terms is not None and id(node) in terms)


def step_plan(node: Loss, ctx: Context) -> Step:
    """The plan of ``node`` for this evaluation (see the module docstring)."""
    if _run_sees(node, ctx):
        return functools.partial(run, node)
    return _plan(node, ctx, checking())


@functools.singledispatch
def _plan(node: Loss, ctx: Context, check: bool) -> Step:
    """Any node without a plan of its own: the interpreter."""
    return functools.partial(run, node)


def _binary(node: ops.BinaryLoss, ctx: Context, check: bool) -> Step:
    op = BINARY[type(node)] if type(node) in BINARY else None
    if op is None:
        return functools.partial(run, node)
    a, b = step_plan(node.a, ctx), None
    if type(node) is ops.SubLoss:  # a - log p as a + (-log p): no negation kernel
        b = negated_plan(node.b, ctx)
        if b is not None:
            op = operator.add
    if b is None:
        b = step_plan(node.b, ctx)

    def step(values: Values, ctx: Context) -> Result:
        x, nx = a(values, ctx)
        y, ny = b(values, ctx)
        if check:
            _check_shapes(node, x, y)
        if nx and ny:
            nx = {**nx, **ny}
        return op(x, y), (nx or ny)
    return step


def _unary(node: ops.UnaryLoss, ctx: Context, check: bool) -> Step:
    op = UNARY[type(node)] if type(node) in UNARY else None
    if op is None:
        return functools.partial(run, node)
    if type(node) is ops.NegLoss:  # -log p computed as such
        negated = negated_plan(node.a, ctx)
        if negated is not None:
            return negated
    a = step_plan(node.a, ctx)

    def step(values: Values, ctx: Context) -> Result:
        x, new = a(values, ctx)
        return op(x), new
    return step


for _cls in BINARY:
    _plan.register(_cls)(_binary)
for _ucls in UNARY:
    _plan.register(_ucls)(_unary)


@_plan.register(pdf.LogProb)
def _log_prob(node: pdf.LogProb, ctx: Context, check: bool) -> Step:
    score, sum_features, dims = node.p._log_prob_values, node.sum_features, node.feature_dims
    return lambda values, ctx: (score(values, ctx, sum_features, dims), {})


# --- negated plans: -f with the bits of -(value of f), without a negation kernel ----------
def negated_plan(node: Loss, ctx: Context) -> Optional[Step]:
    """A plan that computes ``-node`` directly, or ``None``: a log-likelihood of a factor
    whose numerics table has an ``nll`` (:class:`~pixyz_pyro.dist.family.Numerics`), and
    an expectation of one.  IEEE negation is exact, so ``a - f`` and ``a + (-f)`` are the
    same bits; the loss saves one elementwise kernel forward and one backward per term."""
    return None if _run_sees(node, ctx) else _negated(node, ctx, checking())


@functools.singledispatch
def _negated(node: Loss, ctx: Context, check: bool) -> Optional[Step]:
    return None


@_negated.register(pdf.LogProb)
def _negated_log_prob(node: pdf.LogProb, ctx: Context, check: bool) -> Optional[Step]:
    p: Any = node.p
    if type(p)._log_prob_values is not FactorDistribution._log_prob_values or \
            getattr(p, "_numerics", PYRO_NUMERICS).nll is None:
        return None
    score, sum_features, dims = p._log_prob_values, node.sum_features, node.feature_dims
    return lambda values, ctx: (score(values, ctx, sum_features, dims, True), {})


@_negated.register(expectation.Expectation)
def _negated_expectation(node: expectation.Expectation, ctx: Context, check: bool
                         ) -> Optional[Step]:
    if not _one_draw(node, ctx):
        return None
    f = negated_plan(node.f, ctx)
    return None if f is None else _draw_then(node, f)


def _param_shapes(params: Dict) -> Tuple:
    return tuple([t.shape for t in params.values() if isinstance(t, torch.Tensor)])


@_plan.register(divergences.KullbackLeibler)
def _kl(node: divergences.KullbackLeibler, ctx: Context, check: bool) -> Step:
    """A closed-form KL; its shape check runs again only for parameter shapes it has not
    passed in this evaluation (its result is a function of them)."""
    if node.mc is not None:
        return step_plan(node.mc, ctx)
    p: Any = node.p  # a factor (its _value_shape), as the closed form says
    q: Any = node.q
    dim = node.dim
    closed: Any = _closed_kl(p, q)
    if closed is None:
        return functools.partial(run, node)
    passed: Set[Tuple] = set()

    def step(values: Values, ctx: Context) -> Result:
        pp, pq = p._params(values, ctx), q._params(values, ctx)
        if check:
            key = (_param_shapes(pp), _param_shapes(pq))
            if key not in passed:
                _check_kl_shapes(node, p._value_shape(pp, None), q._value_shape(pq, None))
                passed.add(key)
        kl = closed(pp, pq)
        if kl is None:  # not tensors: the interpreter (the memo has the parameters)
            return run(node, values, ctx)
        return _sum_features(kl, dim), {}
    return step


def _one_draw(node: expectation.Expectation, ctx: Context) -> bool:
    """Whether the expectation is planned: one draw of ``p`` (``sample_shape`` 1, no
    enumeration, draws not replaced by means)."""
    options = ctx.options
    return node.n == 1 and not node.p.enumerates and \
        not (options is not None and options.sample_mean)


def _draw_then(node: expectation.Expectation, f: Step) -> Step:
    """Draw from ``node.p`` as the interpreter's handler does, then run ``f``."""
    p, var, reparam = node.p, tuple(node.p.var), node.reparam
    inputs = tuple(p.input_var)

    def step(values: Values, ctx: Context) -> Result:
        given = values
        for v in var:  # p draws its variables afresh
            if v in values:
                given = {k: t for k, t in values.items() if k not in var}
                break
        batch_n = first_batch(inputs, values, ctx.batch_n)
        new: Dict[str, Any] = p._sample_values(given, ctx, reparam, batch_n)
        value, more = f({**values, **new}, ctx)
        return value, ({**new, **more} if more else new)
    return step


@_plan.register(expectation.Expectation)
def _expectation(node: expectation.Expectation, ctx: Context, check: bool) -> Step:
    """One draw (:func:`_one_draw`); anything else runs through the interpreter."""
    if not _one_draw(node, ctx):
        return functools.partial(run, node)
    return _draw_then(node, step_plan(node.f, ctx))


# --- the series -------------------------------------------------------------------------------
def _check_series(node: iterative.IterativeLoss, values: Dict[str, Any], mask: Any) -> int:
    """The number of steps, after checking the series and the mask."""
    lengths = {v: values[v].shape[0] for v in node.series_var
               if isinstance(values.get(v), torch.Tensor)}

    def where() -> str:  # the formula only for an error
        return f"IterativeLoss over {node.step_loss._short()}"

    if len(set(lengths.values())) > 1:
        raise ShapeError(f"{where()}: the series_var {node.series_var} must have one length "
                         f"on dim 0 (time), got {lengths}")
    if node.max_iter and lengths and min(lengths.values()) < node.max_iter \
            and node.slice_step is None:
        raise ShapeError(f"{where()}: max_iter={node.max_iter} but the series are only "
                         f"{min(lengths.values())} steps long: {lengths}")
    steps = node.max_iter or values[node.series_var[0]].shape[0]
    if mask is not None:
        series = [values[v] for v in node.series_var
                  if isinstance(values.get(v), torch.Tensor) and values[v].dim() > 1]
        rows = series[0].shape[1] if series else None
        if not isinstance(mask, torch.Tensor) or mask.dim() != 2 or mask.shape[0] != steps \
                or (rows is not None and mask.shape[1] != rows):
            got = shape_str(mask.shape) if isinstance(mask, torch.Tensor) else \
                type(mask).__name__
            raise ShapeError(f"{where()}: the mask must have shape (T, batch) = ({steps}, "
                             f"{rows if rows is not None else 'batch'}), got {got}")
    return steps


@evaluate.register(iterative.IterativeLoss)
def _iterative(node: iterative.IterativeLoss, values: Values, ctx: Context) -> Result:
    """The step loss at ``t = 0, 1, ...`` on ``x[t]``; after each step its samples are
    renamed by ``update_value`` for the next one.  Each step sees a new dict.  The step
    body is planned once (:func:`step_plan`), or run by ``ctx.step_runner`` (a compiled
    step body, :mod:`pixyz_pyro.model.compile`)."""
    options = ctx.options
    mask = options.mask if options is not None and options.mask is not None else node.mask
    steps = _check_series(node, values, mask)
    t_name = node._t_name()
    sliced = node.series_var if node.slice_step is None else ()
    series: List[Tuple[str, Any]] = [(k, values[k]) for k in sliced]
    updates = tuple(node.update_value.items())
    runner = ctx.step_runner
    body = node.step_loss
    if runner is not None:
        step: Any = functools.partial(runner, body)
    else:  # under torch.compile, the interpreter: Dynamo traces it as it is
        step = functools.partial(run, body) if ctx.traced else step_plan(body, ctx)
    state = values
    total: Any = 0  # a tensor (or a number) after the first step
    new: Values = {}
    outer, in_series = ctx.memo, ctx.in_series
    ctx.in_series = True  # every step calls the body's factors again (see Context)
    try:
        for t in range(steps):
            # Each step memoises its own forwards, as a compiled step's fresh context does:
            # a step's parameters die with it instead of piling up until backward.
            ctx.memo = {}
            state = dict(state)
            if t_name is not None:
                state[t_name] = t
            for k, v in series:
                state[k] = v[t]
            value, new = step(state, ctx)
            if new:
                state.update(new)
            if mask is not None:
                value = value * mask[t].to(value.dtype if isinstance(value, torch.Tensor)
                                           else torch.get_default_dtype())
            total = total + value
            for old, renamed in updates:
                if old in state:
                    state[renamed] = state.pop(old)
    finally:
        ctx.memo, ctx.in_series = outer, in_series
    return total, new
