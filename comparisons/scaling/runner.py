"""One point of a curve: build, check, warm up, time, measure memory.

For each size of a :class:`~.curve.Curve`:

1. **plan building**: each implementation is built from the same initial weights, timed
   (``Model`` construction, for pixyz_pyro: the plan is made there and on the first
   step); then its **first step** is timed on its own, after
   ``torch.manual_seed(FIRST_SEED)``.  Both are reported apart from the step times, as
   they are paid once;
2. **same objective**: the first losses must equal the curve's references (same weights,
   batch and noise) to ``tolerance`` relative; a point that does not is still timed (a
   long unattended run keeps going) but marked, and :mod:`.cli` exits with an error
   after writing the outputs;
3. **warm-up**: ``warmup`` more steps each; the last one's time estimates the cost of
   a step, from which the timing is sized to the seconds this point may take
   (:func:`plan_rounds`): between 3 and 10 rounds of 1 to 200 steps;
4. **timing**: interleaved rounds (:func:`comparisons.timing.interleaved`), ratios to
   the hand-written reference per round, and the overhead in ms as the median of the
   per-round differences;
5. **memory**: one step's peak of each (:mod:`.memory`).
"""
import functools
import time
from typing import Dict, Tuple

import pyro
import torch

from ..timing import interleaved, quartiles, summarise
from . import memory
from .curve import FIRST_SEED, Curve

MIN_ROUNDS, MAX_ROUNDS, MAX_STEPS = 3, 10, 200
#: Steps the memory measurement takes per implementation, in units of one step's time
#: (two steps for the device measure, one under ``tracemalloc``, which is slower).
MEMORY_COST = 5


def plan_rounds(seconds: float, per_round: float) -> Tuple[int, int]:
    """Rounds and steps per block so that ``rounds * steps * per_round`` (one step of
    every implementation) fits in ``seconds``, within the bounds of the module."""
    per_round = max(per_round, 1e-6)
    rounds = int(min(MAX_ROUNDS, max(MIN_ROUNDS, seconds / per_round)))
    steps = int(min(MAX_STEPS, max(1, seconds / (rounds * per_round))))
    return rounds, steps


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def warm_process(curve: Curve, device: str = "cpu") -> None:
    """Build and step every implementation of ``curve`` once at its smallest ``--quick``
    size, untimed: torch, Pyro and pixyz_pyro import parts of themselves on first use
    (``torch._dynamo`` through the first optimizer, for one: seconds), which would
    otherwise be counted as the first point's plan building."""
    setup = curve.setup(curve.quick_sizes[0], device, True)
    for factory in setup.factories.values():
        factory().step(setup.data[0])
    pyro.clear_param_store()


def run_size(curve: Curve, size: int, seconds: float, device: str = "cpu",
             quick: bool = False, tolerance: float = 1e-6, warmup: int = 2) -> Dict:
    """Measure ``curve`` at ``size`` in about ``seconds`` (see the module docstring)."""
    start = time.perf_counter()
    pyro.clear_param_store()  # the previous size's modules
    setup = curve.setup(size, device, quick)
    data = setup.data
    impls, build_s, first_s, losses = {}, {}, {}, {}
    for name, factory in setup.factories.items():
        impls[name], build_s[name] = _timed(factory)
    for name, impl in impls.items():
        torch.manual_seed(FIRST_SEED)
        losses[name], first_s[name] = _timed(impl.step, data[0])
    refs = (setup.references(losses, impls) if setup.references is not None
            else {n: losses[curve.reference] for n in impls})
    check = {n: {"loss": losses[n], "reference": refs[n],
                 "relative": abs(losses[n] - refs[n]) / max(abs(refs[n]), 1e-30)}
             for n in impls}
    for c in check.values():
        c["ok"] = c["relative"] <= tolerance
    estimate = {}
    for name, impl in impls.items():
        for i in range(1 if quick else warmup):
            _, estimate[name] = _timed(impl.step, data[(i + 1) % len(data)])
    per_round = sum(estimate.values())
    left = seconds - (time.perf_counter() - start) - MEMORY_COST * per_round
    rounds, steps = (2, 1) if quick else plan_rounds(left, per_round)
    samples = interleaved({n: i.step for n, i in impls.items()}, data, rounds, steps, 0)
    stats = summarise(samples, curve.reference)
    ref = samples[curve.reference]
    timing = {n: {"ms": s["ms"], "ratio": s["ratio"],
                  "overhead_ms": quartiles([b - a for a, b in zip(ref, samples[n])])}
              for n, s in stats.items()}
    mem = {n: memory.measure(functools.partial(i.step, data[0]), device, 1 if quick else 2)
           for n, i in impls.items()}
    return {"size": size, "details": setup.details, "check": check, "build_s": build_s,
            "first_step_s": first_s, "rounds": rounds, "steps": steps, "timing": timing,
            "memory": mem, "seconds": time.perf_counter() - start}
