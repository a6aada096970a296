"""The cost of the loss algebra itself: building a 50-term loss, and printing it.

Building is pure Python (immutable nodes, no sympy, no tensors).  Printing goes through
:mod:`pixyz_pyro.loss.latex`, which imports sympy on the first call; both the first
print (with the import) and a later one are reported.
"""
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import torch

from pixyz_pyro.dist import Normal
from pixyz_pyro.loss import LogProb

_FIRST_PRINT = """
import time, torch
from comparisons.formula import build_loss, factors
fs = factors(50)
loss = build_loss(fs)
t = time.perf_counter(); text = str(loss); print(time.perf_counter() - t, len(text))
"""


def factors(n: int) -> List[Normal]:
    """``n`` conditional Normals :math:`p_i(x_i|z)` that share ``z``."""
    return [Normal(loc="z", scale=torch.tensor(1.0), var=[f"x{i}"], cond_var=["z"],
                   name=f"p_{{{i}}}") for i in range(n)]


def build_loss(fs: List[Normal]):
    """The loss :math:`\\mathrm{mean}\\left(\\sum_i -\\log p_i(x_i|z)\\right)`, one term per
    factor, built by adding the terms one by one (as a user writes them)."""
    loss = -LogProb(fs[0])
    for f in fs[1:]:
        loss = loss - LogProb(f)
    return loss.mean()


def measure(n_terms: int = 50, repeats: int = 20) -> Dict[str, float]:
    """Seconds to build the loss (median of ``repeats``), to print it the first time in
    a fresh process (sympy imported then) and to print it again."""
    fs = factors(n_terms)
    builds = []
    for _ in range(repeats):
        start = time.perf_counter()
        loss = build_loss(fs)
        builds.append(time.perf_counter() - start)
    text = str(loss)  # the first print in this process may import sympy
    start = time.perf_counter()
    text = str(loss)
    again = time.perf_counter() - start
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    fresh = subprocess.run([sys.executable, "-c", _FIRST_PRINT], capture_output=True,
                           text=True, check=True, cwd=root, env=env)
    first = float(fresh.stdout.split()[0])
    return {"terms": n_terms, "build_s": sorted(builds)[len(builds) // 2],
            "first_print_s": first, "print_s": again, "characters": len(text)}
