"""Instructions per step under Valgrind: ``python -m comparisons.instructions``.

On a shared VM wall-clock ratios of a few percent drown in noise (within one Table 1
cell the rounds spread by up to 0.27).  The number of instructions a step executes does
not: Valgrind's ``callgrind`` counts them, and with the hash seed fixed
(``PYTHONHASHSEED=0``, which the run sets: dict layouts follow it) two runs give the same
count to the instruction (with a random seed, counts vary by about 0.2 %, and so they do
between versions of the code, even in phases a change does not touch: compare ratios to
the same run's hand-written step).  It is a proxy (it does not see cache misses or memory
bandwidth, and a matrix product's count says nothing about its speed), but for the
overhead of Python and of small kernels, the part of a step a library adds, it is exact
and repeatable:

.. math::

    \\text{ratio} = \\frac{I(\\text{implementation})}{I(\\text{hand-written})}, \\qquad
    I = \\frac{\\text{instructions of } k \\text{ steps}}{k}.

The run re-executes this module under ``valgrind --tool=callgrind
--dump-before=getppid``: the child builds every implementation, warms each up, and then
calls ``os.getppid()`` (a libc call nothing else in a step makes) before each phase of
``k`` steps, so that callgrind writes one counter file per phase.  Measured, for the
deep Markov model of :mod:`comparisons.dmm` and the Table 1 VAE at one size: the
hand-written step, pixyz_pyro with the default validation and pixyz_pyro with
``validation("off")`` (what the checks cost).  Writes ``instructions.md`` and
``instructions.json`` to ``--out``.  Needs ``valgrind`` (``apt-get install valgrind``);
a run takes about six minutes on a 2-core VM.
"""
import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

#: The phases, in the order the child runs them: (model, implementation).
PHASES: Tuple[Tuple[str, str], ...] = (
    ("dmm", "hand-written loop"), ("dmm", "pixyz_pyro IterativeLoss"),
    ("dmm", "pixyz_pyro IterativeLoss, validation off"),
    ("vae", "hand-written PyTorch (BCE on probs)"), ("vae", "pixyz_pyro, analytic KL"),
    ("vae", "pixyz_pyro, analytic KL, validation off"),
    ("vae", "pixyz_pyro, Monte Carlo ELBO"))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m comparisons.instructions", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2, help="steps per phase (k)")
    ap.add_argument("--vae", default="10x400", help="the Table 1 size, z x h")
    ap.add_argument("--out", default="comparisons/results")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def _steps(args) -> Dict[Tuple[str, str], Tuple[Callable[[], None], Callable[[], object]]]:
    """Each phase's ``(step, context)`` by its name in :data:`PHASES`: the step to repeat
    and the context it runs in."""
    import torch

    import pixyz_pyro
    from comparisons import dmm
    from comparisons.table1 import IMPLEMENTATIONS, batches, reference_weights

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    impls, data = dmm.build()
    hand, ours = impls["hand-written loop"], impls["pixyz_pyro IterativeLoss"]
    z, h = (int(v) for v in args.vae.lower().split("x"))
    weights = reference_weights(z, h, 0)
    vae = {n: IMPLEMENTATIONS[n](weights, z, h) for n in ("torch", "pixyz", "pixyz_mc")}
    x = batches(1, 128, "cpu", 0)[0]
    on = contextlib.nullcontext
    off = lambda: pixyz_pyro.validation("off")  # noqa: E731 - a context factory
    steps = [(lambda: hand.step(data[0]), on), (lambda: ours.step(data[0]), on),
             (lambda: ours.step(data[0]), off), (lambda: vae["torch"].step(x), on),
             (lambda: vae["pixyz"].step(x), on), (lambda: vae["pixyz"].step(x), off),
             (lambda: vae["pixyz_mc"].step(x), on)]
    if len(steps) != len(PHASES):
        raise AssertionError(f"{len(steps)} steps for {len(PHASES)} phases")
    return dict(zip(PHASES, steps))


def child(args) -> None:
    """Warm every phase up, then run each phase's ``k`` steps after one ``getppid``, in
    the order of :data:`PHASES`."""
    steps = _steps(args)
    phases = [steps[name] for name in PHASES]
    for step, context in phases:
        with context():
            for _ in range(3):
                step()
    for step, context in phases:
        with context():
            os.getppid()  # callgrind dumps the counters here
            for _ in range(args.steps):
                step()
    os.getppid()


def totals(files: Sequence[Path]) -> List[int]:
    """The ``totals:`` line of each callgrind output file, in dump order: ``cg.PID.N``
    for the N-th dump, then ``cg.PID``, written at exit."""
    def order(p: Path) -> float:
        parts = p.name.split(".")
        return int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else float("inf")
    out = []
    for p in sorted(files, key=order):
        for line in p.read_text().splitlines():
            if line.startswith("totals:"):
                out.append(int(line.split()[1]))
                break
    return out


def per_step(counts: Sequence[int], steps: int) -> Dict[str, Dict[str, float]]:
    """Instructions per step of each phase and its ratio to its model's hand-written
    step, from the dumps' counts: the first dump is the start-up, one per phase follows
    (a last one may follow the phases: ignored)."""
    phases = counts[1:1 + len(PHASES)]
    if len(phases) != len(PHASES):
        raise ValueError(f"expected {len(PHASES)} phase dumps after the start-up, got "
                         f"{len(counts) - 1}")
    result: Dict[str, Dict[str, float]] = {}
    reference: Dict[str, float] = {}
    for (model, name), n in zip(PHASES, phases):
        i = n / steps
        reference.setdefault(model, i)  # each model's first phase is hand-written
        result[f"{model}: {name}"] = {"instructions": i, "ratio": i / reference[model]}
    return result


def markdown(result: Dict[str, Dict[str, float]], steps: int, vae: str) -> str:
    lines = ["# Instructions per step (callgrind)", "",
             f"{steps} steps per phase after 3 warm-up steps, 1 torch thread; the DMM of "
             f"`comparisons/dmm.py` (T = 50) and the Table 1 VAE at z x h = {vae}, batch "
             "128. Ratio to the same model's hand-written step.", "",
             "| model: implementation | instructions / step | ratio |", "|---|---|---|"]
    for name, r in result.items():
        lines.append(f"| {name} | {r['instructions'] / 1e6:.2f} M | {r['ratio']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    if args.child:
        child(args)
        return {}
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("comparisons.instructions needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="callgrind_") as tmp:
        command = [valgrind, "--tool=callgrind", "--dump-before=getppid",
                   f"--callgrind-out-file={tmp}/cg.%p", sys.executable, "-m",
                   "comparisons.instructions", "--child", "--steps", str(args.steps),
                   "--vae", args.vae]
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": os.pathsep.join(
            [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise SystemExit(f"valgrind failed ({done.returncode}):\n{done.stderr[-2000:]}")
        counts = totals(list(Path(tmp).glob("cg.*")))
    result = per_step(counts, args.steps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(result, args.steps, args.vae)
    (out / "instructions.md").write_text(text)
    (out / "instructions.json").write_text(json.dumps(
        {"steps": args.steps, "vae": args.vae, "phases": result}, indent=1))
    print(text)
    return result


if __name__ == "__main__":
    main()
