"""The shape convention, written down once.

Every tensor a distribution samples or scores has the shape

.. math::

    \\text{sample\\_shape} + \\text{batch\\_shape} + \\text{features\\_shape}

* ``batch_shape`` is exactly one leading dimension, the data batch (as in Pixyz).
* ``features_shape`` is everything after it.  ``get_log_prob(..., sum_features=True)``
  sums every dimension but the first, as Pixyz's ``sum_samples`` does: a batch
  ``(B, *features)`` gives ``(B,)``, and a value that keeps its sample dimensions,
  ``sample_shape + (B, *features)``, gives ``sample_shape[:1]`` (``(5, 3, 2)`` gives
  ``(5,)``).  ``feature_dims`` names the dimensions to sum instead
  (``feature_dims=[-1]`` gives ``(5, 3)`` there); ``sum_features=False`` sums none.
* ``sample_shape`` is the shape of extra Monte Carlo draws (``sample(sample_shape=...)``
  and ``Expectation(..., sample_shape=...)``).

Inside one evaluation the executors *fold* ``sample_shape`` into the batch dimension,
so that networks always see one batch dimension (convolutions included), and unfold at
the edge.  Error messages refer to this statement as ``SHAPES``.
"""
import math
from typing import Dict, Iterable, Tuple

import torch

try:
    from torch.compiler import is_compiling
except ImportError:  # torch < 2.3: nothing is compiled
    def is_compiling() -> bool:
        return False

SHAPES = "sample_shape + batch_shape + features_shape (see pixyz_pyro.dist.shapes)"


def numel(shape: Iterable[int]) -> int:
    return int(math.prod(shape))


def fold(values: Dict[str, object], names: Iterable[str], n: int) -> Dict[str, object]:
    """Repeat the batch tensors ``values[name]`` ``n`` times along a new leading axis and
    merge that axis into the batch: ``(B, *F) -> (n * B, *F)``, draw-major."""
    if n == 1:
        return values
    out = dict(values)
    for k in names:
        v = values.get(k)
        if isinstance(v, torch.Tensor) and v.dim() > 0:
            out[k] = repeat_rows(v, n)
    return out


def repeat_rows(t: torch.Tensor, n: int) -> torch.Tensor:
    """``t`` of ``(B, *F)`` repeated ``n`` times, draw-major: ``(n * B, *F)`` (a copy:
    no strided view repeats rows)."""
    return t.unsqueeze(0).expand(n, *t.shape).reshape(n * t.shape[0], *t.shape[1:])


def unfold(t: torch.Tensor, sample_shape: Tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`fold` for one tensor: ``(n * B, *F) -> sample_shape + (B, *F)``."""
    if not sample_shape:
        return t
    n = numel(sample_shape)
    return t.reshape(*sample_shape, t.shape[0] // n, *t.shape[1:])


def shape_str(shape) -> str:
    return str(tuple(shape))


def broadcast_shapes(*shapes) -> torch.Size:
    """NumPy broadcasting of shapes.

    ``torch.broadcast_shapes`` imports sympy on first use; this keeps building and
    evaluating models sympy-free.  Eagerly it folds the shapes pairwise with ATen's own
    rule, ``torch._C._infer_size`` (what ``torch.nn.functional`` broadcasts weights with:
    a quarter of the Python loop's cost, and a factor's checks broadcast its parameters
    on every call); under ``torch.compile``, or without that function, a Python loop that
    Dynamo traces.  Raises ``RuntimeError`` like torch when the shapes do not broadcast.

    >>> broadcast_shapes((1, 2), (3, 1), ())
    torch.Size([3, 2])
    """
    if _INFER_SIZE is not None and shapes and not is_compiling():
        out = shapes[0] if type(shapes[0]) is torch.Size else torch.Size(shapes[0])
        for shape in shapes[1:]:
            out = _INFER_SIZE(out, shape if type(shape) is torch.Size else torch.Size(shape))
        return out
    return _broadcast_in_python(shapes)


#: ATen's broadcasting of two sizes (``None`` if a torch build lacks it).
_INFER_SIZE = getattr(torch._C, "_infer_size", None)


def _broadcast_in_python(shapes: Tuple) -> torch.Size:
    """:func:`broadcast_shapes` in pure Python."""
    first = shapes[0] if shapes else ()
    for shape in shapes:  # the common case: all equal (no list is built)
        if shape != first:
            break
    else:
        return torch.Size(first)
    out: list = []
    for shape in shapes:
        shape = tuple(shape)
        if len(shape) > len(out):
            out = [1] * (len(shape) - len(out)) + out
        for i, n in enumerate(shape, start=len(out) - len(shape)):
            if n == 1 or n == out[i]:
                continue
            if out[i] != 1:
                raise RuntimeError(f"shapes {[tuple(s) for s in shapes]} do not broadcast")
            out[i] = n
    return torch.Size(out)
