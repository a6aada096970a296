"""What every example script shares: flags, seeding, progress bars, logging, pictures.

Each example calls :func:`example_parser` for the common flags, :func:`setup` to seed
and configure torch, :func:`progress` for a tqdm bar and :class:`Logger` for per-term
curves (TensorBoard when ``--tensorboard`` is given and installed).  Real grey-level
pixels in [0, 1] are scored with Pixyz's Bernoulli semantics (binary cross-entropy).
"""
import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch


def example_parser(description: str, epochs: int = 5, batch_size: int = 128,
                   lr: float = 1e-3) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the flags every example takes."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--batch-size", type=int, default=batch_size)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--out", type=str, default=None, help="output folder for pictures")
    ap.add_argument("--dataset", type=str, default="fashion-mnist",
                    choices=["fashion-mnist", "mnist-5k"])
    ap.add_argument("--data-dir", type=str, default=None,
                    help="folder of the IDX .gz files (or set PIXYZ_PYRO_DATA)")
    ap.add_argument("--limit", type=int, default=None, help="use only N training images")
    ap.add_argument("--test-limit", type=int, default=None, help="use only N test images")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="stop after N optimisation steps (smoke tests)")
    ap.add_argument("--no-progress", action="store_true", help="hide progress bars")
    ap.add_argument("--tensorboard", action="store_true", help="log curves to TensorBoard")
    ap.add_argument("--device", type=str, default="cpu")
    return ap


def setup(args: argparse.Namespace, name: str) -> Path:
    """Seed, set threads and flush denormals; return the output folder."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(max(1, args.threads))
    torch.set_flush_denormal(True)  # Adam on real data slows 6-20x without it on x86
    out = Path(args.out or f"out/{name}")
    out.mkdir(parents=True, exist_ok=True)
    return out


def progress(iterable, args: argparse.Namespace, **kwargs):
    """A tqdm progress bar (plain iteration with ``--no-progress`` or without tqdm)."""
    if getattr(args, "no_progress", False):
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, **kwargs)


class Logger:
    """Per-epoch curves in memory, as JSON, and optionally in TensorBoard."""

    def __init__(self, out: Path, tensorboard: bool = False):
        self.out = Path(out)
        self.curves: Dict[str, List[float]] = {}
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.writer = SummaryWriter(str(self.out / "tensorboard"))
            except ImportError:
                print("tensorboard is not installed; curves go to metrics.json only")

    def log(self, step: int, **values: float) -> None:
        for k, v in values.items():
            self.curves.setdefault(k, []).append(float(v))
            if self.writer is not None:
                self.writer.add_scalar(k, float(v), step)

    def save(self, extra: Optional[Dict] = None) -> Path:
        if self.writer is not None:
            self.writer.flush()
        path = self.out / "metrics.json"
        path.write_text(json.dumps({"curves": self.curves, **(extra or {})}, indent=2))
        return path


def stop_early(args: argparse.Namespace, step: int) -> bool:
    """True once ``--max-steps`` optimisation steps are done."""
    return args.max_steps is not None and step >= args.max_steps


def parse(ap: argparse.ArgumentParser, argv: Optional[Sequence[str]]) -> argparse.Namespace:
    return ap.parse_args(list(argv) if argv is not None else None)
