"""First-call checks and error messages for a factor's ``forward``.

A network's ``forward`` is the user's code: when it raises (a wrong dtype, device or
feature size reaching ``nn.Linear``), the error is re-raised as an
:class:`~pixyz_pyro.errors.InputError` that names the distribution and the inputs it
was given, and what it got on its first successful call.  The ``try`` costs nothing on
the normal path; the batch check runs on the first call only.
"""
from typing import Dict, Sequence

import torch

from ..errors import InputError, ShapeError, describe, describe_values
from .shapes import SHAPES, shape_str


def forward_error(dist, values: Dict, names: Sequence[str], error: Exception) -> InputError:
    """The error of ``dist.forward`` raising ``error`` on ``values[names]``."""
    seen = getattr(dist, "_seen_inputs", None)
    if seen:
        before = "; on its first call it got {" + ", ".join(
            f"{k}: {v}" for k, v in seen.items()) + "}"
    else:
        p = next(dist.parameters(), None)
        before = f"; its parameters are {describe(p)}" if p is not None else ""
    return InputError(f"{dist.prob_text}.forward failed on "
                      f"{{{describe_values(values, names)}}}{before}. "
                      f"{type(error).__name__}: {error}")


def check_forward_batch(dist, out: Dict, values: Dict, names: Sequence[str]) -> None:
    """Raise :class:`ShapeError` if a returned parameter's first dimension is neither 1
    nor the batch of an input; remember the inputs for later error messages."""
    inputs = {v: values[v] for v in names
              if isinstance(values[v], torch.Tensor) and values[v].dim() > 0}
    # Some input's batch, not every input's: Pyro may put extra dims to the left of the
    # batch (an enumerated y of shape (K, 1, K) beside x of shape (B, X) gives (K, B, .)),
    # and an input of batch 1 broadcasts.
    batches = {x.shape[0] for x in inputs.values()}
    for k, t in out.items():
        if not isinstance(t, torch.Tensor) or t.dim() == 0 or t.shape[0] in batches:
            continue
        for v, x in inputs.items():
            if t.shape[0] not in (1, x.shape[0]):
                raise ShapeError(
                    f"{dist.prob_text}.forward returned {k} with batch {t.shape[0]} (shape "
                    f"{shape_str(t.shape)}) for {v} with batch {x.shape[0]} (shape "
                    f"{shape_str(x.shape)}); parameters need the input's batch as their "
                    f"first dimension ({SHAPES})")
    dist._seen_inputs = {v: describe(x) for v, x in inputs.items()}
