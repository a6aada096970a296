"""Per-step overhead against the number of factors in a joint (1, 4, 16, 64), for
:mod:`comparisons.extras` (the full curves, against Pyro too, are in :mod:`.factors`).

The joint :math:`p(x_1, \\dots, x_K) = \\prod_k \\mathcal{N}(x_k | \\mu_k, 1)` with a
learnable :math:`\\mu_k` per factor is fitted by maximum likelihood, ``Model`` on
``-LogProb(p).mean()``, against the same step written by hand (the sum of the K
log-densities, Adam, ``.item()``).  The tensors are tiny (batch 8, 2 features), so the
difference of the two step times is the overhead of the library per step; it should
grow at most linearly in K with a small constant.
"""
import math
from functools import reduce
from typing import Dict, List

import torch
from torch import nn

from pixyz_pyro.dist import Normal
from pixyz_pyro.loss import LogProb
from pixyz_pyro.model import Model

from ..timing import interleaved, quartiles, summarise

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class Handwritten:
    def __init__(self, k: int, dim: int, device: str = "cpu"):
        self.locs = [nn.Parameter(torch.zeros(dim, device=device)) for _ in range(k)]
        self.optimizer = torch.optim.Adam(self.locs, lr=1e-3)

    def step(self, data: Dict[str, torch.Tensor]) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        total = 0
        for i, loc in enumerate(self.locs):
            total = total - (-((data[f"x{i}"] - loc) ** 2) / 2 - _HALF_LOG_2PI).sum(-1)
        loss = total.mean()
        loss.backward()
        self.optimizer.step()
        return loss.item()


class Pixyz:
    def __init__(self, k: int, dim: int, device: str = "cpu"):
        fs = [Normal(loc=nn.Parameter(torch.zeros(dim)), scale=torch.tensor(1.0),
                     var=[f"x{i}"], name=f"p_{{{i}}}").to(device) for i in range(k)]
        joint = reduce(lambda a, b: a * b, fs)
        self.model = Model(-LogProb(joint).mean(), distributions=fs,
                           optimizer=torch.optim.Adam, optimizer_params={"lr": 1e-3})

    def step(self, data: Dict[str, torch.Tensor]) -> float:
        return self.model.train(data).item()


def measure(ks=(1, 4, 16, 64), batch: int = 8, dim: int = 2, rounds: int = 10,
            steps: int = 20, device: str = "cpu") -> List[Dict[str, float]]:
    """For each K: ms per step of both, the overhead in ms (median of the per-round
    differences) and per factor in us."""
    rows = []
    for k in ks:
        data = [{f"x{i}": torch.randn(batch, dim, device=device) for i in range(k)}
                for _ in range(4)]
        fns = {"hand-written": Handwritten(k, dim, device).step,
               "pixyz_pyro": Pixyz(k, dim, device).step}
        samples = interleaved(fns, data, rounds, steps, warmup=5)
        stats = summarise(samples, "hand-written")
        overhead = quartiles([b - a for a, b in zip(samples["hand-written"],
                                                    samples["pixyz_pyro"])])["median"]
        rows.append({"factors": k, "handwritten_ms": stats["hand-written"]["ms"]["median"],
                     "pixyz_ms": stats["pixyz_pyro"]["ms"]["median"], "overhead_ms": overhead,
                     "overhead_per_factor_us": overhead / k * 1e3,
                     "ratio": stats["pixyz_pyro"]["ratio"]["median"]})
    return rows
