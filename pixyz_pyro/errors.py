"""Error types raised by pixyz_pyro.

Every error names the distribution, the variable and the shapes or keys expected and
given, in the user's terms.  They subclass the builtin exception a user would catch for
the same mistake (``KeyError``-like mistakes are ``ValueError`` here, so that the message
prints unquoted).
"""
import difflib
from typing import Callable, Iterable, Mapping, Union


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


class InputError(PixyzError, TypeError, ValueError):
    """A value given for a variable is not usable: not a tensor, an empty batch, or of a
    dtype, device or shape that the network reading it rejects."""


class KeywordError(PixyzError, TypeError):
    """A call got a keyword argument that neither the API nor a node of the loss takes."""


class ModelError(PixyzError, ValueError):
    """A ``Model`` cannot be built or stepped as asked (e.g. nothing to optimize)."""


class DistributedError(PixyzError, RuntimeError):
    """Distributed training was asked for but cannot start (no process group, no launcher)."""


class ArgumentError(PixyzError, TypeError, ValueError):
    """An argument of a constructor or a call has the wrong type or lies out of range; the
    message names the parameter (see :mod:`pixyz_pyro.validate_args`)."""


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


#: Values that are never a variable's value (a tensor or a number is).
_NOT_VALUES = (type(None), str, bytes, list, tuple, dict, set)


def describe(value: object) -> str:
    """``float32 (8, 4) on cpu`` for a tensor; the type (and value if short) otherwise."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        dt = str(dtype).replace("torch.", "")
        device = getattr(value, "device", None)
        where = f" on {device}" if device is not None else ""
        return f"{dt} {tuple(shape)}{where}"
    if value is None:
        return "None"
    text = repr(value)
    return f"{type(value).__name__} {text}" if len(text) <= 40 else type(value).__name__


def describe_values(values: Mapping[str, object], names: Iterable[str]) -> str:
    """``x: float32 (8, 4) on cpu, y: None`` for the named entries of ``values``."""
    return ", ".join(f"{n}: {describe(values[n])}" if n in values else f"{n}: (missing)"
                     for n in names)


def _text(who: Union[str, Callable[[], str]]) -> str:
    return who() if callable(who) else who


def check_values(who: Union[str, Callable[[], str]], values, names: Iterable[str]) -> None:
    """Raise :class:`InputError` unless each named value is usable: not ``None``, a string,
    a container or a NumPy array, and not an empty batch.  A list or tuple of tensors
    passes as it is (a network's carried state).

    Cheap enough for every call (type and shape checks, no host sync).  ``who`` may be a
    callable, so that the caller's name is formatted only for the error.
    """
    for n in names:
        v = values[n]
        if isinstance(v, (list, tuple)) and _tensors_only(v):
            continue  # state carried as a list of tensors, passed as given (as in Pixyz)
        if isinstance(v, _NOT_VALUES) or type(v).__name__ == "ndarray":
            hint = " (use torch.as_tensor)" if not isinstance(v, (type(None), str)) else ""
            raise InputError(f'{_text(who)} takes a tensor for "{n}", got '
                             f"{describe(v)}{hint}.")
        shape = getattr(v, "shape", None)
        if shape is not None and len(shape) > 0 and shape[0] == 0:
            raise InputError(f'{_text(who)} got an empty batch for "{n}" (shape '
                             f"{tuple(shape)}); every input needs at least one row.")


def _tensors_only(v) -> bool:
    """A non-empty list or tuple whose leaves are all tensors (an LSTM's ``(h, c)``)."""
    return len(v) > 0 and all(_tensors_only(e) if isinstance(e, (list, tuple))
                              else hasattr(e, "shape") and hasattr(e, "dtype")
                              and type(e).__name__ != "ndarray" for e in v)


def check_mapping(who: Union[str, Callable[[], str]], x_dict) -> None:
    """Raise :class:`InputError` unless ``x_dict`` is a dict ``{name: tensor}`` (or None)."""
    if x_dict is not None and not hasattr(x_dict, "keys"):
        raise InputError(f"{_text(who)} takes a dict {{name: tensor}}, got "
                         f"{describe(x_dict)}.")


def passes_through(error: BaseException) -> bool:
    """Whether a boundary re-raises ``error`` unchanged: our own errors, "not
    implemented" and non-``Exception`` s (KeyboardInterrupt)."""
    return isinstance(error, (PixyzError, NotImplementedError)) or \
        not isinstance(error, Exception)


def wrap_error(who: str, error: BaseException, values: Mapping[str, object],
               names: Iterable[str]) -> PixyzError:
    """Turn an exception raised deep inside torch while evaluating ``who`` into an
    :class:`InputError` that names the inputs it was given (chain it with ``from``)."""
    return InputError(f"{who} failed on the inputs {{{describe_values(values, names)}}}: "
                      f"{type(error).__name__}: {error}")
