"""The step guard of ``Model.train``: a refused step changes nothing.

Two things can change state *before* the optimizer steps:

* running statistics (``BatchNorm``'s ``running_*``, Pyro's ``BatchNorm`` transform's
  ``moving_*``) are updated by the forward pass itself, in every module the loss
  reaches, listed in the model or not;
* a data-dependent initialisation (``ActNorm``) writes parameters on the first call.

:class:`StepGuard` copies what a step may change and puts it back when the step raises
or is refused.  On the first step it copies every parameter and buffer (validation runs
then, and first-call initialisations write parameters); after it, only the running
statistics, which most models do not have, so the normal path copies nothing and never
syncs with the device.

The finiteness test itself reads the one value ``train`` already reads:

.. math::

    \\text{check} = \\ell + \\sum_i \\textstyle\\sum g_i

is finite exactly when the loss :math:`\\ell` and every gradient :math:`g_i` are
(:func:`~pixyz_pyro.model.compile.finite_check`).
"""
import contextlib
import copy
import importlib
import signal
import threading
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from ..dist.running import restore_running, restore_running_where, snapshot_slots
from ..errors import NonFiniteError
from ..loss.base import Loss


def all_state(modules: Sequence[nn.Module]) -> List[torch.Tensor]:
    """Every parameter and buffer, once each."""
    out, seen = [], set()
    for m in modules:
        for t in list(m.parameters()) + list(m.buffers()):
            if id(t) not in seen:
                seen.add(id(t))
                out.append(t)
    return out


class StepGuard:
    """Snapshot and restore what one training step may change before it is accepted.

    Parameters
    ----------
    modules : sequence of nn.Module
        Every module the step reaches (the listed distributions and the loss's).
    slots : sequence of (module, buffer name)
        The running statistics among their buffers (the plan's ``running``), copied
        before every step: the forward pass itself changes them.
    """

    def __init__(self, modules: Sequence[nn.Module], slots: Sequence = ()):
        self.modules = list(modules)
        self.slots = list(slots)
        self.first = True
        self.armed = False
        self._saved: List[torch.Tensor] = []
        self._copies: List[torch.Tensor] = []
        self._running: list = []
        #: The inputs of the current step, for the message of a refused one.
        self.values: Dict = {}

    def snapshot(self) -> None:
        """Copy the tensors this step may change: the running statistics, and on the
        first step every parameter and buffer (data-dependent initialisations)."""
        self.armed = True
        self._running = snapshot_slots(self.slots)
        if not self.first:
            return
        self._saved = all_state(self.modules)
        with torch.no_grad():
            self._copies = [t.detach().clone() for t in self._saved]

    def restore(self) -> None:
        """Put the snapshot back (the step raised or was refused); a no-op when nothing
        is armed."""
        if not self.armed:
            return
        restore_running(self._running)
        with torch.no_grad():
            for t, c in zip(self._saved, self._copies):
                t.copy_(c)
        for m in self.modules:
            for sub in m.modules():
                hook = getattr(sub, "_transaction_restored", None)
                if hook is not None:
                    hook()
        self._saved, self._copies, self._running, self.values = [], [], [], {}
        self.armed = False

    def restore_where(self, bad: torch.Tensor) -> None:
        """Put the running statistics back where ``bad`` (a 0-dim bool on the device) is
        true, without reading it; the step is then accepted as far as the host knows
        (``Model(check_every=N)``; never on the first step, whose snapshot is whole)."""
        assert not self.first, "the first step reads its check"
        restore_running_where(self._running, bad)

    def accept(self) -> None:
        """The step went through: drop the snapshot."""
        self.first = False
        self.armed = False
        self._saved, self._copies, self._running, self.values = [], [], [], {}


def snapshot_module_and_optimizer(module: nn.Module, optimizer: torch.optim.Optimizer
                                  ) -> tuple:
    """Copies of ``module``'s parameters and buffers and of ``optimizer``'s state, for a
    step that must be undone if a later one is refused (the GAN's discriminator)."""
    tensors = list(module.parameters()) + list(module.buffers())
    with torch.no_grad():
        copies = [t.detach().clone() for t in tensors]
    return tensors, copies, optimizer, copy.deepcopy(optimizer.state_dict())


def restore_module_and_optimizer(saved: tuple) -> None:
    """Put back what :func:`snapshot_module_and_optimizer` copied."""
    tensors, copies, optimizer, state = saved
    with torch.no_grad():
        for t, c in zip(tensors, copies):
            t.copy_(c)
    optimizer.load_state_dict(state)


