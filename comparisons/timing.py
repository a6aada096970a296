"""How steps are timed: interleaved rounds in one process.

The method, for a set of step functions ``f_i(x)``:

1. warm up: each implementation runs ``warmup`` steps, which are discarded (first-call
   validation, JIT tracing, ``torch.compile``, the optimizer's lazily created state);
2. run ``rounds`` rounds; in round ``r`` the implementations take turns in an order
   rotated by ``r``, and each runs a block of ``steps`` steps on the same batches;
3. a block's time divided by ``steps`` is one sample of ms per step, so each
   implementation has ``rounds`` samples, taken side by side with every other one;
4. report the median and the quartiles of the samples, and the ratio to a reference as
   the median (and quartiles) of the per-round ratios: a load spike that slows one
   round slows every implementation in it, and largely cancels in that round's ratio.

The machine's load average is recorded before and after, and the page faults of each
block, so that a noisy run shows.

Freed memory: glibc gives large freed blocks back to the OS and page-faults them in again
on the next allocation.  With ``zero_grad(set_to_none=True)`` every step frees and
reallocates the gradients (13 MB at h=2000), which costs thousands of page faults per
step, unevenly across implementations depending on the order of allocations in the one
process.  :func:`keep_freed_memory` asks glibc to keep freed memory (``mallopt``), the
same for every implementation.
"""
import ctypes
import os
import resource
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory(limit: int = 1 << 30) -> bool:
    """Keep freed blocks up to ``limit`` bytes in the process (glibc ``mallopt``);
    ``False`` where the C library has no ``mallopt``."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, limit)) and \
            bool(libc.mallopt(_M_TRIM_THRESHOLD, limit))
    except (OSError, AttributeError):
        return False


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def quartiles(xs: Sequence[float]) -> Dict[str, float]:
    """``{"median", "q1", "q3"}`` of ``xs`` (inclusive method)."""
    xs = sorted(xs)
    if len(xs) == 1:
        return {"median": xs[0], "q1": xs[0], "q3": xs[0]}
    q1, med, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return {"median": med, "q1": q1, "q3": q3}


def load_average() -> List[float]:
    """The 1, 5 and 15 minute load averages (``[]`` where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return []


def interleaved(steps_fns: Dict[str, Callable[[torch.Tensor], float]],
                batches: Sequence[torch.Tensor], rounds: int, steps: int,
                warmup: int, faults: Optional[Dict[str, List[float]]] = None
                ) -> Dict[str, List[float]]:
    """Time ``steps_fns`` interleaved (see the module docstring): ms per step, one sample
    per round, per implementation; minor page faults per step go to ``faults``."""
    names = list(steps_fns)
    for name in names:
        for i in range(warmup):
            steps_fns[name](batches[i % len(batches)])
    samples: Dict[str, List[float]] = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn = steps_fns[name]
            faulted = _minor_faults()
            start = time.perf_counter()
            for i in range(steps):
                fn(batches[(r * steps + i) % len(batches)])
            samples[name].append((time.perf_counter() - start) / steps * 1e3)
            if faults is not None:
                faults.setdefault(name, []).append((_minor_faults() - faulted) / steps)
    return samples


def summarise(samples: Dict[str, List[float]], reference: str) -> Dict[str, Dict]:
    """Per implementation: ms per step (median, quartiles) and the ratio to
    ``reference`` (median and quartiles of the per-round ratios)."""
    ref = samples[reference]
    out = {}
    for name, xs in samples.items():
        ratios = [a / b for a, b in zip(xs, ref)]
        out[name] = {"ms": quartiles(xs), "ratio": quartiles(ratios), "samples_ms": xs}
    return out
