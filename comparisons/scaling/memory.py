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
* **live tensors (CPU)**: the bytes of tensor storage created by the step and alive at
  its peak, counted by a dispatch mode (:class:`LiveTensors`) that sees every operator's
  outputs, forward, backward and optimizer alike, and drops a storage when it is freed:
  the CPU counterpart of CUDA's allocator statistics, exact and independent of how glibc
  reuses its pages (the resident set moves by megabytes from one step to the next);
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
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

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


#: Up to this many live storages, the counter checks every one for a free after every
#: operator (exact); beyond, every ``live // SPARSE_CHECKS`` operators (see LiveTensors).
EXACT_UP_TO = 4096
SPARSE_CHECKS = 256


class LiveTensors(TorchDispatchMode):
    """The storage bytes that operators create inside the mode, and their peak: each
    output storage is counted once when it appears, and uncounted when its weak reference
    expires.

    The frees are found by checking the storages' weak references after every operator
    while at most :data:`EXACT_UP_TO` are alive: the peak is exact.  A larger step (the
    500-step deep Markov model keeps tens of thousands alive for its backward) is
    checked every ``live // SPARSE_CHECKS`` operators, at most :data:`SPARSE_CHECKS`
    weak references per operator on average, so that counting stays linear in the step;
    its peak is then an upper bound, by at most what was freed between two checks, and
    :attr:`exact` is ``False``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0
        self.exact = True
        self._storages: Dict[int, tuple] = {}  # data pointer -> (weak reference, bytes)
        self._since = 0  # operators since the last check

    def _drop_freed(self) -> None:
        for key in [k for k, (ref, _) in self._storages.items()
                    if torch.UntypedStorage._expired(ref)]:
            self.live -= self._storages.pop(key)[1]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self._since += 1
        live = len(self._storages)
        checked = live <= EXACT_UP_TO or self._since * SPARSE_CHECKS >= live
        if checked:
            self._drop_freed()
            self._since = 0
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key, n = storage.data_ptr(), storage.nbytes()
                seen = self._storages.get(key)
                if seen is not None and torch.UntypedStorage._expired(seen[0]):
                    self.live -= seen[1]  # freed, and its address reused by this one
                    seen = None
                if n and seen is None:
                    self._storages[key] = (storage._weak_ref(), n)
                    self.live += n
        if self.live > self.peak:
            self.exact = self.exact and checked  # else it may count freed storage
            self.peak = self.live
        return out


def tensor_peak(step: Callable[[], object]) -> int:
    """Bytes of tensor storage created by one call of ``step`` and alive at its peak."""
    return live_tensors(step).peak


def live_tensors(step: Callable[[], object]) -> LiveTensors:
    """The :class:`LiveTensors` count of one call of ``step`` (its ``peak`` and whether
    it is ``exact``)."""
    with LiveTensors() as mode:
        step()
    return mode


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
    gc.collect()
    if device == "cuda":
        samples = [cuda_peak(step) for _ in range(repeats)]
        return {"device_bytes": min(samples), "python_bytes": python_peak(step),
                "what": "CUDA allocator"}
    rss = [resident_peak(step) for _ in range(repeats)]
    counted = live_tensors(step)
    return {"device_bytes": counted.peak, "python_bytes": python_peak(step),
            "resident_bytes": None if any(s is None for s in rss) else min(rss),
            "what": "live tensors", "exact": counted.exact}
