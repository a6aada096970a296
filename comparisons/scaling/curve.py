"""What a scaling curve is: a family of sizes, and at each size a set of
implementations of one training step on the same objective.

A curve module (:mod:`.factors`, :mod:`.sequence`, :mod:`.batch`, :mod:`.particles`)
exposes one :class:`Curve`.  Its ``setup(size, device, quick)`` returns a :class:`Setup`:
factories that build each implementation from the same initial weights (so that building
can be timed on its own: the plan-building cost), the batches the steps take, and the
reference loss each implementation's first step must reproduce.

An implementation is any object with ``step(batch) -> float``: zero the gradients,
forward, backward, optimizer step, and return the loss as a Python float (the
``.item()``, which also waits for a GPU).
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

#: ``torch.manual_seed`` before each implementation's first step (the same-objective
#: check): a curve's ``references`` may redraw the same noise from it.
FIRST_SEED = 1


@dataclass(frozen=True)
class Setup:
    """One size of a curve, ready to build.

    ``references(first_losses, impls)`` gives, per implementation, the loss its first
    step must equal (same weights, batch and seed); by default the first step of the
    curve's reference implementation.
    """

    factories: Dict[str, Callable[[], Any]]
    data: List[Any]
    references: Optional[Callable[[Dict[str, float], Dict[str, Any]], Dict[str, float]]] = None
    #: What the size means, for the report (e.g. ``{"batch": 128, "h": 400}``).
    details: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Curve:
    """A scaling curve: ``name`` (files are ``scaling_<name>.md/png``), a title, the
    label of the x axis, the full and ``--quick`` sizes, the name of the hand-written
    PyTorch implementation (the reference of ratios and of the memory comparison), and
    ``setup(size, device, quick) -> Setup``."""

    name: str
    title: str
    axis: str
    sizes: Tuple[int, ...]
    quick_sizes: Tuple[int, ...]
    reference: str
    setup: Callable[[int, str, bool], Setup]
    #: A sentence on what is measured, printed above the table.
    description: str = ""
