"""Atomic, validated checkpoints.

A checkpoint is a dict of plain data and tensors:

* ``format_version`` (:data:`FORMAT_VERSION`);
* ``distributions``: ``[(prob_text, state_dict), ...]`` in the model's order;
* ``optimizer`` and ``optimizer_class``;
* ``rng``: the torch, Python and NumPy (and CUDA, if used) generator states;
* ``step_count`` and ``skipped_steps``;
* any extra modules or optimizers of a preset (the GAN's discriminator).

**Saving** writes a temporary file in the target's folder, flushes and fsyncs it, then
renames it over the target (``os.replace`` is atomic), so a crash mid-save leaves the
previous checkpoint intact.

**Loading** reads with ``weights_only=True`` (no arbitrary pickles), then checks the
version and every name and shape -- distributions, optimizer state, RNG states -- before
it touches anything; only then does it apply them.  Training N steps, saving, loading
in a new process and training M more gives the same parameters, bit for bit, as N + M
steps straight (the data order too, when batches are drawn from the global RNG).
"""
import os
import random
import tempfile
from typing import Dict, Mapping

import torch

from ..errors import CheckpointError

FORMAT_VERSION = 1


# --- RNG states ------------------------------------------------------------------------
def rng_state() -> Dict:
    """The torch, Python, NumPy (and CUDA, if initialised) generator states, as tensors
    and plain data."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with torch
        return state
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state["numpy"] = (name, torch.from_numpy(keys.astype("int64")), int(pos),
                      int(has_gauss), float(cached))
    return state


def check_rng_state(state, path: str) -> None:
    """Raise :class:`CheckpointError` unless ``state`` can be restored."""
    ours = torch.get_rng_state()
    t = state.get("torch") if isinstance(state, Mapping) else None
    if not isinstance(t, torch.Tensor) or t.dtype != ours.dtype or t.shape != ours.shape:
        raise CheckpointError(f"{path!r}: the torch RNG state is missing or malformed "
                              f"(expected a {ours.dtype} tensor of shape {tuple(ours.shape)})")
    try:
        random.Random().setstate(state["python"])
    except Exception as e:  # noqa: BLE001 - any failure means a malformed state
        raise CheckpointError(f"{path!r}: the Python RNG state is malformed ({e})") from None
    if "numpy" in state:
        np_state = state["numpy"]
        if not (isinstance(np_state, (tuple, list)) and len(np_state) == 5
                and isinstance(np_state[1], torch.Tensor) and np_state[1].numel() == 624):
            raise CheckpointError(f"{path!r}: the NumPy RNG state is malformed")


def set_rng_state(state: Dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        import numpy as np
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


# --- files -------------------------------------------------------------------------------
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
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(dir_fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dir_fd)


def _cause(error: Exception) -> str:
    """The informative line of a ``torch.load`` error."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if ln.endswith("WeightsUnpickler error:") and i + 1 < len(lines):
            return lines[i + 1]
    return lines[0].split(". ")[0] if lines else ""


def read_checkpoint(path: str) -> Dict:
    """Load a checkpoint file and check its format version."""
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path!r}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means corruption
        if "Unsupported global" in str(e):
            raise CheckpointError(
                f"{path!r} holds objects other than tensors and plain data; it is not a "
                f"pixyz_pyro checkpoint (refused: unpickling it could run code)") from None
        raise CheckpointError(f"checkpoint {path!r} is truncated or corrupt "
                              f"({type(e).__name__}: {_cause(e)})") from None
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise CheckpointError(f"{path!r} is not a pixyz_pyro checkpoint (no format_version)")
    version = ckpt["format_version"]
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path!r} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path!r} has format version {version}, newer than this pixyz_pyro reads "
            f"({FORMAT_VERSION}); upgrade pixyz_pyro to load it")
    for key in ("distributions", "optimizer", "rng", "step_count"):
        if key not in ckpt:
            raise CheckpointError(f"{path!r} has no {key!r} entry; it is truncated or was "
                                  f"not written by Model.save")
    return ckpt


