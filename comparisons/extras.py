"""More than the VAE: ``python -m comparisons.extras``.

1. A deep Markov model with ``IterativeLoss`` over T = 50 steps against the same loop
   written by hand (:mod:`comparisons.dmm`), eagerly and with ``Model(compile=True)``
   (``--no-compile`` skips that one): same objective first, then interleaved timing;
   target <= 1.05x for the eager one (issue 19).  A third row runs the eager one with
   validation off: not a figure to compare by, but what the default checks cost.
2. Formula cost (:mod:`comparisons.formula`): building a 50-term loss (target < 10 ms)
   and printing it (target < 1 s).
3. Scaling (:mod:`comparisons.scaling`): per-step overhead in ms against the number of
   factors in a joint, K in {1, 4, 16, 64}.

Same settings as Table 1 (``--threads 1``, flush denormal, glibc keeps freed memory;
``--device cuda`` runs the DMM and the scaling on the GPU, where ``--tolerance 1e-4`` is
the honest bound of the same-objective check).
Writes ``extras.md`` and ``extras.json`` to ``--out``.  Reported, never asserted.
"""
import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch

from . import dmm, formula, report, scaling
from .device import add_device_args, check_device, device_name
from .timing import interleaved, keep_freed_memory, load_average, summarise


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m comparisons.extras", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=5)
    add_device_args(ap)
    ap.add_argument("--out", default="comparisons/results")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    ap.add_argument("--no-compile", action="store_true",
                    help="skip the compiled DMM (its compilation takes a minute or two)")
    ap.add_argument("--cold-cache", action="store_true",
                    help="compile with an empty Inductor cache (a temporary folder): the "
                         "compile time a new machine pays")
    args = ap.parse_args(argv)
    check_device(ap, args)
    return args


def vector_isa_probe() -> Optional[float]:
    """Seconds Inductor takes to probe this CPU's vector instructions (AVX2, AVX-512 and
    its extensions, AMX), by compiling a test program for each: once per machine, for the
    first ``torch.compile`` of anything, after which the results are read from Inductor's
    cache.  With ``--cold-cache`` it is timed apart, so that the DMM's compile time is its
    own.  ``None`` where this torch has no such probe (an internal function)."""
    try:
        from torch._inductor import cpu_vec_isa
    except ImportError:  # pragma: no cover - another torch layout
        return None
    probe = getattr(cpu_vec_isa, "valid_vec_isa_list", None)
    if probe is None:  # pragma: no cover
        return None
    start = time.perf_counter()
    probe()
    return time.perf_counter() - start


def run_dmm(args) -> Dict:
    t = 5 if args.quick else 50
    compiled = not (args.quick or args.no_compile)
    probe_s = vector_isa_probe() if compiled and args.device == "cpu" else None
    impls, data = dmm.build(steps=t, batch=4 if args.quick else 16, device=args.device,
                            compiled=compiled, unchecked=True)
    compile_s = dmm.warm_compiled(impls[dmm.COMPILED], data) if compiled else None
    losses = dmm.same_objective(impls, data)
    ref = losses["hand-written loop"]
    rel = max(abs(v - ref) / abs(ref) for v in losses.values())
    if rel > args.tolerance:
        raise SystemExit(f"DMM: the objectives differ ({losses}, relative {rel:.2e})")
    samples = interleaved({n: i.step for n, i in impls.items()}, data,
                          2 if args.quick else args.rounds, 1 if args.quick else args.steps,
                          warmup=1 if args.quick else 3)
    stats = summarise(samples, "hand-written loop")
    return {"T": t, "losses": losses, "relative": rel, "compile_s": compile_s,
            "isa_probe_s": probe_s,
            "timing": {n: {"ms": s["ms"], "ratio": s["ratio"]} for n, s in stats.items()},
            "target": 1.05}


