"""The encoder gradient's signal-to-noise ratio of IWAE and of DReG, k = 1..256.

On the conjugate model :math:`z \\sim N(0, 1)`, :math:`x|z \\sim N(z, 1)` with the
proposal :math:`q(z|x) = N(wx + c, s)`, the gradient of the IWAE bound
:math:`\\mathcal{L}_k(x)` with respect to the encoder weight :math:`w` is taken over
``--repeats`` independent sets of ``k`` draws, and its signal-to-noise ratio

.. math::

    \\mathrm{SNR}_k = \\frac{|\\mathbb{E}[\\nabla_w \\mathcal{L}_k]|}
    {\\mathrm{std}[\\nabla_w \\mathcal{L}_k]}

is measured as in Rainforth et al. (2018).  With ``estimator="reparam"`` it falls like
:math:`1/\\sqrt{k}`; with ``estimator="dreg"`` (Tucker et al. 2018) it grows like
:math:`\\sqrt{k}`.  The repeats run in one pass: each row of the batch has its own copy of
``w``, so one backward pass gives every repeat's gradient.

Run from the repository root::

    python -m examples.dreg_snr            # a few seconds

It prints the table and writes ``snr.png`` and ``metrics.json`` to ``--out`` (default
``out/dreg_snr``).
"""
import argparse
import json
import math
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch
from torch import nn

from examples.plotting import save_figure
from pixyz_pyro.dist import Normal
from pixyz_pyro.loss import IWAE


class Proposal(Normal):
    """:math:`q(z|x) = N(w_r x + c, s)`, one weight :math:`w_r` per row ``r``."""

    def __init__(self, rows: int, w: float = 0.3, c: float = 0.2, s: float = 0.9):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.wt = nn.Parameter(torch.full((rows, 1), w))
        self.bias = nn.Parameter(torch.tensor(c))
        self.log_s = nn.Parameter(torch.tensor(math.log(s)))

    def forward(self, x):
        rows = x.shape[0] // self.wt.shape[0]  # the k draws come folded, draw-major
        w = self.wt.repeat(rows, 1) if rows > 1 else self.wt
        return {"loc": w * x + self.bias, "scale": self.log_s.exp().expand_as(x)}


def snr(k: int, estimator: str, repeats: int, x: float, seed: int) -> float:
    """The SNR of :math:`\\nabla_w \\mathcal{L}_k(x)` over ``repeats`` sets of draws."""
    torch.manual_seed(seed)
    q = Proposal(repeats)
    p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"], name="p") * Normal(
        loc=0., scale=1., var=["z"], name="p")
    bound = IWAE(p, q, k=k, estimator=estimator).sum()
    value = bound.eval({"x": torch.full((repeats, 1), x)})
    (g,) = torch.autograd.grad(value, [q.wt])
    g = g.reshape(-1)
    return float(g.mean().abs() / g.std())


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    ap = argparse.ArgumentParser(description="encoder-gradient SNR of IWAE and DReG")
    ap.add_argument("--repeats", type=int, default=2000)
    ap.add_argument("--max-k", type=int, default=256)
    ap.add_argument("--x", type=float, default=1.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=str, default=None)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--no-progress", action="store_true", help="(no progress bar to hide)")
    ap.add_argument("--max-steps", type=int, default=None, help="(no training: ignored)")
    args = ap.parse_args(list(argv) if argv is not None else None)
    torch.set_num_threads(max(1, args.threads))
    out = Path(args.out or "out/dreg_snr")
    out.mkdir(parents=True, exist_ok=True)
    ks = [2 ** i for i in range(int(math.log2(args.max_k)) + 1)]
    curves = {est: [snr(k, est, args.repeats, args.x, args.seed + k) for k in ks]
              for est in ("reparam", "dreg")}
    print(f"{'k':>5} {'IWAE SNR':>10} {'DReG SNR':>10}")
    for i, k in enumerate(ks):
        print(f"{k:>5} {curves['reparam'][i]:>10.3f} {curves['dreg'][i]:>10.3f}")

    from matplotlib.figure import Figure
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    ax.loglog(ks, curves["reparam"], "o-", ms=3, label='IWAE (estimator="reparam")')
    ax.loglog(ks, curves["dreg"], "o-", ms=3, label='DReG (estimator="dreg")')
    ax.set_xlabel("k (importance samples)")
    ax.set_ylabel("encoder gradient |mean| / std")
    ax.set_title(f"SNR of dL_k/dw, {args.repeats} repeats")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, out / "snr.png")
    metrics = {"k": ks, "snr_iwae": curves["reparam"], "snr_dreg": curves["dreg"],
               "repeats": args.repeats}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"wrote {out}/")
    return metrics


if __name__ == "__main__":
    main()
