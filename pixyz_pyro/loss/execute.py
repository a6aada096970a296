"""The one entry point of the direct executor.

``Loss.eval``, ``Model.train``/``test``, ``GAN``, ``SVILoss`` and the compiled step all
evaluate a loss the same way:

1. :func:`prepare` checks the call against the :class:`~pixyz_pyro.loss.plan.Plan`
   (keywords, input names and types: host metadata only) and makes the evaluation's
   :class:`~pixyz_pyro.dist.context.Context`;
2. :func:`~pixyz_pyro.loss.evaluate.run` computes the value on tensors;
3. the support checks left on the device are read once: by :func:`finish` at the end of
   an evaluation, or folded by ``Model.train`` into its one finiteness read.

Nothing here depends on what ran before: the same call gives the same value or the same
error every time.
"""
import warnings
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Tuple

import torch

from ..dist.checks import settle
from ..dist.context import Context
from ..dist.running import restore_running, snapshot_slots
from ..dist.validation import user_stacklevel
from ..errors import (
    KeywordError,
    VariableError,
    check_mapping,
    check_values,
    did_you_mean,
    missing_vars_message,
    passes_through,
    wrap_error,
)
from .base import Loss
from .evaluate import UNARY, run
from .ops import AddLoss, BatchMean, BatchSum, DivLoss, MulLoss, SubLoss, UnaryLoss
from .plan import Plan, check_gradients, compile_plan

Values = Dict[str, object]
#: Keywords every evaluation accepts besides the declared ones: extra inputs by name, and
#: the number of draws of a distribution that no input conditions (as Pixyz's ``batch_n``).
ACCEPTED = frozenset({"constants", "batch_n"})


class Options(NamedTuple):
    """The evaluation's choices that nodes read: the adversarial side, a mask, and
    whether expectations plug in means instead of draws (Pixyz's ``sample_mean``)."""

    side: str
    mask: Optional[torch.Tensor]
    sample_mean: bool = False


def check_keywords(plan: Plan, kwargs: Dict, who: str, returns: bool = True) -> None:
    """Raise :class:`~pixyz_pyro.errors.KeywordError` (a ``TypeError``) for a keyword
    that neither the API nor a node of the loss declares, with a did-you-mean.  With
    ``returns`` the caller also takes ``loss.eval``'s ``return_dict``, ``return_all`` and
    ``return_terms`` (a ``Model``'s ``train`` and ``test`` do not: they return the loss)."""
    allowed = ACCEPTED | plan.keywords
    for k in kwargs:
        if k not in allowed:
            known = sorted(allowed | RETURNS) if returns else sorted(allowed)
            hint = ""
            if not returns and k in RETURNS:
                hint = f"; {who} returns the loss only: use loss.eval(..., {k}=True)"
            raise KeywordError(f"{who} got an unexpected keyword argument {k!r}"
                               f"{'' if hint else did_you_mean(k, known)}{hint}; this "
                               f"loss accepts {known}")


#: ``loss.eval``'s keywords that choose what it returns.
RETURNS = frozenset({"return_dict", "return_all", "return_terms"})


def pixyz_keywords(kwargs: Dict, who: str) -> Dict:
    """``kwargs`` with ``batch_size=`` read as ``batch_n=`` and a DeprecationWarning that
    says so (Pixyz 0.3.3 ignored ``batch_size`` and drew one sample: the user meant the
    batch size); both given is a :class:`~pixyz_pyro.errors.KeywordError`.  Other
    keywords are left to :func:`check_keywords`."""
    if "batch_size" not in kwargs:
        return kwargs
    out = dict(kwargs)
    size = out.pop("batch_size")
    if "batch_n" in out:
        raise KeywordError(f"{who} got batch_size={size!r} and batch_n={out['batch_n']!r}; "
                           f"batch_size is read as batch_n: give batch_n only")
    warnings.warn(f"{who}: batch_size={size!r} is read as batch_n={size!r} (the number of "
                  f"draws of a distribution that no input conditions); Pixyz's spelling is "
                  f"batch_n, and Pixyz 0.3.3 ignored batch_size", DeprecationWarning,
                  stacklevel=user_stacklevel())
    out["batch_n"] = size
    return out


def _batch_n(values: Values, names: Iterable[str]) -> Optional[int]:
    for k in names:
        v = values.get(k)
        if isinstance(v, torch.Tensor) and v.dim() > 0:
            return v.shape[0]
    return None


def prepare(plan: Plan, x_dict: Optional[Mapping[str, object]], kwargs: Dict, who: str,
            record_terms: bool = False, returns: bool = True) -> Tuple[Values, Context]:
    """The checked input dict and the context of one evaluation of ``plan`` (``returns``:
    see :func:`check_keywords`)."""
    check_keywords(plan, kwargs, who, returns)
    if x_dict is not None and not hasattr(x_dict, "keys"):
        check_mapping(lambda: f"the loss {plan.loss._short()}", x_dict)
    values = dict(x_dict) if x_dict is not None else {}
    constants = kwargs.get("constants")
    if constants:
        values.update(constants)
    need = plan.input_var
    for v in need:  # no list on the normal path
        if v not in values:
            _missing(plan, values)
    check_values(lambda: f"the loss {plan.loss._short()}", values, need)
    batch_n = kwargs.get("batch_n")
    ctx = Context(batch_n=batch_n if batch_n is not None else _batch_n(values, need),
                  options=Options(plan.side, kwargs.get("mask"),
                                  bool(kwargs.get("sample_mean", False))))
    if record_terms:
        ctx.terms = dict.fromkeys(plan.recorded)
    if plan.shared:
        ctx.shared = {i: [] for i in plan.shared}
    ctx.once = plan.once
    return values, ctx


