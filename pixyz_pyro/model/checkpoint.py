"""Atomic, validated checkpoints.

A checkpoint holds the distributions' state, the optimizer state, the RNG states, the
step count and a format version.  It is written to a temporary file in the same
folder, fsynced, then renamed over the target, so a crash mid-save never leaves a broken
file.  Loading checks the version and every name and shape before touching anything.
"""
import os
import random
import tempfile
from typing import Dict

import torch

from ..errors import CheckpointError

FORMAT_VERSION = 1


def rng_state() -> Dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np
        state["numpy"] = np.random.get_state()
    except ImportError:  # pragma: no cover
        pass
    return state


def set_rng_state(state: Dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        import numpy as np
        np.random.set_state(state["numpy"])


def atomic_save(obj: Dict, path: str) -> None:
    """``torch.save`` to a temporary file, fsync, then rename over ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_checkpoint(path: str) -> Dict:
    """Load and sanity-check a checkpoint file."""
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path!r}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means corruption
        raise CheckpointError(f"checkpoint {path!r} is truncated or corrupt "
                              f"({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise CheckpointError(f"{path!r} is not a pixyz_pyro checkpoint (no format_version)")
    if ckpt["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path!r} has format version {ckpt['format_version']}, newer than this "
            f"pixyz_pyro reads ({FORMAT_VERSION}); upgrade pixyz_pyro")
    return ckpt


def check_compatible(ckpt: Dict, distributions, path: str) -> None:
    """Raise unless every distribution's state in ``ckpt`` has our names and shapes."""
    states = ckpt.get("distributions", [])
    if len(states) != len(distributions):
        raise CheckpointError(f"{path!r} holds {len(states)} distributions, this model has "
                              f"{len(distributions)}: it is from a different model")
    for d, (text, state) in zip(distributions, states):
        ours = d.state_dict()
        if set(ours) != set(state):
            raise CheckpointError(
                f"{path!r} does not fit {d.prob_text} (saved as {text}): missing "
                f"{sorted(set(ours) - set(state))}, unexpected {sorted(set(state) - set(ours))}")
        for k, v in ours.items():
            if tuple(v.shape) != tuple(state[k].shape):
                raise CheckpointError(
                    f"{path!r} does not fit {d.prob_text}: {k} has shape "
                    f"{tuple(state[k].shape)} in the file, {tuple(v.shape)} in the model")
