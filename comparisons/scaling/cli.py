"""``python -m comparisons.scaling``: the scaling curves, each against hand-written
PyTorch and Pyro in one interleaved run.

Curves (``--curves``, default all, in this order):

* ``factors``: K = 1 to 256 chained Normals (:mod:`.factors`);
* ``batch``: the Table 1 VAE at batch 32 to 4096 (:mod:`.batch`);
* ``particles``: its Monte Carlo ELBO with S = 1 to 64 vectorised samples
  (:mod:`.particles`);
* ``sequence``: the deep Markov model over T = 10 to 500 steps (:mod:`.sequence`).

At every point: plan-building and first-step times, the same-objective check, the
interleaved step times (:mod:`.runner`), and one step's peak memory (:mod:`.memory`).

**Bounded time.** ``--budget`` seconds (default 600) bound the whole run after the
imports: :data:`RESERVE_S` of them are kept for the charts, and the rest is shared by
the points, each getting what is left divided by the points left and sizing its rounds
from its own warm-up steps (3 to 10 rounds of 1 to 200 steps), so cheap points finish
early and leave time to the dear ones.  The run overruns only by what the largest sizes
need beyond their share for their fixed part (first step, two warm-up steps, three
rounds of one step, the memory steps): about a minute on a slow 2-core machine.  A
``tqdm`` bar shows the points.

Settings as Table 1: ``--threads 1``, ``torch.set_flush_denormal(True)``, glibc keeps
freed memory (:func:`comparisons.timing.keep_freed_memory`), Pyro's validation off,
pixyz_pyro's defaults.  Outputs (``--out``, default ``comparisons/results``):
``scaling_<curve>.md`` and ``.png`` per curve, ``scaling_memory.md/png``,
``scaling_build.md/png`` and ``scaling.json``; the Markdown and JSON are rewritten after
every point, so a run cut short keeps what it finished.  ``--quick`` runs two tiny sizes
per curve in seconds (a smoke test; its numbers mean nothing).
"""
import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pyro
import torch

from ..device import add_device_args, check_device, device_name
from ..timing import keep_freed_memory, load_average
from . import batch, factors, particles, plots, report, sequence
from .runner import run_size, warm_process

#: Seconds of ``--budget`` kept for the final charts and the last point's overrun.
RESERVE_S = 30.0
CURVES = {c.name: c for c in (factors.CURVE, batch.CURVE, particles.CURVE, sequence.CURVE)}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m comparisons.scaling", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--curves", default=",".join(CURVES),
                    help=f"comma-separated curves of {list(CURVES)} (default: all)")
    ap.add_argument("--budget", type=float, default=600.0,
                    help="seconds for the whole run after the imports (default 600)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    add_device_args(ap)
    ap.add_argument("--out", default="comparisons/results")
    ap.add_argument("--no-plot", action="store_true", help="skip the PNG charts")
    ap.add_argument("--quick", action="store_true",
                    help="two tiny sizes per curve, 2 rounds of 1 step (a smoke test)")
    args = ap.parse_args(argv)
    check_device(ap, args)
    args.curves = [c.strip() for c in args.curves.split(",") if c.strip()]
    unknown = sorted(set(args.curves) - set(CURVES))
    if unknown:
        ap.error(f"unknown curves {unknown}; choose from {list(CURVES)}")
    return args


def write(result: Dict, out: Path, plot: bool) -> List[Path]:
    """The Markdown files and ``scaling.json`` (and with ``plot`` the charts) for the
    curves with at least one point."""
    out.mkdir(parents=True, exist_ok=True)
    meta = result["meta"]
    curves = {n: c for n, c in result["curves"].items() if c["points"]}
    paths = []
    for name, curve in curves.items():
        paths.append(out / f"scaling_{name}.md")
        paths[-1].write_text(report.curve_markdown(curve, meta))
        if plot:
            paths.append(plots.curve_chart(curve, out / f"scaling_{name}.png"))
    for name, text in (("memory", report.memory_markdown), ("build", report.build_markdown)):
        paths.append(out / f"scaling_{name}.md")
        paths[-1].write_text(text(curves, meta))
    if plot and curves:
        paths += [plots.memory_chart(curves, out / "scaling_memory.png"),
                  plots.build_chart(curves, out / "scaling_build.png")]
    paths.append(out / "scaling.json")
    paths[-1].write_text(json.dumps(result, indent=2) + "\n")
    return paths


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    from tqdm import tqdm

    args = parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    pyro.enable_validation(False)
    kept = keep_freed_memory()
    meta = {"machine": f"{platform.processor() or platform.machine()} "
                       f"({platform.system()}, Python {platform.python_version()})",
            "torch": torch.__version__, "pyro": pyro.__version__,
            "threads": torch.get_num_threads(), "flush_denormal": True,
            "keep_freed_memory": kept, "device": device_name(args.device),
            "budget_s": args.budget, "quick": args.quick, "load_before": load_average(),
            "argv": list(sys.argv[1:] if argv is None else argv)}
    result = {"meta": meta, "curves": {}}
    todo = []
    for name in args.curves:
        c = CURVES[name]
        result["curves"][name] = {"name": name, "title": c.title, "axis": c.axis,
                                  "reference": c.reference, "description": c.description,
                                  "points": []}
        todo += [(c, s) for s in (c.quick_sizes if args.quick else c.sizes)]
    for name in args.curves:
        warm_process(CURVES[name], args.device)
    out = Path(args.out)
    bar = tqdm(todo, desc="scaling", unit="point", file=sys.stderr)
    for i, (c, size) in enumerate(bar):
        bar.set_postfix_str(f"{c.name}={size}")
        share = (args.budget - RESERVE_S - (time.perf_counter() - started)) / (len(todo) - i)
        point = run_size(c, size, share, args.device, args.quick, args.tolerance)
        result["curves"][c.name]["points"].append(point)
        meta["load_after"] = load_average()
        meta["seconds"] = time.perf_counter() - started
        last_of_curve = i + 1 == len(todo) or todo[i + 1][0] is not c
        write(result, out, plot=last_of_curve and not args.no_plot and not args.quick)
    bar.close()
    meta["seconds"] = time.perf_counter() - started
    paths = write(result, out, plot=not args.no_plot)
    for name in args.curves:
        print(f"{name}: " + ", ".join(
            f"{n} slope {report._num(g['slope'])}"
            for n, g in report.growth(result["curves"][name]).items()))
    print(f"{meta['seconds']:.0f} s; wrote " + ", ".join(str(p) for p in paths))
    bad = [f"{name} at {p['size']}: {n} (relative {c['relative']:.1e})"
           for name, curve in result["curves"].items() for p in curve["points"]
           for n, c in p["check"].items() if not c["ok"]]
    if bad:
        raise SystemExit(f"not the same objective (tolerance {args.tolerance:g}): "
                         + "; ".join(bad))
    return result
