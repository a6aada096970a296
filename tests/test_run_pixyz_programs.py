"""scripts/run_pixyz_programs.py without the third-party programs (CI has no clones):
it skips cleanly, its catalogue is well-formed, notebooks become scripts, and the import
hook serves Pixyz's module names from pixyz_pyro."""
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runner():
    before = list(sys.path)
    module = _load("run_pixyz_programs", SCRIPTS / "run_pixyz_programs.py")
    yield module
    sys.path[:] = before


def test_without_clones_it_runs_nothing_and_says_why(runner, capsys, monkeypatch):
    monkeypatch.delenv("PIXYZ_PROGRAMS_MIRROR", raising=False)
    assert runner.main([]) == 2
    assert "PIXYZ_PROGRAMS_MIRROR is not set" in capsys.readouterr().out


def test_a_missing_clone_is_skipped(runner, capsys, tmp_path):
    assert runner.main(["--mirror", str(tmp_path), "-k", "pixyz/examples/vae"]) == 2
    assert "skipped (no clone)" in capsys.readouterr().out


def test_the_catalogue_is_well_formed(runner):
    names = [p.name for p in runner.PROGRAMS]
    assert len(names) == len(set(names)) and len(names) >= 40
    for p in runner.PROGRAMS:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", p.repo), p.repo
        for pattern, _ in list(p.patches) + list(runner.GENERIC):
            re.compile(pattern)


def test_notebooks_become_scripts(runner):
    nb = {"cells": [{"cell_type": "markdown", "source": ["# title"]},
                    {"cell_type": "code", "source": ["!pip install pixyz\n", "x = 1\n"]},
                    {"cell_type": "code", "source": "%matplotlib inline\n"
                                                    "from __future__ import print_function\n"
                                                    "y = x + 1"}]}
    code = runner.notebook_code(json.dumps(nb))
    assert code.splitlines()[0] == "from __future__ import print_function"
    assert "pip" not in code and "%matplotlib" not in code
    namespace = {}
    exec(compile(code, "nb", "exec"), namespace)
    assert namespace["y"] == 2


def test_patches_cut_epochs_and_fix_python2_iterators(runner):
    code = "epochs = 100\nbatch = iter(test_loader).next()\n"
    out = runner.apply(code, runner.GENERIC, "test")
    assert out == "epochs = 1\nbatch = next(iter(test_loader))\n"
    with pytest.raises(ValueError, match="matches nothing"):
        runner.apply(code, [("no such code", "")], "test")


def test_the_import_hook_serves_pixyz_names_from_pixyz_pyro():
    offline = _load("offline", SCRIPTS / "pixyz_programs" / "offline.py")
    import pixyz_pyro.dist
    import pixyz_pyro.loss

    finder = offline.PixyzAlias()
    for name, target in [("pixyz.distributions.distributions", pixyz_pyro.dist),
                         ("pixyz.losses", pixyz_pyro.loss)]:
        spec = finder.find_spec(name)
        assert spec.loader.create_module(spec) is target
    assert finder.find_spec("pixyzoo") is None


def test_the_offline_data_sets_have_the_real_shapes():
    offline = _load("offline", SCRIPTS / "pixyz_programs" / "offline.py")
    tv = offline.fake_torchvision()
    t = tv.transforms
    mnist = tv.datasets.MNIST("data", train=True, download=True,
                              transform=t.Compose([t.ToTensor(), t.Lambda(lambda x: x.view(-1))]))
    x, y = mnist[0]
    assert x.shape == (784,) and 0 <= float(x.min()) and float(x.max()) <= 1 and 0 <= y < 10
    cifar = tv.datasets.CIFAR10("data", transform=t.ToTensor())
    assert cifar[0][0].shape == (3, 32, 32)
    assert torch.equal(mnist[3][0], mnist[3][0])  # the same every time


def test_the_mnist_a_stand_in_is_what_the_jmvae_loader_reads(runner, tmp_path):
    import numpy as np
    from PIL import Image
    catalogue = sys.modules["catalogue"]
    catalogue.mnist_a_classifier(tmp_path)
    root = tmp_path / "data" / "MNIST_A"
    labels = np.load(root / "test_y.npy")
    assert labels.shape == (400, 6)  # the notebook scores a batch of 400 test images
    assert set(labels[:, 3]) <= {0, 36} and set(labels[:, 5]) <= {1, 2}
    image = np.asarray(Image.open(root / "train_X" / "1.png"))
    assert image.shape == (64, 64) and len(list((root / "train_X").iterdir())) == 256
    state = torch.load(tmp_path / "logs" / "MNIST_A_classifier.pkl")
    assert state["conv_e.0.weight"].shape == (32, 1, 4, 4)
    assert state["fc_e.3.weight"].shape == (2, 1024)