def compile_sentence(d: Dict, cold: bool) -> str:
    """What the DMM's first compile took, for :func:`markdown` (empty when not compiled):
    with an empty cache, apart from Inductor's probe of the vector instructions."""
    if not d.get("compile_s"):
        return ""
    text = (f" Compiling the step (one step body, reused at every step) took "
            f"{d['compile_s']:.0f} s")
    if not cold:
        return text + " (less when Inductor's on-disk cache already holds the kernels)."
    text += " with an empty Inductor cache"
    probe = d.get("isa_probe_s")
    if probe:
        text += (f", after Inductor's probe of this CPU's vector instructions ({probe:.0f} s:"
                 f" a test compile per instruction set, once per machine for any first "
                 f"torch.compile, then read from its cache; {d['compile_s'] + probe:.0f} s "
                 f"in all)")
    return text + "."


def markdown(result: Dict) -> str:
    d, f = result["dmm"], result["formula"]
    ratio = d["timing"]["pixyz_pyro IterativeLoss"]["ratio"]
    lines = ["# More than the VAE", "",
             f"{result['threads']} torch thread(s); device {result.get('device', 'cpu')}; "
             f"load before {result['load_before']}, after {result['load_after']}.", "",
             f"## Deep Markov model, IterativeLoss over T={d['T']}", "",
             f"Same objective: {d['losses']} (relative difference {d['relative']:.1e}).", "",
             "| implementation | ms/step, median [IQR] | ratio, median [quartiles] |",
             "|---|---|---|"]
    for name, s in d["timing"].items():
        q, r = s["ms"], s["ratio"]
        lines.append(f"| {name} | {q['median']:.2f} [{q['q1']:.2f}-{q['q3']:.2f}] | "
                     f"{r['median']:.3f} [{r['q1']:.3f}-{r['q3']:.3f}] |")
    unchecked = d["timing"].get(dmm.UNCHECKED)
    lines += ["", f"Target <= {d['target']:.2f}x: {ratio['median']:.3f} "
              f"{'met' if ratio['median'] <= d['target'] else '**not met**'} (with the "
              f"default validation, as the target asks)."
              + (f" With validation off the same step is {unchecked['ratio']['median']:.3f}x:"
                 f" the checks of every step's parameters, values and supports cost the "
                 f"difference, the library's own Python the rest." if unchecked else "")
              + compile_sentence(d, result.get("cold_cache", False)), "",
              "## Formula cost", "",
              f"Building a {f['terms']}-term loss: {f['build_s'] * 1e3:.2f} ms (target < 10 "
              f"ms); printing it: {f['first_print_s']:.3f} s the first time in a fresh "
              f"process (sympy imported then), {f['print_s']:.3f} s again (target < 1 s); "
              f"{f['characters']} characters.", "",
              "## Per-step overhead against the number of factors", "",
              "| factors | hand-written ms/step | pixyz_pyro ms/step | overhead ms | "
              "per factor us | ratio |", "|---|---|---|---|---|---|"]
    for r in result["scaling"]:
        lines.append(f"| {r['factors']} | {r['handwritten_ms']:.3f} | {r['pixyz_ms']:.3f} | "
                     f"{r['overhead_ms']:.3f} | {r['overhead_per_factor_us']:.1f} | "
                     f"{r['ratio']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    if args.cold_cache:  # read by Inductor when it first compiles, below
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-cold-")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch._inductor.config.fallback_random = True  # compiled draws = eager draws
    keep_freed_memory()
    result = {"threads": torch.get_num_threads(), "device": device_name(args.device),
              "load_before": load_average(), "cold_cache": args.cold_cache}
    result["dmm"] = run_dmm(args)
    result["formula"] = formula.measure(50, 3 if args.quick else 20)
    result["scaling"] = scaling.measure(
        ks=(1, 4) if args.quick else (1, 4, 16, 64), rounds=2 if args.quick else args.rounds,
        steps=2 if args.quick else 20, device=args.device)
    result["load_after"] = load_average()
    text = markdown(result)
    paths = report.save(result, text, Path(args.out), "extras")
    print(text)
    print(f"wrote {', '.join(map(str, paths))}")
    return result


if __name__ == "__main__":
    main()
