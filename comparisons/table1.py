"""The paper's Table 1, side by side: ``python -m comparisons.table1``.

One VAE (:mod:`comparisons.vae`) in ten implementations by default, for z in {10, 30} and h in
{400, 2000}, batch 128, on binarised Fashion-MNIST (random binary images if the data
set is not installed).  For each size it

1. checks that every implementation computes the same objective: same weights, batch
   and noise, one training step each after a warm-up, losses equal to 1e-6 relative
   (hand-written PyTorch is the reference of the analytic-KL group, a hand-written Monte
   Carlo ELBO that of Pyro's ``Trace_ELBO`` group); it stops if they are not
   (``--tolerance``: on a GPU, summation orders differ between kernels, and 1e-4 is the
   honest bound there);
2. times the training steps interleaved in rounds (:mod:`comparisons.timing`).

Settings, and why:

* ``--threads 1`` (default): ``torch.set_num_threads``; two threads on small shared VMs
  stall unpredictably, which drowns the differences being measured;
* ``torch.set_flush_denormal(True)``: without it Adam on real data becomes 6-20x slower
  on x86 CPUs after a few hundred steps (denormal arithmetic), for every implementation;
* ``torch._inductor.config.fallback_random = True``: compiled graphs draw from the same
  generator as eager code, so that the compiled step passes the same-objective check;
* ``torch._dynamo.config.recompile_limit = 64``: torch's optimizers break the compiled
  graph inside ``step``, and the frames after the break (torch's own code, shared by every
  optimizer) keep at most 8 compiled versions by default, dead ones included; with three
  compiled implementations over four sizes, the later ones would silently step eagerly;
* Pyro's argument validation is off (``pyro.enable_validation(False)``), as pixyz_pyro
  validates once on the first call: both sides then pay only for the computation;
* glibc keeps freed memory (``mallopt``, see :mod:`comparisons.timing`; off with
  ``--no-malloc-tuning``): otherwise freeing and re-faulting 13 MB of gradients costs
  thousands of page faults per step at h=2000, unevenly across implementations.  The page
  faults per step are reported beside the times.

Outputs (``--out``, default ``comparisons/results``): ``table1.md``, ``table1.json`` and
``table1.png``; the Markdown and JSON are rewritten after each size, so that a run cut
short keeps the sizes it finished.  ``--quick`` runs tiny sizes in seconds (the tests use
it).
"""
import argparse
import platform
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pyro
import torch

from . import report
from .device import TOLERANCE, add_device_args, check_device, device_name
from .timing import interleaved, keep_freed_memory, load_average, summarise
from .vae import (
    TorchBCE,
    TorchCompiled,
    TorchCudaGraphs,
    TorchFused,
    TorchLogits,
    mc_reference,
    reference_weights,
)
from .vae_pixyz import (
    PixyzAnalytic,
    PixyzCompiled,
    PixyzCudaGraphs,
    PixyzDeferred,
    PixyzMC,
    PixyzRewritten,
)
from .vae_pyro import PixyzSVI, PyroJit, PyroSVI

IMPLEMENTATIONS = {c.name: c for c in (TorchBCE, TorchLogits, PyroSVI, PyroJit, PixyzAnalytic,
                                       PixyzMC, PixyzRewritten, PixyzSVI, PixyzCompiled,
                                       TorchCompiled, TorchCudaGraphs, PixyzCudaGraphs,
                                       TorchFused, PixyzDeferred)}
#: What runs by default: the paper's comparison and ours, with the compiled Model beside
#: the same networks compiled by hand; on a GPU also CUDA graphs, by hand and through
#: ``Model(compile="reduce-overhead")``, and ``Model(check_every=16)`` beside the same
#: hand-written step with a fused Adam (on a CPU: ``--impls ...,torch_fused,pixyz_deferred``).
DEFAULT_IMPLS = ("torch", "torch_logits", "pyro", "pyro_jit", "pixyz", "pixyz_mc",
                 "pixyz_rewritten", "pixyz_svi", "pixyz_compile", "torch_compile")
CUDA_IMPLS = ("torch_cudagraphs", "pixyz_cudagraphs", "torch_fused", "pixyz_deferred")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m comparisons.table1", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--rounds", type=int, default=12, help="timed rounds (default 12)")
    ap.add_argument("--steps", type=int, default=8, help="steps per block (default 8)")
    ap.add_argument("--warmup", type=int, default=5, help="discarded steps (default 5)")
    ap.add_argument("--configs", default="10x400,30x400,10x2000,30x2000",
                    help="comma-separated ZxH sizes (default: the paper's four)")
    ap.add_argument("--impls", default=None,
                    help=f"comma-separated implementations of {list(IMPLEMENTATIONS)} "
                         f"(default: {', '.join(DEFAULT_IMPLS)}; on cuda also "
                         f"{', '.join(CUDA_IMPLS)})")
    ap.add_argument("--batch-size", type=int, default=128)
    add_device_args(ap)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="comparisons/results")
    ap.add_argument("--no-plot", action="store_true", help="skip the PNG chart")
    ap.add_argument("--no-malloc-tuning", action="store_true",
                    help="let glibc return freed memory to the OS (page faults every step)")
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes, 2 rounds of 2 steps (a smoke test, not a measurement)")
    args = ap.parse_args(argv)
    check_device(ap, args)
    if args.impls is None:
        args.impls = ",".join(DEFAULT_IMPLS + (CUDA_IMPLS if args.device == "cuda" else ()))
    if args.quick:
        args.configs, args.batch_size = "2x8", 16
        args.rounds, args.steps, args.warmup = 2, 2, 1
    return args