def device_snapshot(module: nn.Module, optimizer: torch.optim.Optimizer
                    ) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """``(tensor, copy)`` for ``module``'s parameters and buffers and every tensor of
    ``optimizer``'s state, copied on the device without a read: what
    :func:`restore_where` puts back where a later verdict says so (a GAN's discriminator
    under ``check_every``).  The optimizer must hold state for every parameter already."""
    tensors = list(module.parameters()) + list(module.buffers()) + [
        v for state in optimizer.state.values() for v in state.values()
        if isinstance(v, torch.Tensor)]
    with torch.no_grad():
        return [(t, t.detach().clone()) for t in tensors]


def restore_where(saved: Sequence[Tuple[torch.Tensor, torch.Tensor]],
                  bad: Optional[torch.Tensor] = None) -> None:
    """Put back what :func:`device_snapshot` copied: where the 0-dim bool ``bad`` is true
    (on the device, nothing read), or everywhere when ``bad`` is ``None``."""
    with torch.no_grad():
        for t, c in saved:
            t.copy_(c if bad is None else torch.where(bad, c, t))


try:
    #: ``signal.signal`` without the ``Signals``/``Handlers`` enum conversions of its
    #: Python wrapper: the C function it calls (0.25 against 3.8 us a call; the previous
    #: handler comes back as an int where the wrapper gives ``SIG_DFL``/``SIG_IGN``, which
    #: compare equal to it).
    _set_handler: Any = importlib.import_module("_signal").signal
except ImportError:  # an interpreter without CPython's module (typeshed has no stub)
    _set_handler = signal.signal


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Run a commit with Ctrl-C (SIGINT) deferred to its end, so that an interrupt never
    leaves it half applied (main thread only; elsewhere the block runs as is).  The
    handler is swapped for one that notes the signal, then put back and given it, or, if
    it was set to ignore SIGINT, the signal is dropped.  (Blocking SIGINT in the main
    thread would be cheaper, but the OS then hands a Ctrl-C to another thread, and Python
    runs the handler in the main thread at once, inside the commit.)  The handlers are
    swapped by :data:`_set_handler`, every training step does it twice."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    try:
        previous = _set_handler(signal.SIGINT, lambda *args: caught.append(args))
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        _set_handler(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(*caught[0])
        elif caught and previous != signal.SIG_IGN:
            raise KeyboardInterrupt


def is_finite(read: float) -> bool:
    return read == read and read not in (float("inf"), float("-inf"))


def nonfinite_grads(params: Mapping[str, torch.Tensor]) -> Dict[str, List[str]]:
    """The parameters whose gradient is not finite, by distribution: ``{"p(x|z)":
    ["net.fc.weight", ...]}`` from ``{"p(x|z): net.fc.weight": parameter}`` (a read per
    gradient: the refused path only)."""
    bad: Dict[str, List[str]] = {}
    for name, p in params.items():
        if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
            dist, _, tensor = name.partition(": ")
            bad.setdefault(dist, []).append(tensor)
    return bad


#: The last sentence of a refused step's message.
REFUSED = ("The optimizer step was refused; parameters, buffers and optimizer state are "
           "unchanged (pass skip_nonfinite=True to skip such steps).")


def nonfinite_error(value: torch.Tensor, terms: Sequence[Tuple[Loss, str]],
                    term_values: Mapping[int, Any], bad_grads: Mapping[str, List[str]],
                    values: Dict, step: int, loss_text: str,
                    refused: str = REFUSED) -> NonFiniteError:
    """The error of a refused step: which terms (``(node, text)``), gradients
    (``bad_grads``, as :func:`nonfinite_grads` gives them) and inputs are not finite.

    Runs only on the refused path, so it may sync with the device freely.
    """
    bad_terms = [text for t, text in terms
                 if isinstance(term_values.get(id(t)), torch.Tensor)
                 and not bool(torch.isfinite(term_values[id(t)]).all())]
    bad_inputs = [k for k, v in values.items()
                  if isinstance(v, torch.Tensor) and v.is_floating_point()
                  and not bool(torch.isfinite(v).all())]
    value = value.detach()
    if not bool(torch.isfinite(value).all()):
        what = f"the loss {loss_text} is {float(value)}"
    else:
        what = f"the loss is finite ({float(value):.6g}) but a gradient is not"
    parts = [f"non-finite step {step}: {what}.",
             f"Non-finite terms: {'; '.join(bad_terms) or 'none'}."]
    if bad_grads:
        parts.append("Non-finite gradients: " + "; ".join(
            f"{d} ({', '.join(ts[:3])}{f' and {len(ts) - 3} more' if len(ts) > 3 else ''})"
            for d, ts in bad_grads.items()) + ".")
    if bad_inputs:
        parts.append(f"Inputs with NaN or inf: {bad_inputs}.")
    parts.append(refused)
    return NonFiniteError(" ".join(parts))
