"""Pyro's own vae.py, wrapped with ``from_pyro``: ``python -m comparisons.pyro_bridge``.

The model and guide are Pyro's ``examples/vae/vae.py`` exactly as they are (the copy
pinned in ``tests/pyro_examples/vae.py``: 784 pixels, ``z_dim=50``, ``hidden_dim=400``,
batch 128 by default), trained three ways from copies of the same weights:

* ``pyro``: Pyro's own ``SVI(vae.model, vae.guide, Adam, Trace_ELBO())``, the reference;
* ``pixyz``: ``Model(-ELBO(p, q).sum())`` with ``p = from_pyro(vae.model, ...)`` and
  ``q = from_pyro(vae.guide, ...)`` (the direct executor; each step runs the guide once
  and the model once, as Trace_ELBO does);
* ``pixyz_svi``: Pyro's SVI with ``loss=SVILoss(-ELBO(p, q).sum())``, which maps the loss
  to ``Trace_ELBO`` and runs it on the same two functions.

**Same objective first.** After ``torch.manual_seed(s)`` each takes one step on the same
batch; the three losses must agree to ``--tolerance`` (relative), else the run stops.
Then ``pyro`` and ``pixyz`` are timed (vae.py's fixed names in Pyro's global store keep
a second SVI out of the same process: ``pixyz_svi`` is checked, not timed).

**Timing.** As everywhere in ``comparisons/`` (:mod:`comparisons.timing`): interleaved
rounds in one process, the order rotated each round, warm-up steps discarded, one torch
thread (``--threads 1``), flush denormal, glibc keeping freed memory, Pyro's argument
validation off for every implementation (all three run Pyro distributions).  The ratio is
the median of the per-round ratios to ``pyro``, with its quartiles.

Writes ``pyro_bridge.md`` and ``pyro_bridge.json`` to ``--out``.  ``--quick`` runs tiny
sizes as a smoke test (its timings mean nothing).  Reported, never asserted.
"""
import argparse
import copy
import importlib.util
import platform
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO

from pixyz_pyro.infer import SVILoss, from_pyro
from pixyz_pyro.loss import ELBO
from pixyz_pyro.model import Model

from . import report
from .device import add_device_args, check_device, device_name
from .timing import interleaved, keep_freed_memory, load_average, summarise

PINNED = Path(__file__).resolve().parents[1] / "tests" / "pyro_examples" / "vae.py"
REFERENCE = "pyro"
LABELS = {"pyro": "Pyro SVI + Trace_ELBO on vae.py",
          "pixyz": "Model(from_pyro(vae.model), from_pyro(vae.guide))",
          "pixyz_svi": "Pyro SVI + SVILoss (mapped to Trace_ELBO)"}


