"""The random generators' states in a checkpoint: read, validate, restore.

A checkpoint's ``rng`` entry holds the states of the generators that a training run
draws from, as tensors and plain data (so that ``torch.load(weights_only=True)`` reads
them):

* ``torch``: ``torch.get_rng_state()``, a ``uint8`` tensor;
* ``python``: ``random.getstate()``, ``(3, (k_0, ..., k_623, pos), gauss)``;
* ``numpy``: ``(name, keys, pos, has_gauss, cached)`` of ``np.random.get_state()``, with
  the 624 Mersenne Twister keys as an ``int64`` tensor;
* ``cuda``: ``torch.cuda.get_rng_state_all()``, when CUDA was initialised.

Neither ``random.setstate`` nor NumPy checks a state fully: NumPy takes any position
(and then reads outside its key array), and both take the all-zero key, on which a
Mersenne Twister returns 0 forever.  :func:`check_rng_state` therefore checks each
state's structure and ranges itself, and then sets it on a throwaway generator, before
anything global changes.

Examples
--------
>>> state = rng_state()
>>> check_rng_state(state, "ckpt.pt")
>>> state["python"] = (3, (0,) * 624 + (624,), None)
>>> try:
...     check_rng_state(state, "ckpt.pt")
... except CheckpointError as e:
...     print(str(e).split(": ", 2)[2])
its 624 keys are all zero, a degenerate Mersenne Twister state)
"""
import math
import random
from typing import Any, Dict, Mapping

import torch

from ..errors import CheckpointError

#: The generators a checkpoint may hold states of.
KNOWN_GENERATORS = ("torch", "python", "numpy", "cuda")
_N = 624  # Mersenne Twister state size (Python and NumPy)


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
    state["numpy"] = (name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos),
                      int(has_gauss), float(cached))
    return state


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_dense(t: object) -> bool:
    return isinstance(t, torch.Tensor) and t.layout is torch.strided and not t.is_quantized


def _mt_keys_problem(keys: Any, what: str) -> str:
    """Why 624 Mersenne Twister keys are not a usable state ('' if they are)."""
    if len(keys) != _N:
        return f"{what}: expected {_N} keys, got {len(keys)}"
    if any(not 0 <= k < 2 ** 32 for k in keys):
        return f"{what}: a key lies outside [0, 2**32)"
    if not any(keys):
        return f"{what}: its {_N} keys are all zero, a degenerate Mersenne Twister state"
    return ""


def _python_problem(state: Any) -> str:
    if not (isinstance(state, (tuple, list)) and len(state) == 3 and state[0] == 3):
        return "rng['python'] is not a version-3 random.getstate() tuple"
    internal, gauss = state[1], state[2]
    if not (isinstance(internal, (tuple, list)) and len(internal) == _N + 1
            and all(_is_int(k) for k in internal)):
        return f"rng['python']: expected {_N} integer keys and a position"
    problem = _mt_keys_problem(internal[:_N], "rng['python']")
    if problem:
        return problem
    if not 0 <= internal[_N] <= _N:
        return f"rng['python']: position {internal[_N]} lies outside [0, {_N}]"
    if gauss is not None and not (isinstance(gauss, float) and math.isfinite(gauss)):
        return f"rng['python']: the cached Gaussian {gauss!r} is not a finite float or None"
    try:
        random.Random().setstate((3, tuple(internal), gauss))
    except Exception as e:  # noqa: BLE001 - any failure means a malformed state
        return f"rng['python']: {e}"
    return ""


def _numpy_problem(state: Any) -> str:
    if not (isinstance(state, (tuple, list)) and len(state) == 5):
        return "rng['numpy'] is not a (name, keys, pos, has_gauss, cached) tuple"
    name, keys, pos, has_gauss, cached = state
    if name != "MT19937":
        return f"rng['numpy']: generator {name!r} is not MT19937"
    if not (_is_dense(keys) and keys.dtype == torch.int64 and tuple(keys.shape) == (_N,)):
        return f"rng['numpy']: the keys must be a dense int64 tensor of shape ({_N},)"
    problem = _mt_keys_problem(keys.tolist(), "rng['numpy']")
    if problem:
        return problem
    if not (_is_int(pos) and 0 <= pos <= _N):
        return f"rng['numpy']: position {pos!r} is not an int in [0, {_N}]"
    if has_gauss not in (0, 1) or isinstance(has_gauss, float):
        return f"rng['numpy']: has_gauss {has_gauss!r} is not 0 or 1"
    if not (isinstance(cached, float) and math.isfinite(cached)):
        return f"rng['numpy']: the cached Gaussian {cached!r} is not a finite float"
    try:
        import numpy as np
        np.random.RandomState().set_state(
            (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    except ImportError:  # pragma: no cover - numpy comes with torch
        return ""
    except Exception as e:  # noqa: BLE001 - any failure means a malformed state
        return f"rng['numpy']: {e}"
    return ""


def _torch_problem(state: Any, ours: torch.Tensor, what: str) -> str:
    if not (_is_dense(state) and state.dtype == ours.dtype and state.shape == ours.shape):
        return (f"{what} is missing or malformed (expected a dense {ours.dtype} tensor of "
                f"shape {tuple(ours.shape)})")
    try:
        torch.Generator().set_state(state)
    except Exception as e:  # noqa: BLE001 - any failure means a malformed state
        return f"{what} is malformed ({e})"
    return ""


def check_rng_state(state: Any, path: str) -> None:
    """Raise :class:`CheckpointError` unless every generator state in ``state`` can be
    restored exactly: the torch and Python states are required; NumPy and CUDA ones are
    checked when present; unknown generators are refused."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path!r}: the 'rng' entry is not a dict of generator states")
    unknown = sorted(str(k) for k in state if k not in KNOWN_GENERATORS)
    if unknown:
        raise CheckpointError(f"{path!r}: the 'rng' entry has unknown generators {unknown} "
                              f"(known: {list(KNOWN_GENERATORS)})")
    problem = _torch_problem(state.get("torch"), torch.get_rng_state(), "the torch RNG state")
    if problem:
        raise CheckpointError(f"{path!r}: {problem}")
    problem = _python_problem(state.get("python"))
    if problem:
        raise CheckpointError(f"{path!r}: the Python RNG state is malformed ({problem})")
    if "numpy" in state:
        problem = _numpy_problem(state["numpy"])
        if problem:
            raise CheckpointError(f"{path!r}: the NumPy RNG state is malformed ({problem})")
    if "cuda" in state:
        cuda = state["cuda"]
        if not (isinstance(cuda, (list, tuple))
                and all(_is_dense(t) and t.dtype == torch.uint8 for t in cuda)):
            raise CheckpointError(f"{path!r}: the CUDA RNG states are not a list of uint8 "
                                  f"tensors")
        if torch.cuda.is_available() and len(cuda) != torch.cuda.device_count():
            raise CheckpointError(f"{path!r}: the file holds CUDA RNG states of {len(cuda)} "
                                  f"devices, this machine has {torch.cuda.device_count()}")


def set_rng_state(state: Dict) -> None:
    """Restore states checked by :func:`check_rng_state`."""
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"][1]), state["python"][2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        import numpy as np
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
