"""The per-evaluation context shared by sampling and scoring.

One :class:`Context` lives for one top-level call (``sample``, ``get_log_prob`` or
``loss.eval``) and is dropped after it, so no tensor survives an evaluation.  It
memoises each distribution's ``forward`` by the identity of its input tensors: within
one evaluation ``q(z|x)`` runs once however many terms use it.  Each step of an
``IterativeLoss`` memoises its own forwards (:mod:`pixyz_pyro.loss.series`), eagerly as
in a compiled step body, so that a step's parameters are freed with the step.
"""
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Set, Tuple

from .checks import Flags
from .repeats import Repeats
from .shapes import is_compiling


def memo_key(owner: object, inputs: Tuple) -> Tuple:
    """The eager memo's key for ``owner`` on ``inputs``: the ``id`` of each (see
    :meth:`Context.recall`)."""
    return (id(owner), *map(id, inputs))


class Context:
    """Scratch space of one evaluation.

    Attributes
    ----------
    memo : dict
        ``(id(dist), ids of inputs) -> (inputs, params)``.  The inputs are kept beside the
        params so that the ids stay unique while the context lives.
    terms : dict or None
        When not ``None``, ``id(term node) -> value`` for the top-level terms.
    shared : dict or None
        Values of the loss nodes that occur more than once in the expression, so that each
        is evaluated once per evaluation (``e - e`` is exactly zero).
    flags : Flags
        Support checks left on the device (:mod:`pixyz_pyro.dist.checks`), read once.
    checked : dict
        The host checks (names, dtypes, devices, shapes) already passed in this
        evaluation, keyed by everything they read (see
        :meth:`FactorDistribution._validate <pixyz_pyro.dist.factor.FactorDistribution>`),
        to the support checks they leave: the 49 later steps of a 50-step series repeat
        the first step's metadata, and a lookup stands for the checks that would pass
        again.
    seen_params, seen_values : set
        The ids of the factors whose parameters, or whose value, were checked in this
        evaluation: a factor's first ones are checked in full without building a key for
        ``checked``, which only a later call could read (most factors of a non-series
        loss are called once per evaluation).
    in_series : bool
        Whether an ``IterativeLoss`` is running its steps, which call every factor of
        the step body again: there a key is built from the first call on.
    batch_n : int or None
        Batch size of the evaluation, used when sampling unconditioned distributions.
    options : object
        The evaluation's declared options (e.g. which side of an adversarial loss), set
        by the loss executor; ``None`` elsewhere.
    witnessed : pair of lists of tensors, or None
        The :func:`~pixyz_pyro.dist.checks.witnesses` of the strict and of the lenient
        ``flags``, when the evaluation computed them itself (a compiled one, where their
        reductions fuse with the kernels that produce the checked tensors); ``None``:
        the step computes them.
    step_runner : callable or None
        How an ``IterativeLoss`` runs its step body, ``(step_loss, state, ctx) -> (value,
        new samples)``; ``None`` for the interpreter's own ``run`` (the compiled step sets
        one that runs a compiled step body, see :mod:`pixyz_pyro.model.compile`).
    once : frozenset
        The ids of the factors whose parameters one node of the plan reads once
        (:func:`~pixyz_pyro.loss.plan.read_once`): :meth:`remember` is not called for
        them, so that their parameters are freed after their one use.
    scope : tuple
        The ``replace_var`` distributions the current call runs inside, outermost first
        (each sets it around its inner call): messages name the factor's variables in
        the user's names (:class:`~pixyz_pyro.dist.naming.Renamed`).
    repeats : Repeats or None
        Inside the body of an expectation with ``n > 1`` draws, the inputs that stand for
        their ``n``-fold repeats (:mod:`pixyz_pyro.dist.repeats`); ``None`` elsewhere.
    """

    __slots__ = ("memo", "terms", "shared", "flags", "checked", "seen_params", "seen_values",
                 "in_series", "batch_n", "options", "traced", "step_runner", "witnessed",
                 "repeats", "once", "scope")

    def __init__(self, batch_n: Optional[int] = None, record_terms: bool = False,
                 options: Any = None):
        self.memo: Dict[Tuple, Any] = {}  # a (inputs, value) pair, or a list of them if traced
        self.terms: Optional[Dict[int, Any]] = {} if record_terms else None
        self.shared: Optional[Dict[int, Any]] = None
        self.flags = Flags()
        self.checked: Dict[Tuple, Tuple] = {}
        self.seen_params: Set[int] = set()
        self.seen_values: Set[int] = set()
        self.in_series = False
        self.batch_n = batch_n
        self.options = options
        #: Whether the evaluation runs under ``torch.compile`` (see :meth:`recall`).
        self.traced = is_compiling()
        self.step_runner: Optional[Callable[..., Any]] = None
        self.witnessed: Optional[Tuple[List[Any], List[Any]]] = None
        self.repeats: Optional[Repeats] = None
        self.once: FrozenSet[int] = frozenset()
        self.scope: Tuple = ()

    def release(self) -> None:
        """Drop what only the evaluation itself reads: the memo (every factor's
        parameters) and the shared nodes' values.  The step's backward keeps the tensors
        it needs; the flags and the terms' values stay for the step's read.  Both dicts
        are emptied in place, so that a compiled piece that releases its context returns
        none of their tensors (Dynamo replays the final contents of the containers that
        existed before the call, see :mod:`pixyz_pyro.model.compile`)."""
        self.memo.clear()
        if self.shared is not None:
            self.shared.clear()

    def for_step(self, traced: bool) -> "Context":
        """A fresh context for one step of a series, with this one's batch, options and
        shared nodes (its support flags go back to this context, see
        :mod:`pixyz_pyro.model.compile`)."""
        sub = Context(self.batch_n, options=self.options)
        if self.shared is not None:
            sub.shared = {i: [] for i in self.shared}
        sub.traced = traced
        return sub

    def recall(self, owner: object, inputs: Tuple) -> Any:
        """What :meth:`remember` stored for ``owner`` on these very input objects, or
        ``None``.

        Eagerly the key is the ``id`` of each input (a dict lookup).  Under
        ``torch.compile`` the inputs are compared with ``is`` instead, so that Dynamo
        traces the lookup without guarding on the identity of each batch.
        """
        if self.traced:
            for seen, value in self.memo.get((id(owner), "traced"), ()):
                if len(seen) == len(inputs) and all(a is b for a, b in zip(seen, inputs)):
                    return value
            return None
        hit = self.memo.get(memo_key(owner, inputs))
        return None if hit is None else hit[1]

    def remember(self, owner: object, inputs: Tuple, value: Any) -> None:
        """Store ``value`` for ``owner`` on ``inputs`` (see :meth:`recall`); the inputs are
        kept, so that their ids stay unique while the context lives."""
        if self.traced:
            self.memo.setdefault((id(owner), "traced"), []).append((inputs, value))
        else:
            self.memo[memo_key(owner, inputs)] = (inputs, value)
