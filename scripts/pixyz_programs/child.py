"""Run one prepared program (``python child.py PROGRAM.py [ARGS...]``) against pixyz_pyro.

The program's ``pixyz`` imports are served by pixyz_pyro and its data sets and logging
tools by offline stand-ins (:mod:`offline`).  DataLoaders run in the process
(``num_workers=0``), figures are drawn with the Agg backend and never shown.  At the end
it prints one line ``PIXYZ_PROGRAM_END {json}`` with the program's last loss values.
"""
import json
import math
import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _prepare() -> None:
    sys.path.insert(0, HERE)
    import importlib.util

    import offline
    offline.install(torchvision=importlib.util.find_spec("torchvision") is None)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.show = lambda *args, **kwargs: None
    plt.pause = lambda *args, **kwargs: None

    import torch
    torch.set_num_threads(1)
    base = torch.utils.data.DataLoader

    class InProcessLoader(base):
        def __init__(self, *args, **kwargs):
            kwargs["num_workers"] = 0
            kwargs["pin_memory"] = False
            kwargs.pop("prefetch_factor", None)
            kwargs.pop("persistent_workers", None)
            super().__init__(*args, **kwargs)

    torch.utils.data.DataLoader = InProcessLoader
    torch.utils.data.dataloader.DataLoader = InProcessLoader


def _losses(namespace) -> dict:
    """The program's scalar globals whose names say loss, as floats."""
    import torch
    out = {}
    for k, v in namespace.items():
        if "loss" not in k.lower() or k.startswith("_"):
            continue
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            out[k] = float(v.detach())
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = float(v)
    return out


def main() -> None:
    program, args = sys.argv[1], sys.argv[2:]
    _prepare()
    sys.argv = [program] + args
    sys.path.insert(0, os.path.dirname(os.path.abspath(program)))
    namespace = runpy.run_path(program, run_name="__main__")
    losses = _losses(namespace)
    finite = all(math.isfinite(v) for v in losses.values())
    print("PIXYZ_PROGRAM_END " + json.dumps({"losses": losses, "finite": finite}), flush=True)


if __name__ == "__main__":
    main()
