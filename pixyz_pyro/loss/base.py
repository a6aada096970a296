"""Loss expressions: immutable nodes with arithmetic, and the direct executor.

A loss is plain data.  Three interpreters read it, and none knows the others:

* :meth:`Loss.eval` (here) computes it on tensors -- the *direct executor*;
* :mod:`pixyz_pyro.loss.latex` prints it (the only module that imports sympy);
* :mod:`pixyz_pyro.infer` translates it to Pyro.

The direct executor's contract:

1. One :class:`~pixyz_pyro.dist.context.Context` per call memoises each distribution's
   ``forward`` by input identity, and is dropped afterwards (no tensor survives).
2. Each node's ``_eval(values, ctx)`` returns ``(value, new_samples)``.  Siblings see the
   same input values, as in Pixyz; samples flow only into an expectation's body.
3. No sympy, no deepcopy, no ``.item()`` and no host sync on the hot path.  Input names
   are checked on every call (a set difference); everything else is checked on the
   first call of each distribution.
"""
from typing import Dict, List, Optional, Tuple

import torch

from ..dist.context import Context
from ..dist.running import restore_running, snapshot_running
from ..errors import (
    LossError,
    VariableError,
    check_mapping,
    check_values,
    missing_vars_message,
    passes_through,
    wrap_error,
)

Values = Dict[str, object]