def pinned_vae_module():
    """Pyro's vae.py as pinned in the tests (its classes, unchanged)."""
    spec = importlib.util.spec_from_file_location("comparisons_pinned_vae", PINNED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(z_dim: int, hidden_dim: int, lr: float, device: str, names=tuple(LABELS),
          seed: int = 0):
    """The implementations ``names`` on copies of one set of weights: ``{name: step(x)}``
    (each step returns the loss before its update, summed over the batch).

    vae.py registers its networks in Pyro's global store as "encoder" and "decoder", so
    two SVIs on two copies cannot share a process's store: ``pyro`` and ``pixyz_svi`` are
    never built together (``Model`` leaves the store alone, so ``pixyz`` goes with
    either)."""
    if {"pyro", "pixyz_svi"} <= set(names):
        raise ValueError("pyro and pixyz_svi share Pyro's store names; build them apart")
    vae_py = pinned_vae_module()
    torch.manual_seed(seed)
    base = vae_py.VAE(z_dim=z_dim, hidden_dim=hidden_dim).to(device)
    steps = {}
    for name in names:
        v = copy.deepcopy(base)
        if name == "pyro":
            steps[name] = SVI(v.model, v.guide, pyro.optim.Adam({"lr": lr}),
                              loss=Trace_ELBO()).step
            continue
        p = from_pyro(v.model, var=["x", "z"], sites={"z": "latent"})
        q = from_pyro(v.guide, var=["z"], sites={"z": "latent"}, name="q")
        if name == "pixyz":
            model = Model(-ELBO(p, q).sum(), distributions=[p, q],
                          optimizer=pyro.optim.Adam({"lr": lr}))
            steps[name] = lambda x, model=model: float(model.train({"x": x}))
        else:
            steps[name] = SVI(v.model, v.guide, pyro.optim.Adam({"lr": lr}),
                              loss=SVILoss(-ELBO(p, q).sum())).step
    return steps


def batches(n: int, size: int, device: str, seed: int = 0):
    """``n`` batches of binarised noise images (the timing does not depend on pixels)."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(size, 784, generator=g) > 0.5).float().to(device) for _ in range(n)]


def same_objective(z_dim, hidden_dim, device, x, tolerance: float) -> Dict:
    """One step of each from the same weights and seed (each with a fresh Pyro store):
    the losses, and the largest relative difference to ``pyro``."""
    losses = {}
    for name in LABELS:
        pyro.clear_param_store()
        (step,) = build(z_dim, hidden_dim, 1e-3, device, names=(name,)).values()
        torch.manual_seed(11)
        losses[name] = step(x)
    pyro.clear_param_store()
    ref = losses[REFERENCE]
    rel = max(abs(v - ref) / abs(ref) for v in losses.values())
    if rel > tolerance:
        raise SystemExit(f"pyro_bridge: the objectives differ ({losses}, relative {rel:.2e})")
    return {"losses": losses, "relative": rel}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m comparisons.pyro_bridge", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--z-dim", type=int, default=50)
    ap.add_argument("--hidden-dim", type=int, default=400)
    add_device_args(ap)
    ap.set_defaults(tolerance=1e-5)  # float32 sums over 784 x 128 pixels, in two orders
    ap.add_argument("--out", default="comparisons/results")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    args = ap.parse_args(argv)
    check_device(ap, args)
    if args.quick:
        args.rounds, args.steps, args.warmup = 2, 1, 1
        args.batch_size, args.z_dim, args.hidden_dim = 8, 3, 16
    return args


def markdown(result: Dict) -> str:
    m, c = result["meta"], result["check"]
    lines = ["# Pyro's vae.py: from_pyro against Pyro's own SVI", "",
             f"vae.py as it is (z_dim={m['z_dim']}, hidden_dim={m['hidden_dim']}), batch "
             f"{m['batch_size']}; {m['threads']} torch thread(s); device {m['device']}; "
             f"{m['rounds']} rounds of {m['steps']} steps after {m['warmup']} warm-up "
             f"steps; load before {m['load_before']}, after {result['load_after']}.", "",
             f"Same objective: {c['losses']} (largest relative difference "
             f"{c['relative']:.1e}).", "",
             "| implementation | ms/step, median [IQR] | ratio to Pyro, median [quartiles] |",
             "|---|---|---|"]
    for name, s in result["timing"].items():
        q, r = s["ms"], s["ratio"]
        lines.append(f"| {LABELS[name]} | {q['median']:.2f} [{q['q1']:.2f}-{q['q3']:.2f}] | "
                     f"{r['median']:.3f} [{r['q1']:.3f}-{r['q3']:.3f}] |")
    ratio = result["timing"]["pixyz"]["ratio"]["median"]
    lines += ["", f"Target: Model(from_pyro(...)) no slower than Pyro's SVI (<= 1.00x): "
              f"{ratio:.3f} {'met' if ratio <= 1.0 else '**not met**'}."]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    pyro.enable_validation(False)
    keep_freed_memory()
    meta = {"machine": f"{platform.processor() or platform.machine()} "
                       f"({platform.system()}, Python {platform.python_version()})",
            "torch": torch.__version__, "pyro": pyro.__version__,
            "threads": torch.get_num_threads(), "device": device_name(args.device),
            "batch_size": args.batch_size, "z_dim": args.z_dim,
            "hidden_dim": args.hidden_dim, "rounds": args.rounds, "steps": args.steps,
            "warmup": args.warmup, "load_before": load_average(),
            "argv": list(sys.argv[1:] if argv is None else argv)}
    data = batches(4, args.batch_size, args.device)
    check = same_objective(args.z_dim, args.hidden_dim, args.device, data[0], args.tolerance)
    steps = build(args.z_dim, args.hidden_dim, 1e-3, args.device, names=("pyro", "pixyz"))
    samples = interleaved(steps, data, args.rounds, args.steps, warmup=args.warmup)
    stats = summarise(samples, REFERENCE)
    pyro.clear_param_store()  # the reference SVI's entries
    result = {"meta": meta, "check": check, "timing": stats, "load_after": load_average()}
    text = markdown(result)
    paths = report.save(result, text, Path(args.out), "pyro_bridge")
    print(text)
    print(f"wrote {', '.join(map(str, paths))}")
    return result


if __name__ == "__main__":
    main()
