"""Sampling time of the autoregressive distributions against their dimension.

``python -m comparisons.ar_sampling`` draws a batch from
:class:`~pixyz_pyro.dist.AutoregressiveBernoulli` (a MADE over ``D`` binary features) and
:class:`~pixyz_pyro.dist.PixelCNN` (``s x s`` images, ``D = s^2``) at growing ``D``, and
times one draw and one exact ``log_prob`` of it, interleaved in rounds (1 torch thread).

Sampling is sequential: ``D`` passes of the network, without rebuilding anything between
them, so its time is ``D`` times the cost of one pass.  That is linear in ``D`` while a pass
costs about its dispatch (the MADE at these sizes: a log-log slope near 1), and steeper when
a pass itself grows with ``D`` (the PixelCNN convolves the whole image at every pass: near
1.5); scoring is one pass.  Writes ``ar_sampling.md`` (times and fitted slopes) and
``ar_sampling.png`` (log-log) to
``--out``; ``--quick`` runs tiny sizes in seconds (the tests use it).
"""
import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch

from pixyz_pyro.dist import AutoregressiveBernoulli, PixelCNN

from .timing import keep_freed_memory


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``log y`` on ``log x``.

    >>> round(slope([1, 2, 4], [3, 6, 12]), 6)
    1.0
    """
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def _timed(fn: Callable[[], object], rounds: int) -> float:
    """Median seconds of ``fn`` over ``rounds`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _point(d: int, p, batch: int, rounds: int) -> Dict[str, float]:
    """One size: the median times of a draw of ``batch`` and of scoring it."""
    x = p.sample(batch_n=batch)
    return {"D": d, "sample_ms": 1e3 * _timed(lambda: p.sample(batch_n=batch), rounds),
            "log_prob_ms": 1e3 * _timed(lambda: p.get_log_prob(x), rounds)}


def measure(dims: Sequence[int], sides: Sequence[int], batch: int, rounds: int) -> Dict:
    """Sampling and scoring times (ms) per dimension for both distributions."""
    torch.manual_seed(0)
    out: Dict[str, List[Dict[str, float]]] = {"AutoregressiveBernoulli": [], "PixelCNN": []}
    with torch.no_grad():
        for d in dims:
            out["AutoregressiveBernoulli"].append(
                _point(d, AutoregressiveBernoulli(dim=d, hidden=64), batch, rounds))
        for s in sides:
            out["PixelCNN"].append(
                _point(s * s, PixelCNN(height=s, width=s, channels=16, layers=2), batch, rounds))
    return out


def report(results: Dict, out: Path, plot: bool) -> str:
    lines = ["# Autoregressive sampling against the dimension", "",
             "One draw of the batch (sequential: one network pass per dimension) and one exact "
             "`log_prob` (one pass), median of the rounds, 1 torch thread.", ""]
    for name, rows in results.items():
        ds = [r["D"] for r in rows]
        lines += [f"## {name}", "", "| D | sample ms | log_prob ms | sample / D (us) |",
                  "|---|---|---|---|"]
        lines += [f"| {r['D']} | {r['sample_ms']:.2f} | {r['log_prob_ms']:.3f} | "
                  f"{1e3 * r['sample_ms'] / r['D']:.1f} |" for r in rows]
        if len(rows) > 1:
            sampling = slope(ds, [r["sample_ms"] for r in rows])
            scoring = slope(ds, [r["log_prob_ms"] for r in rows])
            lines += ["", f"log-log slope: sampling {sampling:.2f}, scoring {scoring:.2f}"]
        lines.append("")
    text = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ar_sampling.md").write_text(text)
    if plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(5, 4))
        for name, rows in results.items():
            ds = [r["D"] for r in rows]
            ax.loglog(ds, [r["sample_ms"] for r in rows], "o-", label=f"{name}: sample")
            ax.loglog(ds, [r["log_prob_ms"] for r in rows], "s--", label=f"{name}: log_prob")
        from matplotlib.ticker import NullFormatter, ScalarFormatter
        ticks = [r["D"] for r in next(iter(results.values()))]
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("dimension D")
        ax.set_ylabel("ms per batch")
        ax.legend(fontsize=7)
        ax.set_title("Autoregressive sampling is one pass per dimension", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / "ar_sampling.png", dpi=120)
        plt.close(fig)
    return text


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    ap = argparse.ArgumentParser(prog="python -m comparisons.ar_sampling", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--out", default="comparisons/results")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for the tests")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    keep_freed_memory()
    dims = (4, 8) if args.quick else (16, 32, 64, 128, 256, 512)
    sides = (2, 3) if args.quick else (4, 6, 8, 12, 16)
    results = measure(dims, sides, args.batch, 1 if args.quick else args.rounds)
    print(report(results, Path(args.out), not args.no_plot))
    return results


if __name__ == "__main__":
    main()