# --- validation ----------------------------------------------------------------------------
def check_module_state(module: torch.nn.Module, state, what: str, path: str) -> None:
    """Raise unless ``state`` has exactly ``module``'s keys and shapes."""
    ours = module.state_dict()
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path!r}: the state of {what} is not a state dict")
    if set(ours) != set(state):
        raise CheckpointError(
            f"{path!r} does not fit {what}: missing keys {sorted(set(ours) - set(state))}, "
            f"unexpected keys {sorted(set(state) - set(ours))}; it is from a different model")
    for k, v in ours.items():
        s = state[k]
        if not isinstance(s, torch.Tensor) or tuple(v.shape) != tuple(s.shape):
            got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
            raise CheckpointError(
                f"{path!r} does not fit {what}: {k} has shape {got} in the file, "
                f"{tuple(v.shape)} in the model; it is from a different model")


def check_optimizer_state(optimizer: torch.optim.Optimizer, state, saved_class, what: str,
                          path: str) -> None:
    """Raise unless ``state`` is a state of ``optimizer``'s class over parameters of the
    same shapes, group by group."""
    name = type(optimizer).__name__
    if saved_class is not None and saved_class != name:
        raise CheckpointError(f"{path!r}: {what} was {saved_class} in the file, {name} in "
                              f"the model")
    if not isinstance(state, Mapping) or "param_groups" not in state or "state" not in state:
        raise CheckpointError(f"{path!r}: {what} is not an optimizer state dict")
    groups, ours = state["param_groups"], optimizer.param_groups
    sizes = [len(g["params"]) for g in groups]
    our_sizes = [len(g["params"]) for g in ours]
    if sizes != our_sizes:
        raise CheckpointError(f"{path!r}: {what} has parameter groups of sizes {sizes} in "
                              f"the file, {our_sizes} in the model ({name})")
    for g, og in zip(groups, ours):
        for pid, p in zip(g["params"], og["params"]):
            for k, t in state["state"].get(pid, {}).items():
                if isinstance(t, torch.Tensor) and t.dim() > 0 and t.shape != p.shape:
                    raise CheckpointError(
                        f"{path!r}: {what} state {k!r} has shape {tuple(t.shape)} in the "
                        f"file, but its parameter has shape {tuple(p.shape)} in the model")


def check_compatible(ckpt: Dict, distributions, path: str, optimizer=None,
                     extras: Mapping[str, object] = None) -> None:
    """Raise :class:`CheckpointError` unless everything in ``ckpt`` fits the model:
    the distributions (names, keys, shapes), the optimizer, the extras and the RNG."""
    states = ckpt.get("distributions", [])
    saved = [t for t, _ in states]
    ours = [d.prob_text for d in distributions]
    if len(states) != len(distributions) or saved != ours:
        raise CheckpointError(f"{path!r} holds the distributions {saved}, this model has "
                              f"{ours}: it is from a different model")
    for d, (_, state) in zip(distributions, states):
        check_module_state(d, state, d.prob_text, path)
    if optimizer is not None:
        check_optimizer_state(optimizer, ckpt["optimizer"], ckpt.get("optimizer_class"),
                              "the optimizer", path)
    for key, obj in (extras or {}).items():
        if key not in ckpt:
            raise CheckpointError(f"{path!r} has no {key!r} entry, which this model needs")
        if isinstance(obj, torch.optim.Optimizer):
            check_optimizer_state(obj, ckpt[key], None, key, path)
        else:
            check_module_state(obj, ckpt[key], key, path)
    check_rng_state(ckpt["rng"], path)
    if not isinstance(ckpt["step_count"], int) or ckpt["step_count"] < 0:
        raise CheckpointError(f"{path!r}: step_count {ckpt['step_count']!r} is not a count")
