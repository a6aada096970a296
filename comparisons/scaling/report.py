"""The scaling outputs as Markdown: one table per curve (``scaling_<curve>.md``), the
peak memory of every curve (``scaling_memory.md``) and the plan-building times
(``scaling_build.md``).

A curve's result is ``{"title", "axis", "reference", "description", "points": [...]}``,
each point one :func:`~.runner.run_size` result.
"""
from typing import Dict, List, Optional

from .fit import settles_at, slope

#: A ratio to hand-written at or under which the library's overhead "stops mattering".
SETTLED = 1.05


def _header(meta: Dict) -> List[str]:
    return [f"{meta['machine']}; torch {meta['torch']}, pyro {meta['pyro']}; "
            f"{meta['threads']} torch thread(s); flush denormal on; device {meta['device']}"
            f"{'; --quick (sizes too small to mean anything)' if meta.get('quick') else ''}.",
            "", f"Load average (1, 5, 15 min): before {meta['load_before']}, after "
                f"{meta.get('load_after')}; the whole run took {meta.get('seconds', 0):.0f} s "
                f"(budget {meta['budget_s']:.0f} s).", ""]


def _names(curve: Dict) -> List[str]:
    return list(curve["points"][0]["timing"]) if curve["points"] else []


def growth(curve: Dict) -> Dict[str, Dict[str, Optional[float]]]:
    """Per implementation: the log-log slope of ms/step over all sizes and over the
    largest three, the ratio at the largest size, and the size from which the ratio stays
    at or under :data:`SETTLED`."""
    pts = curve["points"]
    sizes = [p["size"] for p in pts]
    out = {}
    for name in _names(curve):
        ms = [p["timing"][name]["ms"]["median"] for p in pts]
        ratios = [p["timing"][name]["ratio"]["median"] for p in pts]
        out[name] = {"slope": slope(sizes, ms),
                     "tail_slope": slope(sizes[-3:], ms[-3:]) if len(pts) >= 3 else None,
                     "last_ratio": ratios[-1] if ratios else None,
                     "settles_at": settles_at(sizes, ratios, SETTLED)}
    return out


def _num(v: Optional[float], fmt: str = ".2f") -> str:
    return "n/a" if v is None else f"{v:{fmt}}"


def curve_markdown(curve: Dict, meta: Dict) -> str:
    """``scaling_<curve>.md``: ms/step per size and implementation, then the growth."""
    names, ref = _names(curve), curve["reference"]
    lines = [f"# {curve['title']}", "", curve["description"], ""] + _header(meta)
    worst = {n: max((p["check"][n]["relative"] for p in curve["points"]), default=0.0)
             for n in names}
    differs = [f"{n} at {p['size']}" for p in curve["points"] for n in names
               if not p["check"][n]["ok"]]
    lines += ["Same objective at every size (first step from the same weights, batch and "
              "seed): largest relative difference " + ", ".join(
                  f"{n} {v:.1e}" for n, v in worst.items()) + "."
              + (f" **Over the tolerance: {', '.join(differs)}.**" if differs else ""), "",
              "Cells: ms/step, median [IQR]; for the others also the ratio to "
              f"{ref} (median of per-round ratios [quartiles]) and the overhead "
              "(median per-round difference).", "",
              f"| {curve['axis']} | rounds x steps | " + " | ".join(names) + " |",
              "|---|---|" + "---|" * len(names)]
    for p in curve["points"]:
        cells = []
        for n in names:
            t = p["timing"][n]
            cell = f"{t['ms']['median']:.3g} [{t['ms']['q1']:.3g}-{t['ms']['q3']:.3g}]"
            if n != ref:
                r = t["ratio"]
                cell += (f"; {r['median']:.2f}x [{r['q1']:.2f}-{r['q3']:.2f}]; "
                         f"{t['overhead_ms']['median']:+.3g} ms")
            cells.append(cell)
        lines.append(f"| {p['size']} | {p['rounds']} x {p['steps']} | " + " | ".join(cells)
                     + " |")
    lines += ["", "Growth: log-log slope of ms/step against the size (0: a fixed cost "
              "dominates; 1: linear in the size).", "",
              "| implementation | slope, all sizes | slope, largest 3 | ratio at the largest "
              f"| ratio <= {SETTLED:.2f}x from |", "|---|---|---|---|---|"]
    for n, g in growth(curve).items():
        settled = "" if n == ref else ("never" if g["settles_at"] is None
                                       else f"{curve['axis']} = {g['settles_at']}")
        lines.append(f"| {n} | {_num(g['slope'])} | {_num(g['tail_slope'])} | "
                     f"{'' if n == ref else _num(g['last_ratio'])} | {settled} |")
    return "\n".join(lines) + "\n"