class Loss:
    """Base class of loss expressions.

    Subclasses set their children in ``__init__`` and implement ``_eval``.  After
    ``__init__`` a node is immutable.
    """

    _frozen = False
    #: Operator nodes are transparent when a loss is split into its terms.
    _is_operator = False

    def __setattr__(self, key, value):
        if self._frozen:
            raise AttributeError(f"loss expressions are immutable; cannot set {key!r}")
        object.__setattr__(self, key, value)

    def _freeze(self) -> None:
        object.__setattr__(self, "_frozen", True)

    # --- structure ----------------------------------------------------------------------
    @property
    def children(self) -> Tuple["Loss", ...]:
        return ()

    @property
    def _input_var(self) -> List[str]:
        """Variables this node reads (before what its children sample)."""
        out: List[str] = []
        for c in self.children:
            out.extend(v for v in c.input_var if v not in out)
        return out

    @property
    def input_var(self) -> List[str]:
        return list(self._input_var)

    def distributions(self) -> List[object]:
        """Every distribution the expression uses (for parameter collection)."""
        out: List[object] = []
        for c in self.children:
            for d in c.distributions():
                if all(d is not o for o in out):
                    out.append(d)
        return out

    def _is_linear(self) -> bool:
        """Whether this node's value is a linear map of its terms' values (``+ - mean sum``
        and scaling by a constant); then it is transparent when split into terms."""
        return self._is_operator

    def _linear_children(self) -> Tuple["Loss", ...]:
        """The children that hold terms (a constant scale factor holds none)."""
        return self.children

    def terms(self) -> List["Loss"]:
        """The top-level terms: the maximal subexpressions that are not linear operators."""
        if not self._is_linear():
            return [self]
        out: List[Loss] = []
        for c in self._linear_children():
            out.extend(c.terms())
        return out

    # --- the direct executor ------------------------------------------------------------
    def _eval(self, values: Values, ctx: Context) -> Tuple[torch.Tensor, Values]:
        raise NotImplementedError

    def _run(self, values: Values, ctx: Context) -> Tuple[torch.Tensor, Values]:
        value, new = self._eval(values, ctx)
        if ctx.terms is not None and id(self) in ctx.terms:
            ctx.terms[id(self)] = value
        return value, new

    def eval(self, x_dict: Optional[Values] = None, return_dict: bool = False,
             return_all: bool = True, return_terms: bool = False, **kwargs):
        """Evaluate the loss on ``x_dict``.

        Returns the value; with ``return_dict`` also the dict of inputs and samples
        (only the samples when ``return_all=False``); with ``return_terms`` also a dict
        ``{term text: contribution}`` of the top-level terms, from the same evaluation:
        each term's value carried through the signs, scalings and reductions above it,
        so that the contributions sum to the value.
        """
        values = self._checked_input(x_dict)
        values.update(kwargs.pop("constants", {}))
        need = self.input_var
        self._check_input_names(values, need)
        ctx = Context(batch_n=_batch_n(values, need), kwargs=kwargs)
        saved = snapshot_running(self._modules())
        try:
            if return_terms:
                from .ops import split_terms
                value, new, parts = split_terms(self, values, ctx)
            else:
                value, new = self._run(values, ctx)
        except BaseException as e:
            restore_running(saved)
            if passes_through(e):
                raise
            raise wrap_error(f"evaluating {self._short()}", e, values, need) from e
        out = [value]
        if return_dict:
            if return_all:
                values.update(new)
                out.append(values)
            else:
                out.append(new)
        if return_terms:
            from .ops import broadcast_like
            split: Dict[str, object] = {}
            for t, c in parts:
                label, c = _term_label(t), broadcast_like(c, value)
                split[label] = split[label] + c if label in split else c
            out.append(split)
        return out[0] if len(out) == 1 else tuple(out)

    def _checked_input(self, x_dict) -> Values:
        """A copy of the input dict (validated as a dict)."""
        if x_dict is not None and not hasattr(x_dict, "keys"):  # the formula only on error
            check_mapping(f"the loss {self._short()}", x_dict)
        return dict(x_dict) if x_dict is not None else {}

    def _modules(self) -> List[object]:
        """:meth:`distributions`, found once (nodes are immutable)."""
        found = self.__dict__.get("_found_modules")
        if found is None:
            found = self.distributions()
            object.__setattr__(self, "_found_modules", found)
        return found

    def _check_input_names(self, values: Values, need: List[str]) -> None:
        """Raise unless every needed variable is present and usable (a cheap check: set
        membership and types, no host sync)."""
        missing = [v for v in need if v not in values]
        if missing:
            users = [d.prob_text for d in self.distributions()
                     if any(v in getattr(d, "var", ()) + getattr(d, "cond_var", ())
                            for v in missing)]
            who = f"the loss {self._short()}" + (f" (through {', '.join(users)})"
                                                 if users else "")
            raise VariableError(missing_vars_message(who, missing, values, "evaluation"))
        check_values(lambda: f"the loss {self._short()}", values, need)  # formula on error

    def estimate(self, x_dict: Optional[Values] = None, **kwargs):
        """The paper's spelling of :meth:`eval`."""
        return self.eval(x_dict, **kwargs)

    def __call__(self, x_dict: Optional[Values] = None, **kwargs):
        return self.eval(x_dict, return_dict=True, **kwargs)

    # --- printing (late import: building a loss never touches sympy) --------------------
    @property
    def loss_text(self) -> str:
        from .latex import loss_text
        return loss_text(self)

    def __str__(self) -> str:
        return self.loss_text

    def __repr__(self) -> str:
        return self.loss_text

    def _repr_latex_(self) -> str:
        return f"${self.loss_text}$"

    def _short(self) -> str:
        """The formula, for error messages (the class name if it cannot be printed)."""
        try:
            return self.loss_text
        except Exception:  # noqa: BLE001 - a message must never raise
            return type(self).__name__

    # --- algebra --------------------------------------------------------------------------
    def __add__(self, other):
        from .ops import AddLoss
        return AddLoss(self, other)

    def __radd__(self, other):
        from .ops import AddLoss
        return AddLoss(other, self)

    def __sub__(self, other):
        from .ops import SubLoss
        return SubLoss(self, other)

    def __rsub__(self, other):
        from .ops import SubLoss
        return SubLoss(other, self)

    def __mul__(self, other):
        from .ops import MulLoss
        return MulLoss(self, other)

    def __rmul__(self, other):
        from .ops import MulLoss
        return MulLoss(other, self)

    def __truediv__(self, other):
        from .ops import DivLoss
        return DivLoss(self, other)

    def __rtruediv__(self, other):
        from .ops import DivLoss
        return DivLoss(other, self)

    def __neg__(self):
        from .ops import NegLoss
        return NegLoss(self)

    def __abs__(self):
        return self.abs()

    def abs(self):
        from .ops import AbsLoss
        return AbsLoss(self)

    def mean(self):
        from .ops import BatchMean
        return BatchMean(self)

    def sum(self):
        from .ops import BatchSum
        return BatchSum(self)

    def detach(self):
        from .ops import Detach
        return Detach(self)

    def expectation(self, p, sample_shape=torch.Size([1])):
        from .expectation import Expectation
        return Expectation(p, self, sample_shape=sample_shape)

    def constant_var(self, constant_dict: Dict[str, object]):
        from .values import ConstantVar
        return ConstantVar(self, constant_dict)

    # Losses are compared by identity (they are used as dict keys by the executor).
    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise LossError("a loss expression has no truth value; call .eval() to compute it")


def inputs_of(dist, values: Values) -> Values:
    """The entries of ``values`` that ``dist`` takes as input (to draw fresh samples of
    all its variables, as Pixyz's ``sample`` does)."""
    return {k: values[k] for k in dist.input_var if k in values}


def _batch_n(values: Values, names: List[str]) -> Optional[int]:
    for k in names:
        v = values.get(k)
        if isinstance(v, torch.Tensor) and v.dim() > 0:
            return v.shape[0]
    return None


def _term_label(term: Loss) -> str:
    try:
        return term.loss_text
    except Exception:  # noqa: BLE001 - a label must never break an evaluation
        return repr(type(term).__name__)


def as_loss(value) -> Loss:
    """Wrap numbers and tensors as :class:`~pixyz_pyro.loss.values.ValueLoss`."""
    if isinstance(value, Loss):
        return value
    if isinstance(value, (int, float, torch.Tensor)):
        from .values import ValueLoss
        return ValueLoss(value)
    raise LossError(f"cannot combine a loss with {type(value).__name__} ({value!r})")
