"""Deferred step checks: ``Model(check_every=N)`` reads its step guard once in N steps.

With ``check_every=1`` (the default) a step reads one number before the optimizer steps
(see :mod:`pixyz_pyro.model.model`) and refuses a bad step then and there.  On a GPU that
read is a host sync in the middle of the step: the host waits for the backward pass to
finish before it may launch the optimizer's kernels.  With ``check_every=N`` the verdict
stays on the device,

.. math::

    \\mathrm{bad} = \\neg\\,\\mathrm{isfinite}\\Big(\\ell + \\sum_i \\textstyle\\sum g_i
    + \\sum_{j\\ \\mathrm{strict}} w_j\\Big),

and the step is skipped there when it is true:

* the optimizer takes ``bad`` as its ``found_inf``, as ``torch.amp.GradScaler`` hands it
  to the fused optimizers (``torch.optim.Adam(fused=True)``, ``AdamW``, ``SGD``,
  ``Adagrad``), which then leave parameters and state alone, step counts included;
* running statistics changed by the forward pass are put back,
  :math:`b \\leftarrow \\mathrm{where}(\\mathrm{bad}, b_{before}, b)`.

The verdicts of the pending steps are read in one host read at the start of every
N-th call (before it changes anything), by :meth:`~pixyz_pyro.model.Model.sync`, and
before ``save``, ``load`` and ``state_dict``.  A refused step is then reported as
``check_every=1`` reports it: a :class:`~pixyz_pyro.errors.SupportError` for a value
outside its support, a :class:`~pixyz_pyro.errors.NonFiniteError` that names the
non-finite terms, gradients and inputs, or a count in ``skipped_steps`` with
``skip_nonfinite``; lenient support checks warn then.  (``load`` reports a refused step
as a ``RuntimeWarning``: the checkpoint replaces the state it refers to.)

Until the read, a pending step keeps its flagged tensors, term values and inputs:
references, or, under CUDA graphs (``compile="reduce-overhead"``), whose next replay
overwrites the graph's outputs, copies made on the device (:func:`copied`).
``compile=True`` steps this way too: the compiled loss computes the strict and lenient
witnesses apart.  A ``GAN`` (with a fused ``d_optimizer`` too) keeps its discriminator's
verdict on the device as well: the generator's step is refused with it (``linked``), and a
refused generator step puts the discriminator and its optimizer state back with
``where``, both steps or neither, as with ``check_every=1``.

What it costs: the steps after a refused one, up to the read, are applied; a refused
step is reported up to N calls late.  The first step reads at once: it snapshots every
parameter, for data-dependent initialisations.

Examples
--------
>>> import torch
>>> from pixyz_pyro.dist import Normal
>>> from pixyz_pyro.loss import LogProb
>>> from pixyz_pyro.model import Model
>>> p = Normal(loc=torch.nn.Parameter(torch.zeros(1)), scale=1., var=["x"])
>>> model = Model(-LogProb(p).mean(), distributions=[p], check_every=4,
...               skip_nonfinite=True, optimizer_params={"lr": 0.1, "fused": True})
>>> for x in [0.0, 1.0, float("nan"), 2.0, 3.0]:  # the first step reads, 4 wait
...     _ = model.train({"x": torch.full((8, 1), x)})
>>> model.skipped_steps  # not read yet
0
>>> model.sync()
>>> model.step_count, model.skipped_steps
(4, 1)
"""
import contextlib
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

import torch

from ..dist.checks import Flags
from ..errors import ModelError


class PendingStep(NamedTuple):
    """One step whose verdict is still on the device."""

    #: ``step_count`` before the step, counting the pending steps as accepted.
    step: int
    #: 0-dim bool: the step was skipped on the device.
    bad: torch.Tensor
    #: 0-dim: finite unless a lenient support check fired (``None``: none was made).
    lenient: Optional[torch.Tensor]
    #: :func:`~pixyz_pyro.model.compile.finite_parts` of the step.
    parts: torch.Tensor
    #: The parameters that had a gradient, in the order of ``parts``, and the number of
    #: the distribution each belongs to (``parts`` sums small gradients by distribution).
    params: Tuple[torch.Tensor, ...]
    groups: List[int]
    strict_flags: Flags
    lenient_flags: Flags
    #: The evaluation's term values, by node id (``Context.terms``).
    terms: Dict[int, Any]
    values: Dict[str, Any]
    value: torch.Tensor
    #: A step taken with this one and refused with it (a GAN's discriminator step): its
    #: own verdict (0-dim bool) and loss, for the report; ``None``: none.
    linked: Optional[Tuple[torch.Tensor, torch.Tensor]] = None


def check_check_every(check_every: object, optimizer: torch.optim.Optimizer,
                      who: str = "Model") -> int:
    """``check_every`` as an int, or a ModelError naming what does not go with it."""
    if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
        raise ModelError(f"{who}: check_every must be a positive int (1 reads the step guard "
                         f"at every step), got {check_every!r}")
    if check_every == 1:
        return 1
    if not getattr(optimizer, "_step_supports_amp_scaling", False):
        raise ModelError(
            f"{who}(check_every={check_every}) skips a refused step on the device, which "
            f"needs an optimizer that takes torch.amp's found_inf: a fused one, e.g. "
            f"optimizer_params={{'fused': True, ...}} with torch.optim.Adam, AdamW, SGD or "
            f"Adagrad; got {type(optimizer).__name__} without fused=True")
    return check_every


def copied(flags: Flags, terms: Dict[int, Any]) -> Tuple[Flags, Dict[int, Any]]:
    """The flags with copies of their tensors, and copies of the term values: what a
    pending step keeps under CUDA graphs, whose next replay overwrites the graph's own
    outputs (copies on the device, nothing read)."""
    def copy(t: Any) -> Any:
        return t.detach().clone() if isinstance(t, torch.Tensor) else t
    out = Flags()
    for site, t in flags.pairs():
        out.add(site, copy(t))
    return out, {k: copy(v) for k, v in terms.items()}


@contextlib.contextmanager
def skipped_where(optimizer: torch.optim.Optimizer, bad: torch.Tensor) -> Iterator[None]:
    """Run the optimizer's ``step`` with ``found_inf = bad``: a fused optimizer then
    leaves everything as it was where ``bad`` is true, without a host read."""
    optimizer.grad_scale = None  # type: ignore[attr-defined]
    optimizer.found_inf = bad.to(torch.float32)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        del optimizer.grad_scale, optimizer.found_inf  # type: ignore[attr-defined]


class DeferredChecks:
    """The steps whose verdicts are pending, read together once ``every`` are."""

    def __init__(self, every: int):
        self.every = every
        self.pending: List[PendingStep] = []

    def due(self) -> bool:
        return len(self.pending) >= self.every

    def add(self, step: PendingStep) -> None:
        self.pending.append(step)

    def take(self) -> List[Tuple[PendingStep, bool, bool, bool]]:
        """The pending steps with their verdicts ``(step, refused, lenient fired, linked
        step refused)``, in one host read; none are pending afterwards."""
        pending, self.pending = self.pending, []
        if not pending:
            return []
        none = torch.zeros((), dtype=torch.bool, device=pending[0].bad.device)
        rows = [torch.stack([p.bad, none if p.lenient is None else
                             p.lenient.isfinite().logical_not(),
                             none if p.linked is None else p.linked[0]])
                for p in pending]
        read = torch.stack(rows).tolist()
        return [(p, bool(bad), bool(mild), bool(linked))
                for p, (bad, mild, linked) in zip(pending, read)]
