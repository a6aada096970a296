"""Peak memory of one training step, above what the process holds before it.

Three measures, each of one step taken after the warm-up and the timing (so the
optimizer's state and any plan already exist and are not counted):

* **resident set (CPU)**: what the step adds to the process's peak resident memory,
  which is where torch's CPU tensors live (torch keeps no statistics of its CPU
  allocator).  Before the step, freed heap memory is handed back to the OS
  (``malloc_trim(0)``) and Linux's high-water mark is reset (``5`` written to
  ``/proc/self/clear_refs``); after it, ``VmHWM - VmRSS(before)`` from
  ``/proc/self/status`` is the step's peak, to a page.  It counts every byte the step
  touched for the first time: tensors, autograd's saved activations, gradients (freed
  with ``zero_grad(set_to_none=True)`` and reallocated every step), and Python objects.
  ``None`` where the kernel does not allow the reset (not Linux);
* **CUDA (GPU)**: ``torch.cuda.max_memory_allocated() - memory_allocated()`` around the
  step, after ``reset_peak_memory_stats``: bytes held by live tensors at the peak;
* **Python heap**: ``tracemalloc``'s peak over the step (started just before it):
  the Python objects a step creates (traces, plans, dicts of values); not tensor data.

``getrusage``'s ``ru_maxrss`` is the same high-water mark as ``VmHWM`` but cannot be
compared across implementations in one process unless it is reset, which is what
``clear_refs`` does.
"""
import ctypes
import gc
import tracemalloc
from pathlib import Path
from typing import Callable, Dict, Optional

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> Optional[int]:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def resident_peak(step: Callable[[], object]) -> Optional[int]:
    """Bytes by which one call of ``step`` raised the resident set at its peak."""
    _trim()
    if not _reset_peak():
        return None
    before = _status_kb("VmRSS")
    step()
    peak = _status_kb("VmHWM")
    if before is None or peak is None:
        return None
    return max(0, peak - before) * 1024


def cuda_peak(step: Callable[[], object]) -> int:
    """Bytes of live CUDA tensors at the peak of one call of ``step``, above those
    before it."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def python_peak(step: Callable[[], object]) -> int:
    """Peak bytes of Python objects allocated during one call of ``step``."""
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def measure(step: Callable[[], object], device: str = "cpu", repeats: int = 2) -> Dict:
    """``{"device_bytes", "python_bytes", "what"}`` for one step, after one full garbage
    collection (a fraction of a second with torch, Pyro and sympy loaded): the device measure
    (resident set on CPU, CUDA allocator on GPU; the smallest over ``repeats`` steps,
    which leaves out pages a step happens to fault in for the allocator's own
    bookkeeping) and the Python heap's peak."""
    peak = cuda_peak if device == "cuda" else resident_peak
    gc.collect()
    samples = [peak(step) for _ in range(repeats)]
    device_bytes = None if any(s is None for s in samples) else min(samples)
    return {"device_bytes": device_bytes, "python_bytes": python_peak(step),
            "what": "CUDA allocator" if device == "cuda" else "resident set"}
