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

**Loading** is all or nothing.  It reads with ``weights_only=True`` (no arbitrary
pickles), then validates the *whole* file against the model before it touches anything
(:func:`check_compatible`):

* the entries: exactly the ones :meth:`Model.save` writes (unknown ones are refused);
* every module state: its keys, and each tensor's layout (dense only), dtype and shape;
* every optimizer: its class, its groups and hyperparameters, and each parameter's state,
  entry for entry (:mod:`~pixyz_pyro.model.checkpoint_optim`);
* the counters ``step_count`` and ``skipped_steps``: non-negative ints;
* the generator states, each checked on a throwaway generator
  (:mod:`~pixyz_pyro.model.checkpoint_rng`).

The first problem found is raised as a :class:`~pixyz_pyro.errors.CheckpointError`
naming the entry.  Only then does :func:`apply_checkpoint` apply everything in one go;
should applying still fail (or be interrupted), it puts the previous state back, so the
model is either fully loaded or exactly as it was.

Training N steps, saving, loading in a new process and training M more gives the same
parameters, bit for bit, as N + M steps straight (the data order too, when batches are
drawn from the global RNG).
"""
import copy
import os
import tempfile
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union

import torch

from ..dist.distribution import Distribution
from ..errors import CheckpointError
from .checkpoint_optim import check_optimizer_state
from .checkpoint_rng import check_rng_state, rng_state, set_rng_state

#: What a checkpoint holds the state of, besides the distributions.
Saveable = Union[torch.nn.Module, torch.optim.Optimizer]

__all__ = ["FORMAT_VERSION", "atomic_save", "read_checkpoint", "check_compatible",
           "check_module_state", "check_optimizer_state", "check_rng_state",
           "apply_checkpoint", "rng_state", "set_rng_state"]

FORMAT_VERSION = 1
#: The entries every checkpoint has, and those it may have.
REQUIRED = ("format_version", "distributions", "optimizer", "rng", "step_count")
OPTIONAL = ("optimizer_class", "skipped_steps")


# --- files -------------------------------------------------------------------------------
def atomic_write(path: str, write: Callable, binary: bool = True, suffix: str = "") -> None:
    """``write(file)`` into a temporary file beside ``path``, fsync, then rename it over
    ``path`` and make the rename durable: ``path`` is the old file or the new one, never
    a half-written one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
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


def atomic_save(obj: Dict, path: str) -> None:
    """``torch.save`` to a temporary file, fsync, then rename over ``path``."""
    atomic_write(path, lambda f: torch.save(obj, f), suffix=".pt")


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
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path!r} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path!r} has format version {version}, newer than this pixyz_pyro reads "
            f"({FORMAT_VERSION}); upgrade pixyz_pyro to load it")
    for key in REQUIRED:
        if key not in ckpt:
            raise CheckpointError(f"{path!r} has no {key!r} entry; it is truncated or was "
                                  f"not written by Model.save")
    return ckpt




# --- validation ----------------------------------------------------------------------------


def extra_class_key(key: str) -> str:
    """The entry that records the class of an extra optimizer (``d_optimizer_class``)."""
    return f"{key}_class"


def _count_problem(value: object, name: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return ""
    return f"{name} {value!r} is not a count (a non-negative int)"


def check_module_state(module: torch.nn.Module, state: Any, what: str, path: str) -> None:
    """Raise unless ``state`` has exactly ``module``'s keys, and each tensor the model's
    layout (dense), dtype and shape."""
    ours = module.state_dict()
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path!r}: the state of {what} is not a state dict")
    if set(ours) != set(state):
        raise CheckpointError(
            f"{path!r} does not fit {what}: missing keys {sorted(set(ours) - set(state))}, "
            f"unexpected keys {sorted(map(str, set(state) - set(ours)))}; it is from a "
            f"different model")
    for k, v in ours.items():
        s = state[k]
        if not isinstance(v, torch.Tensor):  # extra state: the module checks it
            continue
        if not isinstance(s, torch.Tensor) or tuple(v.shape) != tuple(s.shape):
            got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
            raise CheckpointError(
                f"{path!r} does not fit {what}: {k} has shape {got} in the file, "
                f"{tuple(v.shape)} in the model; it is from a different model")
        if s.layout is not torch.strided or s.is_quantized:
            kind = "quantized" if s.is_quantized else str(s.layout).replace("torch.", "")
            raise CheckpointError(f"{path!r}: {what}: {k} is a {kind} tensor in the file; "
                                  f"only dense tensors load")
        if s.dtype != v.dtype:
            raise CheckpointError(f"{path!r} does not fit {what}: {k} has dtype "
                                  f"{s.dtype} in the file, {v.dtype} in the model")


