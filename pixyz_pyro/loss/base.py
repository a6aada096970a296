"""Loss expressions: immutable nodes with arithmetic.

A loss is plain data.  Interpreters read it, and none knows the others:

* :mod:`pixyz_pyro.loss.evaluate` computes it on tensors -- the *direct executor* --
  through a :class:`~pixyz_pyro.loss.plan.Plan` (:mod:`pixyz_pyro.loss.execute` is the
  one entry point that :meth:`Loss.eval`, ``Model``, ``GAN`` and ``SVILoss`` share);
* :mod:`pixyz_pyro.loss.latex` prints it (the only module that imports sympy);
* :mod:`pixyz_pyro.infer` translates it to Pyro.

A node holds its children and its settings, and never changes after ``__init__``: no
caches, no flags, nothing written on a later call.
"""
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple, Union

import torch

from ..dist.distribution import Distribution
from ..errors import LossError
from .module_api import ModuleAPI

Values = Dict[str, object]


#: What a loss can be combined with: another loss, a number or a tensor.
Operand = Union["Loss", float, torch.Tensor]
#: A number of draws (``1``, ``(2, 3)`` or a ``torch.Size``).
SampleShape = Union[int, Sequence[int], torch.Size]


class Loss(ModuleAPI):
    """Base class of loss expressions.

    Subclasses set their children and settings in ``__init__`` and end it with
    ``self._freeze()``; after that a node is immutable.  How a node type is computed is
    registered in :mod:`pixyz_pyro.loss.evaluate`, how it prints in
    :mod:`pixyz_pyro.loss.latex`.  :class:`~pixyz_pyro.loss.module_api.ModuleAPI` gives it
    Pixyz's ``nn.Module`` side (``.to``, ``.parameters()``, ``.train()``,
    ``state_dict``), delegated to the modules it holds.

    Losses combine like the numbers they stand for (``+ - * /``, ``-``, ``abs``, and the
    reductions ``.mean()`` / ``.sum()`` over the batch), and print as the formula.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import LogProb
    >>> p = Normal(loc=0., scale=1., var=["x"])
    >>> loss = (2 * -LogProb(p)).mean()
    >>> print(loss)
    mean \\left(- 2 \\log p(x) \\right)
    >>> loss.eval({"x": torch.zeros(3)})  # 2 * log(2 pi) / 2
    tensor(1.8379)
    """

    _frozen = False
    #: Operator nodes are transparent when a loss is split into its terms.
    _is_operator = False

    def __setattr__(self, key: str, value: object) -> None:
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

    def distributions(self) -> List[Distribution]:
        """Every distribution the expression uses (for parameter collection)."""
        out: List[Distribution] = []
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

    #: Keywords of ``eval``/``train``/``test`` that this node type reads (e.g. ``mask``).
    keywords: FrozenSet[str] = frozenset()

    # --- evaluation (the executor lives in loss/execute.py and loss/evaluate.py) ---------
    def eval(self, x_dict: Optional[Values] = None, return_dict: bool = False,
             return_all: bool = True, return_terms: bool = False, **kwargs: Any) -> Any:
        """Evaluate the loss on ``x_dict`` with the direct executor.

        Parameters
        ----------
        x_dict : dict
            ``{variable: tensor}``; every name of :attr:`input_var` must be there.
        return_dict : bool
            Also return the dict of inputs and samples (only the samples when
            ``return_all=False``).
        return_terms : bool
            Also return ``{key: contribution}`` of the top-level terms, from the same
            evaluation: each term's value carried through the signs, scalings and
            reductions above it, so that the contributions sum to the value.  Keys are
            unique and stable: a term's formula, and ``#2``, ``#3``... after a formula
            that two different terms share.
        **kwargs
            ``constants={name: value}`` (extra inputs), and the keywords that a node of
            this loss declares (``discriminator=True`` for an adversarial loss, ``mask=``
            for an :class:`~pixyz_pyro.loss.IterativeLoss`), ``batch_n=`` (draws of a
            distribution that no input conditions; ``batch_size=`` is read as ``batch_n``
            with a ``DeprecationWarning``) and ``sample_mean=True`` (an
            expectation plugs in the mean).  ``test_mode=True`` evaluates as
            ``Model.test`` does: without gradients, with every module the loss holds in
            eval mode for the call.  Any other keyword is a ``TypeError``.

        Examples
        --------
        >>> from pixyz_pyro.dist import Normal
        >>> from pixyz_pyro.loss import LogProb
        >>> p = Normal(loc=0., scale=1., var=["x"])
        >>> loss = -LogProb(p).mean()
        >>> loss.eval({"x": torch.zeros(4)})  # log(2 pi) / 2
        tensor(0.9189)
        >>> value, terms = (loss + 1).eval({"x": torch.zeros(4)}, return_terms=True)
        >>> {k: round(float(v), 4) for k, v in terms.items()}
        {'\\\\log p(x)': 0.9189, '1': 1.0}
        """
        from .execute import eval_loss, pixyz_keywords
        kwargs = pixyz_keywords(kwargs, f"{type(self).__name__}.eval()")
        if kwargs.pop("test_mode", False):
            from .module_api import evaluation_mode
            with evaluation_mode(self):
                return eval_loss(self, x_dict, return_dict, return_all, return_terms, kwargs)
        return eval_loss(self, x_dict, return_dict, return_all, return_terms, kwargs)

    def estimate(self, x_dict: Optional[Values] = None, **kwargs: Any) -> Any:
        """The paper's spelling of :meth:`eval`."""
        return self.eval(x_dict, **kwargs)

    def __call__(self, x_dict: Optional[Values] = None, **kwargs: Any) -> Any:
        return self.eval(x_dict, return_dict=True, **kwargs)

    def rewritten(self) -> "Loss":
        """This loss with the formula rewrites applied (:func:`pixyz_pyro.loss.rewrite.rewrite`),
        e.g. :math:`\\mathbb{E}_q[\\log q - \\log p] \\to D_{KL}[q \\| p]`.

        >>> from pixyz_pyro.dist import Normal
        >>> from pixyz_pyro.loss import Expectation, LogProb
        >>> q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
        >>> prior = Normal(loc=0., scale=1., var=["z"], name="p")
        >>> loss = Expectation(q, LogProb(q) - LogProb(prior)).mean()
        >>> print(loss.rewritten())
        mean \\left(D_{KL} \\left[q(z|x)||p(z) \\right] \\right)
        >>> _ = torch.manual_seed(0)
        >>> x = {"x": torch.randn(100, 1)}
        >>> round(float(loss.eval(x)), 2), round(float(loss.rewritten().eval(x)), 2)  # MC, exact
        (0.41, 0.53)
        """
        from .rewrite import rewrite
        return rewrite(self)

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
    def __add__(self, other: "Operand") -> "Loss":
        from .ops import AddLoss
        return AddLoss(self, other)

    def __radd__(self, other: "Operand") -> "Loss":
        from .ops import AddLoss
        return AddLoss(other, self)

    def __sub__(self, other: "Operand") -> "Loss":
        from .ops import SubLoss
        return SubLoss(self, other)

    def __rsub__(self, other: "Operand") -> "Loss":
        from .ops import SubLoss
        return SubLoss(other, self)

    def __mul__(self, other: "Operand") -> "Loss":
        from .ops import MulLoss
        return MulLoss(self, other)

    def __rmul__(self, other: "Operand") -> "Loss":
        from .ops import MulLoss
        return MulLoss(other, self)

    def __truediv__(self, other: "Operand") -> "Loss":
        from .ops import DivLoss
        return DivLoss(self, other)

    def __rtruediv__(self, other: "Operand") -> "Loss":
        from .ops import DivLoss
        return DivLoss(other, self)

    def __neg__(self) -> "Loss":
        from .ops import NegLoss
        return NegLoss(self)

    def __abs__(self) -> "Loss":
        return self.abs()

    def abs(self) -> "Loss":
        from .ops import AbsLoss
        return AbsLoss(self)

    def mean(self) -> "Loss":
        from .ops import BatchMean
        return BatchMean(self)

    def sum(self) -> "Loss":
        from .ops import BatchSum
        return BatchSum(self)

    def detach(self) -> "Loss":
        from .ops import Detach
        return Detach(self)

    def expectation(self, p: Distribution, sample_shape: SampleShape = torch.Size([1])) -> "Loss":
        from .expectation import Expectation
        return Expectation(p, self, sample_shape=sample_shape)

    def constant_var(self, constant_dict: Dict[str, object]) -> "Loss":
        from .values import ConstantVar
        return ConstantVar(self, constant_dict)

    # Losses are compared by identity (they are used as dict keys by the executor).
    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise LossError("a loss expression has no truth value; call .eval() to compute it")


def as_loss(value: Operand) -> Loss:
    """Wrap numbers and tensors as :class:`~pixyz_pyro.loss.values.ValueLoss`."""
    if isinstance(value, Loss):
        return value
    if isinstance(value, (int, float, torch.Tensor)):
        from .values import ValueLoss
        return ValueLoss(value)
    raise LossError(f"cannot combine a loss with {type(value).__name__} ({value!r})")
