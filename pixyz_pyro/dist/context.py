"""The per-evaluation context shared by sampling and scoring.

One :class:`Context` lives for one top-level call (``sample``, ``get_log_prob`` or
``loss.eval``) and is dropped after it, so no tensor survives an evaluation.  It
memoises each distribution's ``forward`` by the identity of its input tensors: within
one evaluation ``q(z|x)`` runs once however many terms use it.
"""
from typing import Any, Dict, Optional, Tuple


class Context:
    """Scratch space of one evaluation.

    Attributes
    ----------
    memo : dict
        ``(id(dist), ids of inputs) -> (inputs, params)``.  The inputs are kept beside the
        params so that the ids stay unique while the context lives.
    terms : dict or None
        When not ``None``, top-level loss terms write their values here.
    batch_n : int or None
        Batch size of the evaluation, used when sampling unconditioned distributions.
    """

    __slots__ = ("memo", "terms", "batch_n", "kwargs")

    def __init__(self, batch_n: Optional[int] = None, record_terms: bool = False,
                 kwargs: Optional[Dict[str, Any]] = None):
        self.memo: Dict[Tuple, Tuple] = {}
        self.terms: Optional[Dict[str, Any]] = {} if record_terms else None
        self.batch_n = batch_n
        self.kwargs = kwargs or {}