def check_compatible(ckpt: Dict, distributions: Sequence[Distribution], path: str,
                     optimizer: Optional[torch.optim.Optimizer] = None,
                     extras: Optional[Mapping[str, Saveable]] = None) -> None:
    """Raise :class:`CheckpointError` unless everything in ``ckpt`` fits the model:
    the entries, the distributions, the optimizer, the extras, the counters and the
    generator states.  Changes nothing."""
    extras = dict(extras or {})
    allowed = set(REQUIRED) | set(OPTIONAL) | set(extras) | {
        extra_class_key(k) for k, v in extras.items() if isinstance(v, torch.optim.Optimizer)}
    unknown = sorted(str(k) for k in ckpt if k not in allowed)
    if unknown:
        raise CheckpointError(f"{path!r} has the entries {unknown}, which this model does "
                              f"not save; it is from a different model or was edited")
    states = ckpt["distributions"]
    if not isinstance(states, (list, tuple)) or not all(
            isinstance(e, (list, tuple)) and len(e) == 2 for e in states):
        raise CheckpointError(f"{path!r}: the 'distributions' entry is not a list of "
                              f"(name, state) pairs")
    saved = [t for t, _ in states]
    ours = [d.prob_text for d in distributions]
    if saved != ours:
        raise CheckpointError(f"{path!r} holds the distributions {saved}, this model has "
                              f"{ours}: it is from a different model")
    for d, (_, state) in zip(distributions, states):
        check_module_state(d, state, d.prob_text, path)
    for key in ("optimizer_class",) + tuple(extra_class_key(k) for k in extras):
        if key in ckpt and not isinstance(ckpt[key], str):
            raise CheckpointError(f"{path!r}: {key} {ckpt[key]!r} is not a class name")
    if optimizer is not None:
        check_optimizer_state(optimizer, ckpt["optimizer"], ckpt.get("optimizer_class"),
                              "the optimizer", path)
    for key, obj in extras.items():
        if key not in ckpt:
            raise CheckpointError(f"{path!r} has no {key!r} entry, which this model needs")
        if isinstance(obj, torch.optim.Optimizer):
            check_optimizer_state(obj, ckpt[key], ckpt.get(extra_class_key(key)), key, path)
        else:
            check_module_state(obj, ckpt[key], key, path)
    for key in ("step_count", "skipped_steps"):
        problem = _count_problem(ckpt.get(key, 0), key)
        if problem:
            raise CheckpointError(f"{path!r}: {problem}")
    check_rng_state(ckpt["rng"], path)


# --- applying ------------------------------------------------------------------------------
def _current(objects: Sequence[Saveable]) -> list:
    """Copies of the states of ``objects`` (modules and optimizers), to roll back to."""
    return [copy.deepcopy(o.state_dict()) for o in objects]


def apply_checkpoint(ckpt: Dict, distributions: Sequence[Distribution],
                     optimizer: torch.optim.Optimizer,
                     extras: Optional[Mapping[str, Saveable]] = None) -> None:
    """Apply a checkpoint that :func:`check_compatible` accepted: module states, optimizer
    states, then generator states, in one go.  If anything fails or is interrupted on
    the way, everything is put back as it was, and the error is re-raised."""
    extras = dict(extras or {})
    objects = list(distributions) + [optimizer] + list(extras.values())
    states = [s for _, s in ckpt["distributions"]] + [ckpt["optimizer"]] + \
        [ckpt[k] for k in extras]
    before, rng_before = _current(objects), rng_state()
    try:
        for obj, state in zip(objects, states):
            obj.load_state_dict(state)
        set_rng_state(ckpt["rng"])
    except BaseException:
        for obj, state in zip(objects, before):
            obj.load_state_dict(state)
        set_rng_state(rng_before)
        raise
