"""Checks of a factor's inputs, parameters and values, and how their results are read.

Host metadata (names, dtypes, devices, shapes) is checked where it is met, on every
call.  Supports are checked on the device: each check leaves a :class:`Violation` in the
evaluation's :class:`~pixyz_pyro.dist.context.Context`, whose witnesses (see
:class:`~pixyz_pyro.dist.family.SupportCheck`) are finite exactly when the tensor is in
its support.  :func:`settle` reads them all at once at the end of the evaluation (one
host read), or, on the training path, the step sums :func:`witnesses` into its single
finiteness read and calls :func:`settle` only when that read says something is wrong.

A network's ``forward`` is the user's code: when it raises (a wrong dtype, device or
feature size reaching ``nn.Linear``), the error is re-raised as an
:class:`~pixyz_pyro.errors.InputError` that names the distribution and its inputs.
"""
import warnings
from typing import (
    TYPE_CHECKING,
    Dict,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import torch

from ..errors import InputError, ShapeError, SupportError, describe, describe_values
from .shapes import SHAPES, shape_str
from .validation import SupportWarning

if TYPE_CHECKING:
    from .distribution import Distribution
    from .family import SupportCheck


class Violation(NamedTuple):
    """A support check of ``tensor`` (``what`` of ``dist``) by ``check``, a
    :class:`~pixyz_pyro.dist.family.SupportCheck`, left to be computed when the
    evaluation's flags are read: the checks of many tensors then cost one reduction per
    kind (:func:`witnesses`), not one per tensor (an ``IterativeLoss`` makes a few per
    step).  ``problem`` says what is wrong; a ``lenient`` one warns instead of raising.
    """

    check: "SupportCheck"
    dist: "Distribution"
    what: str
    tensor: torch.Tensor
    #: ``(family, parameter name or None)``: the words are made only for a message.
    problem: tuple
    lenient: bool
    #: The :func:`group_of` ``tensor``, when the flag's maker knows it already (a check
    #: whose metadata passed before in this evaluation); ``None``: computed when read.
    group: Optional[tuple] = None


class Site(NamedTuple):
    """Where a support check is made: a :class:`Violation` without its tensor.  A factor
    makes one per checked parameter or value the first time its metadata passes in an
    evaluation, and every later flag of that site reuses it."""

    check: "SupportCheck"
    dist: "Distribution"
    what: str
    problem: tuple
    lenient: bool
    group: Optional[tuple] = None


class Flags:
    """The support checks an evaluation left on the device, as two parallel lists: the
    :class:`Site` of each and the tensor it checks.  A flag costs two appends and makes
    no object (a 500-step series leaves 2000 flags alive until its step's read, and
    objects that live that long bring Python's full garbage collections sooner).
    Iterating gives :class:`Violation` objects, made then.

    >>> from pixyz_pyro.dist.family import interval_check
    >>> flags = Flags()
    >>> flags.add(Site(interval_check(0.0, 1.0), None, "x", (None, None), False),
    ...           torch.tensor([0.5]))
    >>> len(flags), next(iter(flags)).what
    (1, 'x')
    """

    __slots__ = ("sites", "tensors")

    def __init__(self) -> None:
        self.sites: List[Site] = []
        self.tensors: List[torch.Tensor] = []

    def add(self, site: Site, tensor: torch.Tensor) -> None:
        self.sites.append(site)
        self.tensors.append(tensor)

    def append(self, violation: Violation) -> None:
        v = violation
        self.add(Site(v.check, v.dist, v.what, v.problem, v.lenient, v.group), v.tensor)

    def extend(self, other: Iterable[Violation]) -> None:
        if isinstance(other, Flags):
            self.sites.extend(other.sites)
            self.tensors.extend(other.tensors)
        else:
            for v in other:
                self.append(v)

    def __len__(self) -> int:
        return len(self.sites)

    def __bool__(self) -> bool:
        return bool(self.sites)

    def __iter__(self) -> Iterator[Violation]:
        for s, t in zip(self.sites, self.tensors):
            yield Violation(s.check, s.dist, s.what, t, s.problem, s.lenient, s.group)

    def pairs(self) -> Iterator[Tuple[Site, torch.Tensor]]:
        """``(site, tensor)`` of each flag, without making a :class:`Violation`."""
        return zip(self.sites, self.tensors)


def flag(ctx, site: Site, tensor: torch.Tensor) -> None:
    """Leave the check of ``tensor`` at ``site`` in ``ctx`` to be read with the others
    (read at once when there is no evaluation context)."""
    if ctx is None:
        settle([Violation(site.check, site.dist, site.what, tensor, site.problem,
                          site.lenient, site.group)])
    else:
        ctx.flags.add(site, tensor)


#: Tensors of at most this many elements are concatenated with the others of their check.
GROUPED = 16384
#: The :func:`group_of` a tensor reduced alone (compared with ``is``).
ALONE: tuple = ("alone",)


def group_of(check: "SupportCheck", t: torch.Tensor) -> tuple:
    """The key under which :func:`witnesses` concatenates ``t`` with the other tensors of
    ``check``: the check, the dimensions after the batch and the device; :data:`ALONE`
    for a tensor of more than :data:`GROUPED` elements.  A function of the check and of
    the tensor's metadata only, so a flag whose metadata passed before in the evaluation
    carries the key made the first time (reading a tensor's shape and device costs more
    than the rest of the grouping)."""
    if t.numel() > GROUPED:
        return ALONE
    return (id(check), t.shape[1:] if t.dim() else None, t.device)


def witnesses(flags: Union[Flags, Sequence[Violation]]) -> List[torch.Tensor]:
    """The flags' witnesses, to be summed into one read: the sum is finite exactly when
    every checked tensor is in its support and free of NaN.

    The small tensors of one check are checked together, concatenated along their batch
    dimension where their other dimensions agree, so that ``T`` steps of a series cost
    one reduction, not ``T``; a large one (a batch of images) is reduced alone, since
    concatenating it would copy it first.  Computed outside autograd; nothing is read.
    """
    if not flags:
        return []
    groups: Dict[tuple, Tuple["SupportCheck", List[torch.Tensor]]] = {}
    alone: List[Tuple["SupportCheck", torch.Tensor]] = []
    pairs = flags.pairs() if isinstance(flags, Flags) else ((f, f.tensor) for f in flags)
    for f, t in pairs:
        key = f.group
        if key is None:
            key = group_of(f.check, t)
        if key is ALONE:  # once even if flagged twice; compared with `is`, not by id():
            # under torch.compile an id() of the batch is a guard on that very tensor,
            # and every new batch would compile the loss again
            if not any(c is f.check and u is t for c, u in alone):
                alone.append((f.check, t))
            continue
        group = groups.get(key)
        if group is None:
            groups[key] = (f.check, [t])
        else:
            group[1].append(t)
    out: List[torch.Tensor] = []
    with torch.no_grad():
        for key, (check, ts) in groups.items():
            if len(ts) == 1:
                t = ts[0]
            else:
                t = torch.cat(ts) if key[1] is not None else torch.stack(ts)
            out.extend(check.witness(t))
        for check, t in alone:
            out.extend(check.witness(t))
    return out


def split_flags(flags: Flags) -> Tuple[Flags, Flags]:
    """``(strict, lenient)``: a lenient flag warns and never refuses a training step."""
    if not any(s.lenient for s in flags.sites):
        return flags, Flags()
    strict, lenient = Flags(), Flags()
    for s, t in flags.pairs():
        (lenient if s.lenient else strict).add(s, t)
    return strict, lenient


def settle(flags: Union[Flags, Sequence[Violation]], read: bool = True) -> None:
    """Read the flags (one host read, skipped with ``read=False`` when the caller has
    read their :func:`witnesses` already) and raise a :class:`SupportError` for the
    first violation, or warn for lenient ones.  A tensor whose only problem is NaN is
    left to the NaN guard."""
    if not flags:
        return
    if read and bool(torch.isfinite(torch.stack(witnesses(flags)).sum())):
        return
    for f in flags:
        t = f.tensor.detach()
        if t.is_floating_point() and torch.isnan(t).any():
            t = t[~torch.isnan(t)]
            if t.numel() == 0:
                continue
        if not bool(f.check.bad(t)):
            continue
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
