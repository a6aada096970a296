"""An expectation's inputs repeated for its draws, folded only where a network reads them.

``Expectation(q, f, sample_shape=n)`` evaluates ``f`` on ``n * b`` rows: the ``n`` draws of
``q`` folded into the batch (:func:`~pixyz_pyro.dist.shapes.fold`), beside its ``b``-row
inputs repeated ``n`` times.  Repeating a tensor's rows is a copy (no strided view
repeats rows), and scoring the copy keeps it alive until backward: for the ELBO at
``n = 64``, a 128 x 784 batch of images is 26 MB more at the step's peak than
hand-written code, which scores ``x.expand(n, b, ...)``, a view, against the decoder's
``(n, b, ...)`` output.

A :class:`Repeats` stands for the repeated inputs inside one expectation's body.  The
body's values hold each input's ``b`` rows, and the factors that read them say what a
repeat means:

* a factor that **scores** a repeated variable scores its ``b`` rows expanded to
  ``(n, b, ...)`` (a view) against its parameters viewed as ``(n, b, ...)``, and returns
  the ``n * b`` rows the folded value would have given, the same numbers
  (``FactorDistribution._log_prob_values``);
* a factor whose **parameters** read a repeated input looks its memo up under
  :meth:`Repeats.key` of the ``b``-row inputs, where the draws' factor left its
  parameters (its ``_sample_n``), and only on a miss folds the inputs it reads, once per
  body (:meth:`Repeats.folded`), and computes its parameters on them as usual.

The executor makes one only for a body whose every reader of the values is such a
factor (:func:`pixyz_pyro.loss.evaluate.lazy_body`), and folds eagerly otherwise.

>>> import torch
>>> x = torch.arange(4.).reshape(2, 2)
>>> rep = Repeats(3, 2, {"x": x})
>>> rep.holds({"x": x}, ("x",)), rep.holds({"x": x.clone()}, ("x",))
(True, False)
>>> rep.folded({"x": x}, ("x",))["x"].shape
torch.Size([6, 2])
"""
from typing import Dict, Iterable, Optional, Tuple

import torch

from .shapes import repeat_rows


class Repeats:
    """The ``b``-row inputs of one expectation's body, each standing for its ``n``-fold
    repeat (draw-major, as :func:`~pixyz_pyro.dist.shapes.fold`).

    Parameters
    ----------
    n : int
        The number of draws.
    rows : int
        ``b``, the rows of each input.
    originals : dict
        ``{name: b-row tensor}``: the inputs that stand for their repeats.
    """

    __slots__ = ("n", "rows", "originals", "_folded")

    def __init__(self, n: int, rows: int, originals: Dict[str, torch.Tensor]) -> None:
        self.n, self.rows = n, rows
        self.originals: Dict[str, torch.Tensor] = originals
        self._folded: Dict[str, torch.Tensor] = {}  # made on first use, for this body

    def _original(self, values: Dict, name: str) -> Optional[torch.Tensor]:
        """The ``b``-row original of ``name`` when ``values`` holds it, else ``None``."""
        t = self.originals.get(name)
        return t if t is not None and values.get(name) is t else None

    def holds(self, values: Dict, names: Iterable[str]) -> bool:
        """Whether ``values`` holds one of ``names`` as its ``b``-row original."""
        return any(self._original(values, k) is not None for k in names)

    def key(self, inputs: Tuple) -> Tuple:
        """The memo key of parameters computed on the repeats of ``inputs``: this object
        before them (so the context's memo keeps it alive, and its id unique)."""
        return (self, *inputs)

    def folded(self, values: Dict, names: Iterable[str]) -> Dict:
        """``values`` with each of ``names`` that holds its original replaced by its
        repeat, folded once per body (the same tensor for every reader, so that the
        memo's identity keys agree)."""
        out = dict(values)
        made = self._folded
        for k in names:
            t = self._original(values, k)
            if t is None:
                continue
            f = made.get(k)
            if f is None:
                f = made[k] = repeat_rows(t, self.n)
            out[k] = f
        return out
