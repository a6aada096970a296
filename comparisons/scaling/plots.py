"""The scaling outputs as PNG charts, log-log (matplotlib, Agg backend).

* ``scaling_<curve>.png``: ms/step against the size per implementation (IQR as error
  bars, the fitted slope in the legend), and beside it the ratio to hand-written;
* ``scaling_memory.png``: one step's peak memory against the size, one panel per curve;
* ``scaling_build.png``: build plus first step against the size, one panel per curve.
"""
from pathlib import Path
from typing import Callable, Dict

from .report import growth


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _size_axis(ax, sizes, label: str, log_y: bool = True) -> None:
    """Log x axis ticked at the sizes, written plainly (log y axis with ``log_y``)."""
    from matplotlib.ticker import NullLocator

    ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xticks(list(sizes))
    ax.set_xticklabels([str(s) for s in sizes], fontsize=7)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(label)


def curve_chart(curve: Dict, path: Path) -> Path:
    plt = _pyplot()
    pts = curve["points"]
    sizes = [p["size"] for p in pts]
    fits = growth(curve)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, fit in fits.items():
        ms = [p["timing"][name]["ms"] for p in pts]
        med = [m["median"] for m in ms]
        err = [[a - m["q1"] for a, m in zip(med, ms)], [m["q3"] - a for a, m in zip(med, ms)]]
        label = name if fit["slope"] is None else f"{name} (slope {fit['slope']:.2f})"
        left.errorbar(sizes, med, yerr=err, marker="o", capsize=2, label=label)
        r = [p["timing"][name]["ratio"] for p in pts]
        rmed = [q["median"] for q in r]
        rerr = [[a - q["q1"] for a, q in zip(rmed, r)], [q["q3"] - a for a, q in zip(rmed, r)]]
        right.errorbar(sizes, rmed, yerr=rerr, marker="o", capsize=2, label=name)
    _size_axis(left, sizes, curve["axis"])
    left.set_ylabel("ms per step")
    left.legend(fontsize=7)
    _size_axis(right, sizes, curve["axis"], log_y=False)
    right.axhline(1.0, color="black", linewidth=0.8)
    right.set_ylabel(f"time / {curve['reference']}")
    fig.suptitle(curve["title"], fontsize=10)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _panels(curves: Dict[str, Dict], path: Path, value: Callable[[Dict, str], float],
            ylabel: str, title: str) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(1, max(1, len(curves)), figsize=(4.6 * max(1, len(curves)), 4),
                             squeeze=False)
    for ax, curve in zip(axes[0], curves.values()):
        pts = curve["points"]
        drawn = False
        for name in (pts[0]["timing"] if pts else {}):
            xy = [(p["size"], value(p, name)) for p in pts]
            xy = [(x, y) for x, y in xy if y is not None and y > 0]  # log axes
            if xy:
                ax.plot(*zip(*xy), marker="o", label=name)
                drawn = True
        _size_axis(ax, [p["size"] for p in pts], curve["axis"])
        ax.set_ylabel(ylabel)
        ax.set_title(curve["name"], fontsize=9)
        if drawn:  # nothing above zero (e.g. no page faulted in): an empty panel
            ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def memory_chart(curves: Dict[str, Dict], path: Path) -> Path:
    def mb(p, n):
        b = p["memory"][n]["device_bytes"]
        return None if b is None else b / 2 ** 20
    return _panels(curves, path, mb, "peak MB per step",
                   "Peak memory per step (resident set on CPU, CUDA allocator on GPU)")


def build_chart(curves: Dict[str, Dict], path: Path) -> Path:
    return _panels(curves, path, lambda p, n: p["build_s"][n] + p["first_step_s"][n],
                   "build + first step, s", "Paid once: building and the first step")
