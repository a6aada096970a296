"""Error types raised by pixyz_pyro.

Every error names the distribution, the variable and the shapes or keys expected and
given, in the user's terms.  They subclass the builtin exception a user would catch for
the same mistake (``KeyError``-like mistakes are ``ValueError`` here, so that the message
prints unquoted).
"""
import difflib
from typing import Iterable


class PixyzError(Exception):
    """Base class of every error raised by pixyz_pyro."""


class VariableError(PixyzError, ValueError):
    """A required variable is missing, unknown or duplicated."""


class GraphError(PixyzError, ValueError):
    """A product of distributions does not form a valid DAG."""


class ParameterError(PixyzError, ValueError):
    """A distribution's ``forward`` returned the wrong parameter names or shapes."""


class ShapeError(PixyzError, ValueError):
    """Tensor shapes disagree with ``sample_shape + batch_shape + features_shape``."""


class SupportError(PixyzError, ValueError):
    """A value or parameter lies outside the support of a distribution."""


class LossError(PixyzError, ValueError):
    """A loss cannot be built or evaluated as asked."""


class NonFiniteError(PixyzError, FloatingPointError):
    """A loss or gradient became NaN or infinite during training."""


class CheckpointError(PixyzError, ValueError):
    """A checkpoint does not fit the model, is corrupt, or is from a newer format."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ``' (did you mean "X"?)'`` for the closest candidate, or ``''``."""
    cands = [str(c) for c in candidates]
    lowered = {c.lower(): c for c in cands}
    if name.lower() in lowered and lowered[name.lower()] != name:
        return f' (did you mean "{lowered[name.lower()]}"?)'
    close = difflib.get_close_matches(name, cands, n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def missing_vars_message(who: str, missing: Iterable[str], given: Iterable[str],
                         purpose: str) -> str:
    """Message for variables missing from an input dict, with a "did you mean" hint."""
    given = sorted(str(g) for g in given)
    parts = []
    for m in missing:
        parts.append(f'"{m}"{did_you_mean(m, given)}')
    return (f"{who} needs {', '.join(parts)} for {purpose}, but the input has keys "
            f"{given}.")
