"""Running statistics: the state a forward pass changes by itself.

In training mode ``BatchNorm`` (and Pyro's ``BatchNorm`` transform) update their
``running_*`` buffers during ``forward``.  When a call fails halfway -- the network
raises on a bad input after the first layers ran -- those updates would survive the
error.  :func:`snapshot_running` copies them before a public call and
:func:`restore_running` puts them back if the call raises, so that a refused call
changes nothing.

The list of such buffers is found once per distribution and cached as
``(module, buffer name)`` pairs (they survive ``.to(device)``); a model without running
statistics pays one attribute lookup per call.
"""
from typing import Iterable, List, Tuple

import torch
from torch import nn

_PREFIXES = ("running_", "num_batches_tracked")
Saved = List[Tuple[nn.Module, str, torch.Tensor]]


def running_slots(module: nn.Module) -> List[Tuple[nn.Module, str]]:
    """``(submodule, name)`` of every running-statistics buffer under ``module``
    (cached on the module)."""
    slots = module.__dict__.get("_running_slots")
    if slots is None:
        slots = [(m, name) for m in module.modules() for name, b in m._buffers.items()
                 if b is not None and name.startswith(_PREFIXES)]
        module.__dict__["_running_slots"] = slots
    return slots


def snapshot_running(modules: Iterable[nn.Module]) -> Saved:
    """Copies of the running statistics of the modules in training mode."""
    saved: Saved = []
    for module in modules:
        if not isinstance(module, nn.Module):
            continue
        for m, name in running_slots(module):
            if m.training:
                saved.append((m, name, m._buffers[name].detach().clone()))
    return saved


def restore_running(saved: Saved) -> None:
    """Put back what :func:`snapshot_running` copied."""
    with torch.no_grad():
        for m, name, copy in saved:
            m._buffers[name].copy_(copy)
