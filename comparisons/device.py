"""``--device`` and ``--tolerance``, shared by :mod:`comparisons.table1` and
:mod:`comparisons.extras`.

On a GPU the kernels sum in other orders than eager CPU code, so the same-objective checks
take ``--tolerance 1e-4`` there (the H200 run measured at most 2.2e-7).
"""
import argparse

import torch

#: Relative difference allowed by default in a same-objective check.
TOLERANCE = 1e-6


def add_device_args(ap: argparse.ArgumentParser) -> None:
    """Add ``--device {cpu,cuda}`` and ``--tolerance`` to ``ap``."""
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--tolerance", type=float, default=TOLERANCE,
                    help=f"relative difference allowed in the same-objective check "
                         f"(default {TOLERANCE:g})")


def check_device(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a usage error if ``--device cuda`` was asked for without CUDA."""
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: torch sees no CUDA device here")


def device_name(device: str) -> str:
    """``"cpu"``, or ``"cuda (<the GPU's name>)"`` for the report."""
    if device == "cuda":
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return device