def batches(n: int, batch_size: int, device: str, seed: int) -> List[torch.Tensor]:
    """``n`` batches of binarised images (pixel > 0.5)."""
    try:
        from examples.data import load_dataset
        x, _ = load_dataset("fashion-mnist", "train", limit=n * batch_size)
    except Exception:  # noqa: BLE001 - no data set installed: random binary images
        x = torch.rand(n * batch_size, 784, generator=torch.Generator().manual_seed(seed))
    x = (x > 0.5).float().to(device)
    return [x[i * batch_size:(i + 1) * batch_size] for i in range(n)]


def check_objective(impls: Dict, weights: Dict, z: int, h: int, warm: torch.Tensor,
                    x: torch.Tensor, seed: int, tolerance: float = TOLERANCE
                    ) -> Dict[str, Dict]:
    """One step of each implementation from the same weights, batch and seed, after a
    warm-up step (which traces, compiles and creates optimizer state)."""
    losses = {name: _checked_step(impl, weights, warm, x, seed) for name, impl in impls.items()}
    torch_ref = impls["torch"] if "torch" in impls else TorchBCE(weights, z, h,
                                                                  device=x.device)
    refs = {"analytic": losses["torch"] if "torch" in losses else
            _checked_step(torch_ref, weights, warm, x, seed),
            "mc": mc_reference(weights, z, h, x, seed)}
    out = {}
    for name, impl in impls.items():
        ref = refs[impl.group]
        rel = abs(losses[name] - ref) / abs(ref)
        out[name] = {"group": impl.group, "loss": losses[name], "reference": ref,
                     "relative": rel, "ok": rel <= tolerance}
    return out


def _checked_step(impl, weights: Dict, warm: torch.Tensor, x: torch.Tensor,
                  seed: int) -> float:
    impl.step(warm)
    impl.load(weights)
    torch.manual_seed(seed)
    loss = impl.step(x)
    impl.load(weights)
    return loss


def run_config(args, z: int, h: int, names: List[str]) -> Dict:
    weights = reference_weights(z, h, args.seed)
    impls = {n: IMPLEMENTATIONS[n](weights, z, h, device=args.device) for n in names}
    data = batches(max(4, args.steps), args.batch_size, args.device, args.seed)
    check = check_objective(impls, weights, z, h, data[0], data[1], args.seed + 1,
                            args.tolerance)
    print(report._check_table(check), flush=True)
    bad = [n for n, c in check.items() if not c["ok"]]
    if bad:
        raise SystemExit(f"z={z}, h={h}: {bad} do not compute the same objective "
                         f"(tolerance {args.tolerance:g} relative); not timing them")
    faults: Dict[str, List[float]] = {}
    samples = interleaved({n: i.step for n, i in impls.items()}, data, args.rounds,
                          args.steps, args.warmup, faults)
    ref = "torch" if "torch" in samples else names[0]
    timing = summarise(samples, ref)
    for n, row in timing.items():
        row["label"] = impls[n].label
        row["faults_per_step"] = sorted(faults[n])[len(faults[n]) // 2]
    targets = {}
    for label, (name, ref_name, limit) in report.TARGETS.items():
        if name in samples and ref_name in samples:
            ratio = summarise({name: samples[name], ref_name: samples[ref_name]},
                              ref_name)[name]["ratio"]["median"]
            targets[label] = {"impl": name, "reference": ref_name, "limit": limit,
                              "ratio": ratio, "met": ratio <= limit}
    return {"z": z, "h": h, "check": check, "timing": timing, "targets": targets}


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch._inductor.config.fallback_random = True
    torch._dynamo.config.recompile_limit = 64  # see the module docstring
    pyro.enable_validation(False)
    kept = keep_freed_memory() if not args.no_malloc_tuning else False
    names = [n.strip() for n in args.impls.split(",") if n.strip()]
    unknown = sorted(set(names) - set(IMPLEMENTATIONS))
    if unknown:
        raise SystemExit(f"unknown implementations {unknown}; choose from "
                         f"{list(IMPLEMENTATIONS)}")
    meta = {"machine": f"{platform.processor() or platform.machine()} "
                       f"({platform.system()}, Python {platform.python_version()})",
            "torch": torch.__version__, "pyro": pyro.__version__,
            "threads": torch.get_num_threads(), "flush_denormal": True,
            "keep_freed_memory": kept,
            "device": device_name(args.device), "tolerance": args.tolerance,
            "batch_size": args.batch_size, "rounds": args.rounds,
            "steps": args.steps, "warmup": args.warmup, "load_before": load_average(),
            "argv": list(sys.argv[1:] if argv is None else argv)}
    result = {"meta": meta, "configs": []}
    for spec in args.configs.split(","):
        z, h = (int(v) for v in spec.lower().split("x"))
        print(f"== z={z}, h={h} (load {load_average()})", flush=True)
        result["configs"].append(run_config(args, z, h, names))
        meta["load_after"] = load_average()
        if args.device == "cuda":  # graphs that CUDA graphs could not take (logged by torch)
            from torch._dynamo.utils import counters  # loaded by the compiled steps
            meta["cudagraph_skips"] = counters["inductor"]["cudagraph_skips"]
        report.write(result, Path(args.out), plot=False)
    paths = report.write(result, Path(args.out), plot=not args.no_plot)
    print(report.markdown(result))
    print("wrote " + ", ".join(str(p) for p in paths))
    return result


if __name__ == "__main__":
    main()
