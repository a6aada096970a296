"""Running statistics: the state a forward pass changes by itself.

In training mode ``BatchNorm`` (and Pyro's ``BatchNorm`` transform) update their
``running_*`` buffers during ``forward``.  When a call fails halfway -- the network
raises on a bad input after the first layers ran -- those updates would survive the
error.  :func:`snapshot_running` copies them before a public call and
:func:`restore_running` puts them back if the call raises, so that a refused call
changes nothing.

The list of such buffers is found by a walk over the modules, as ``(module, buffer
name)`` pairs (they survive ``.to(device)``); a loss's plan holds it, so a model finds it
once.
"""
from typing import Iterable, List, Tuple

import torch
from torch import nn

_PREFIXES = ("running_", "num_batches_tracked", "moving_")
Saved = List[Tuple[nn.Module, str, torch.Tensor]]


def running_slots(module: nn.Module) -> List[Tuple[nn.Module, str]]:
    """``(submodule, name)`` of every running-statistics buffer under ``module``."""
    if not isinstance(module, nn.Module):
        return []
    return [(m, name) for m in module.modules() for name, b in m._buffers.items()
            if b is not None and name.startswith(_PREFIXES)]


def snapshot_running(modules: Iterable[nn.Module]) -> Saved:
    """Copies of the running statistics of the modules in training mode."""
    return snapshot_slots([s for module in modules for s in running_slots(module)])


def snapshot_slots(slots: Iterable[Tuple[nn.Module, str]]) -> Saved:
    """Copies of the buffers ``slots`` names whose module is in training mode."""
    return [(m, name, b.detach().clone()) for m, name in slots
            if m.training and (b := m._buffers[name]) is not None]


def restore_running(saved: Saved) -> None:
    """Put back what :func:`snapshot_running` copied."""
    with torch.no_grad():
        for m, name, copy in saved:
            b = m._buffers[name]
            if b is not None:
                b.copy_(copy)


def restore_running_where(saved: Saved, bad: torch.Tensor) -> None:
    """Put back what :func:`snapshot_slots` copied where the 0-dim bool ``bad`` is true,
    on the device and without reading it: :math:`b \\leftarrow \\mathrm{where}(bad,
    b_{before}, b)` (``Model(check_every=N)``'s refused steps)."""
    with torch.no_grad():
        for m, name, copy in saved:
            b = m._buffers[name]
            if b is not None:
                b.copy_(torch.where(bad, copy, b))