def _missing(plan: Plan, values: Values) -> None:
    missing = [v for v in plan.input_var if v not in values]
    users = [d.prob_text for d in plan.distributions
             if any(v in getattr(d, "var", ()) + getattr(d, "cond_var", ()) for v in missing)]
    who = f"the loss {plan.loss._short()}" + (f" (through {', '.join(users)})" if users
                                             else "")
    raise VariableError(missing_vars_message(who, missing, values, "evaluation"))


def finish(ctx: Context) -> None:
    """Read the evaluation's support checks (one host read) and raise for a violation."""
    settle(ctx.flags)


def eval_loss(loss: Loss, x_dict: Optional[Mapping[str, object]], return_dict: bool,
              return_all: bool, return_terms: bool, kwargs: Dict) -> Any:
    """:meth:`Loss.eval <pixyz_pyro.loss.Loss.eval>` (see there)."""
    side = "discriminator" if kwargs.get("discriminator") else "generator"
    plan = compile_plan(loss, side)
    values, ctx = prepare(plan, x_dict, kwargs, f"{type(loss).__name__}.eval()",
                          record_terms=return_terms)
    if torch.is_grad_enabled():
        check_gradients(plan)
    saved = snapshot_slots(plan.running)
    try:
        value, new = run(loss, values, ctx)
        finish(ctx)
    except BaseException as e:
        restore_running(saved)
        if passes_through(e):
            raise
        settle(ctx.flags)  # a torch error caused by a value outside its support
        raise wrap_error(f"evaluating {loss._short()}", e, values, plan.input_var) from e
    out: List[object] = [value]
    if return_dict:
        if return_all:
            values.update(new)
            out.append(values)
        else:
            out.append(new)
    if return_terms:
        out.append(term_dict(plan, ctx.terms))
    return out[0] if len(out) == 1 else tuple(out)


# --- terms ------------------------------------------------------------------------------------
def _broadcast_like(c: Any, x: object) -> Any:
    """``c`` broadcast to the shape of ``x`` (numbers stay numbers when ``x`` is one)."""
    if not isinstance(x, torch.Tensor) or x.dim() == 0:
        return c
    return torch.broadcast_to(torch.as_tensor(c, dtype=x.dtype, device=x.device), x.shape)


def _split(node: Loss, rec: Mapping[int, object], terms: Mapping[int, object]
           ) -> Tuple[object, List[Tuple[int, Any]]]:
    """The value of ``node`` (recorded) and ``[(term id, contribution)]``, carried through
    the linear operators above each term."""
    value = rec[id(node)]
    if id(node) in terms:
        return value, [(id(node), value)]
    if isinstance(node, UnaryLoss):
        x, parts = _split(node.a, rec, terms)
        op = UNARY[type(node)]
        if isinstance(node, (BatchMean, BatchSum)):
            return value, [(t, op(_broadcast_like(c, x))) for t, c in parts]
        return value, [(t, op(c)) for t, c in parts]
    if isinstance(node, (MulLoss, DivLoss)):
        (linear,) = node._linear_children()
        other = node.b if linear is node.a else node.a
        k = rec[id(other)]
        _, parts = _split(linear, rec, terms)
        if isinstance(node, DivLoss):
            return value, [(t, c / k) for t, c in parts]
        return value, [(t, k * c) for t, c in parts]
    assert isinstance(node, (AddLoss, SubLoss))  # the linear nodes left
    _, pa = _split(node.a, rec, terms)
    _, pb = _split(node.b, rec, terms)
    if isinstance(node, SubLoss):
        pb = [(t, -c) for t, c in pb]
    return value, pa + pb


def contributions(plan: Plan, rec: Mapping[int, object]) -> List[Tuple[int, object]]:
    """``[(term index, contribution)]`` whose (broadcast) sum is the loss's value."""
    index = {id(t.node): i for i, t in enumerate(plan.terms)}
    value, parts = _split(plan.loss, rec, index)
    out: Dict[int, object] = {}
    for t, c in parts:
        c = _broadcast_like(c, value)
        out[index[t]] = out[index[t]] + c if index[t] in out else c
    return sorted(out.items())


def term_keys(plan: Plan) -> List[str]:
    """A unique, stable key per term: its formula, with ``#2``, ``#3``... after a formula
    that an earlier, different term already has."""
    from .latex import loss_texts
    labels = loss_texts(plan.loss, [t.node for t in plan.terms])
    keys: List[str] = []
    seen: Dict[str, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        keys.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return keys


def term_dict(plan: Plan, rec: Optional[Mapping[int, object]]) -> Dict[str, object]:
    """``{term key: contribution}`` from the values recorded in one evaluation."""
    keys = term_keys(plan)
    return {keys[i]: c for i, c in contributions(plan, rec or {})}


__all__ = ["prepare", "finish", "eval_loss", "check_keywords", "pixyz_keywords", "contributions",
           "term_keys", "term_dict", "Options"]