def _bytes(b: Optional[int]) -> str:
    if b is None:
        return "n/a"
    return f"{b / 2 ** 20:.3g} MB" if b >= 2 ** 20 else f"{b / 1024:.0f} KB"


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"


def memory_markdown(curves: Dict[str, Dict], meta: Dict) -> str:
    """``scaling_memory.md``: one step's peak, per curve, size and implementation."""
    lines = ["# Peak memory per step", "",
             "One step after warm-up and timing, above what the process held before it "
             "(`comparisons/scaling/memory.py`): on CPU the bytes of tensor storage the "
             "step creates that are alive at its peak (a dispatch mode counts every "
             "operator's outputs and drops them when freed; torch keeps no CPU allocator "
             "statistics), with the rise of the resident set's high-water mark beside it "
             "(freed heap trimmed and the mark reset first; it moves by megabytes with "
             "how glibc reuses pages); on GPU `torch.cuda.max_memory_allocated`; then "
             "the Python heap's peak under `tracemalloc` (objects, not tensor data). "
             "Ratios are to the hand-written implementation; \"<=\" marks a step too large "
             "for an exact count (more than 4096 storages alive: an upper bound).",
             ""] + _header(meta)
    for curve in curves.values():
        names, ref = _names(curve), curve["reference"]
        what = curve["points"][0]["memory"][ref]["what"] if curve["points"] else ""
        lines += [f"## {curve['title']}", "", f"Cells: {what}, ratio to {ref}; resident set (CPU); "
                  f"Python heap.",
                  "", f"| {curve['axis']} | " + " | ".join(names) + " |",
                  "|---|" + "---|" * len(names)]
        for p in curve["points"]:
            base = p["memory"][ref]["device_bytes"]
            cells = []
            for n in names:
                m = p["memory"][n]
                d = m["device_bytes"]
                ratio = (f" ({d / base:.2f}x)" if n != ref and d is not None and base
                         else "")
                rss = m.get("resident_bytes")
                rss = f"; rss {_bytes(rss)}" if rss is not None else ""
                bound = "" if m.get("exact", True) else "<= "
                cells.append(f"{bound}{_bytes(d)}{ratio}{rss}; py {_bytes(m['python_bytes'])}")
            lines.append(f"| {p['size']} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def build_markdown(curves: Dict[str, Dict], meta: Dict) -> str:
    """``scaling_build.md``: building each implementation, and its first step, against the
    steady step time: costs paid once."""
    lines = ["# Plan building and the first step", "",
             "Paid once per model: building the implementation from its networks "
             "(`Model(...)` for pixyz_pyro, including building the joint with "
             "`functools.reduce`; `SVI(...)` for Pyro; the optimizer for hand-written "
             "code), then its first step (first-call validation, the plan, Pyro's first "
             "trace, the optimizer's state). Cells: build ms; first step ms; steady "
             "ms/step (median of the timed rounds).", ""] + _header(meta)
    for curve in curves.values():
        names = _names(curve)
        lines += [f"## {curve['title']}", "", f"| {curve['axis']} | " + " | ".join(names)
                  + " |", "|---|" + "---|" * len(names)]
        for p in curve["points"]:
            cells = [f"{_ms(p['build_s'][n])}; {_ms(p['first_step_s'][n])}; "
                     f"{_ms(p['timing'][n]['ms']['median'] / 1e3)}" for n in names]
            lines.append(f"| {p['size']} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
