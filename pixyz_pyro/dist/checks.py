"""Checks of a factor's inputs, parameters and values, and how their results are read.

Host metadata (names, dtypes, devices, shapes) is checked where it is met, on every
call.  Supports are checked on the device: each check leaves a :class:`Violation`, a
0-dim bool tensor with what it is about, in the evaluation's
:class:`~pixyz_pyro.dist.context.Context`.  :func:`settle` reads them all at once at
the end of the evaluation (one host read), or, on the training path, the step folds
:func:`any_violation` into its single finiteness read and calls :func:`settle` only when
that read says something is wrong.

A network's ``forward`` is the user's code: when it raises (a wrong dtype, device or
feature size reaching ``nn.Linear``), the error is re-raised as an
:class:`~pixyz_pyro.errors.InputError` that names the distribution and its inputs.
"""
import warnings
from typing import TYPE_CHECKING, Dict, List, NamedTuple, Optional, Sequence

import torch

from ..errors import InputError, ShapeError, SupportError, describe, describe_values
from .shapes import SHAPES, shape_str
from .validation import SupportWarning

if TYPE_CHECKING:
    from .distribution import Distribution


class Violation(NamedTuple):
    """A support check left on the device.

    ``bad`` is true if ``tensor`` (``what`` of ``dist``) is anywhere outside its support,
    which ``problem`` says; a ``lenient`` one warns instead of raising.
    """

    bad: torch.Tensor
    dist: "Distribution"
    what: str
    tensor: torch.Tensor
    #: ``(family, parameter name or None)``: the words are made only for a message.
    problem: tuple
    lenient: bool


def flag(ctx, violation: Violation) -> None:
    """Leave ``violation`` in ``ctx`` to be read with the others (read at once when there is
    no evaluation context)."""
    if ctx is None:
        settle([violation])
    else:
        ctx.flags.append(violation)


def any_violation(flags: Sequence[Violation]) -> Optional[torch.Tensor]:
    """One 0-dim bool tensor: whether any flag is set (not read), ``None`` if none."""
    if not flags:
        return None
    if len(flags) == 1:
        return flags[0].bad
    return torch.stack([f.bad for f in flags]).any()


def settle(flags: Sequence[Violation], read: bool = True) -> None:
    """Read the flags (one host read, skipped with ``read=False`` when the caller has read
    :func:`any_violation` already) and raise a :class:`SupportError` for the first
    violation, or warn for lenient ones.  A tensor whose only problem is NaN is left to
    the NaN guard."""
    if not flags:
        return
    if read and not bool(any_violation(flags)):
        return
    for f in flags:
        if not bool(f.bad):
            continue
        t = f.tensor.detach()
        if t.is_floating_point() and torch.isnan(t).any():
            finite = t[~torch.isnan(t)]
            if finite.numel() == 0:
                continue
            t = finite
        fam, name = f.problem
        problem = fam.value_support() if name is None else fam.param_support(name)
        text = (f"{f.dist.prob_text}: {f.what} {problem}; got values in "
                f"[{float(t.min()):.4g}, {float(t.max()):.4g}]")
        if f.lenient:
            warnings.warn(f"{text}. It is scored with the same formula, as Pixyz does; "
                          f"set pixyz_pyro.set_validation('strict') to make this an error",
                          SupportWarning, stacklevel=4)
            continue
        raise SupportError(text)


def forward_error(dist, values: Dict, names: Sequence[str], error: Exception) -> InputError:
    """The error of ``dist.forward`` raising ``error`` on ``values[names]``."""
    p = next(dist.parameters(), None)
    params = f"; its parameters are {describe(p)}" if p is not None else ""
    return InputError(f"{dist.prob_text}.forward failed on "
                      f"{{{describe_values(values, names)}}}{params}. "
                      f"{type(error).__name__}: {error}")


def check_forward_batch(dist, out: Dict, values: Dict, names: Sequence[str]) -> None:
    """Raise :class:`ShapeError` if a returned parameter's first dimension is neither 1
    nor the batch of an input."""
    inputs: List = [(v, values[v]) for v in names
                    if isinstance(values[v], torch.Tensor) and values[v].dim() > 0]
    if not inputs:
        return
    # Some input's batch, not every input's: Pyro may put extra dims to the left of the
    # batch (an enumerated y of shape (K, 1, K) beside x of shape (B, X) gives (K, B, .)),
    # and an input of batch 1 broadcasts.
    batches = {x.shape[0] for _, x in inputs}
    for k, t in out.items():
        if not isinstance(t, torch.Tensor) or t.dim() == 0 or t.shape[0] in batches \
                or t.shape[0] == 1:
            continue
        v, x = inputs[0]
        raise ShapeError(
            f"{dist.prob_text}.forward returned {k} with batch {t.shape[0]} (shape "
            f"{shape_str(t.shape)}) for {v} with batch {x.shape[0]} (shape "
            f"{shape_str(x.shape)}); parameters need the input's batch as their "
            f"first dimension ({SHAPES})")
