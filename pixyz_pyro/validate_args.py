"""Small validators for constructor and call arguments, shared by every layer.

Each validator takes the parameter's ``name``, its ``value`` and ``who`` (the caller, as
the user wrote it: ``"Expectation(q, f)"``, ``"Model"``), returns the value in its
canonical form, and raises :class:`~pixyz_pyro.errors.ArgumentError` naming all three
otherwise.  They look at host metadata only (types and Python numbers), never at tensor
values, so they cost nothing on the device and may run on every call.

Examples
--------
>>> check_positive_int("max_iter", 3, "IterativeLoss")
3
>>> check_sample_shape("sample_shape", [4, 2], "Expectation(q, f)")
torch.Size([4, 2])
>>> check_positive_int("batch_n", 0, "q.sample")
Traceback (most recent call last):
...
pixyz_pyro.errors.ArgumentError: q.sample: batch_n must be a positive int, got 0
"""
import math
import numbers
from typing import Optional, Sequence

import torch

from .errors import ArgumentError

__all__ = ["check_positive_int", "check_optional_positive_int", "check_positive_number",
           "check_optional_positive_number", "check_sample_shape", "check_one_of"]


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _show(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    text = repr(value)
    return text if len(text) <= 40 else type(value).__name__


def check_positive_int(name: str, value, who: str) -> int:
    """``value`` as an ``int`` if it is an integer >= 1 (not a bool, not a float)."""
    if not _is_int(value) or value < 1:
        raise ArgumentError(f"{who}: {name} must be a positive int, got {_show(value)}")
    return int(value)


def check_optional_positive_int(name: str, value, who: str) -> Optional[int]:
    """``None``, or :func:`check_positive_int`."""
    return None if value is None else check_positive_int(name, value, who)


def check_positive_number(name: str, value, who: str, hint: str = "") -> float:
    """``value`` as a ``float`` if it is a finite real number > 0 (not a bool); ``hint``
    is appended to the error."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and math.isfinite(value) and float(value) > 0
    if not ok:
        raise ArgumentError(f"{who}: {name} must be a positive number, got "
                            f"{_show(value)}{hint}")
    return float(value)


def check_optional_positive_number(name: str, value, who: str, hint: str = "") \
        -> Optional[float]:
    """``None``, or :func:`check_positive_number`."""
    return None if value is None else check_positive_number(name, value, who, hint)


def check_sample_shape(name: str, value, who: str) -> torch.Size:
    """``value`` as a ``torch.Size``: an int, or a list, tuple or ``torch.Size`` of
    ints, each >= 1 (``()`` is one draw without a sample dimension)."""
    dims = [value] if _is_int(value) else value
    if not isinstance(dims, (list, tuple, torch.Size)) or not all(_is_int(d) for d in dims):
        raise ArgumentError(f"{who}: {name} must be an int or a tuple of ints (a "
                            f"torch.Size), got {_show(value)}")
    bad = [int(d) for d in dims if d < 1]
    if bad:
        raise ArgumentError(f"{who}: {name} must have positive sizes, got {_show(value)} "
                            f"(a size of {bad[0]} draws no samples)")
    return torch.Size(int(d) for d in dims)


def check_one_of(name: str, value, choices: Sequence, who: str):
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ArgumentError(f"{who}: {name} must be one of {list(choices)}, got "
                            f"{_show(value)}")
    return value
