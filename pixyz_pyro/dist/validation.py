"""The validation policy: one process-wide switch, applied the same way on every call.

Like :func:`pyro.enable_validation`, the level is set once for the process and can be
changed for a block with a context manager.  No check depends on what was called before.

``"default"``
    Names, dtypes and shapes of every value and parameter are checked on every call (host
    metadata: no device sync).  Value and parameter supports are checked on the device on
    every call and read once per evaluation; on the training path that read is folded into
    the step's single finiteness read.  A Bernoulli-type likelihood scores grey levels in
    :math:`[0, 1]` silently and any other real value with the same formula and a
    :class:`SupportWarning`, as Pixyz does.
``"strict"``
    As ``"default"``, but a Bernoulli-type value outside :math:`[0, 1]` raises.
``"off"``
    No checks at all, for benchmarks (a wrong input then gives whatever torch gives).

>>> import pixyz_pyro
>>> pixyz_pyro.get_validation()
'default'
>>> with pixyz_pyro.validation("strict"):
...     pixyz_pyro.get_validation()
'strict'
"""
import contextlib
import functools
import sys
from types import FrameType
from typing import Iterator, Optional

LEVELS = ("off", "default", "strict")


class _Policy:
    """The process-wide level (one instance; see :func:`set_validation`)."""

    __slots__ = ("level",)

    def __init__(self) -> None:
        self.level = "default"


_POLICY = _Policy()


class SupportWarning(UserWarning):
    """A value was scored outside its family's support with the family's formula (for
    example a Bernoulli likelihood of a real value outside [0, 1]).

    Examples
    --------
    >>> import warnings, torch
    >>> from pixyz_pyro.dist import Bernoulli
    >>> p = Bernoulli(probs=torch.full((1,), 0.5), var=["x"])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = p.get_log_prob({"x": torch.tensor([[2.0]])})
    >>> [w.category.__name__ for w in caught]
    ['SupportWarning']
    """


class UnbatchedValueWarning(UserWarning):
    """A value was given without its batch dimension, and its shape is exactly the
    distribution's features (``(2,)`` for features ``(2,)``): it is scored as a batch of
    1, as Pixyz does.  Write ``x[None]`` to say so; ``"strict"`` validation makes this a
    :class:`~pixyz_pyro.errors.ShapeError`.

    Examples
    --------
    >>> import warnings, torch
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc=torch.zeros(2), scale=1., var=["x"])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     lp = p.get_log_prob({"x": torch.zeros(2)})
    >>> [w.category.__name__ for w in caught], lp.shape
    (['UnbatchedValueWarning'], torch.Size([1]))
    """


def _checked_level(level: str) -> str:
    if level not in LEVELS:
        raise ValueError(f"validation level must be one of {list(LEVELS)}, got {level!r}")
    return level


def set_validation(level: str) -> None:
    """Set the validation level for the process (``"off"``, ``"default"``, ``"strict"``).

    Parameters
    ----------
    level : {"off", "default", "strict"}
        ``"off"`` skips the checks of names, shapes and supports; ``"strict"`` also
        raises where the default warns (a value outside a lenient support).

    Raises
    ------
    ValueError
        For another level.

    Examples
    --------
    >>> before = get_validation()
    >>> set_validation("strict"); get_validation()
    'strict'
    >>> set_validation(before)
    """
    _POLICY.level = _checked_level(level)


def get_validation() -> str:
    """The current validation level.

    Examples
    --------
    >>> get_validation()
    'default'
    """
    return _POLICY.level


@contextlib.contextmanager
def validation(level: str) -> Iterator[None]:
    """Run a block at another validation level, then restore the previous one.

    Parameters
    ----------
    level : {"off", "default", "strict"}
        The level inside the block (see :func:`set_validation`).

    Examples
    --------
    >>> with validation("off"):
    ...     print(get_validation())
    off
    >>> get_validation()
    'default'
    """
    before = _POLICY.level
    _POLICY.level = _checked_level(level)
    try:
        yield
    finally:
        _POLICY.level = before


def user_stacklevel() -> int:
    """The ``stacklevel`` of :func:`warnings.warn`, called by its caller, that names the
    first frame outside pixyz_pyro (and ``functools``' dispatch): the user's line."""
    frame: Optional[FrameType] = sys._getframe(2)
    level = 2
    while frame is not None and (
            frame.f_globals.get("__name__", "").startswith("pixyz_pyro.")
            or frame.f_code.co_filename == functools.__file__):
        frame, level = frame.f_back, level + 1
    return level


def checking() -> bool:
    """Whether checks run at all (the level is not ``"off"``)."""
    return _POLICY.level != "off"


def strict() -> bool:
    return _POLICY.level == "strict"
