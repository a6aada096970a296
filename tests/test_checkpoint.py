"""Checkpoints: what is saved, atomic writes, validation on load, exact resume.

The exact-resume test runs two fresh processes.  The first trains N + M steps straight,
then (reseeded, with a new model) trains N steps, saves, and kills itself with SIGKILL
right after the save.  The second loads the checkpoint and trains M more steps.  The
parameters, optimizer state and step count must equal the straight run's, bit for bit.
Batches are drawn with ``torch.randint`` from the global RNG and perturbed with
``random`` and ``numpy.random``, so the data order depends on every restored RNG.
"""
import os
import random
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from _errors_world import World, assert_same, snapshot

from pixyz_pyro.errors import CheckpointError
from pixyz_pyro.model.checkpoint import FORMAT_VERSION


def test_round_trip_restores_everything(tmp_path):
    w = World(warm=True)
    path = str(tmp_path / "vae.pt")
    random.seed(3)
    np.random.seed(3)
    w.model.save(path)
    saved_rng = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    saved = snapshot([w.model])
    ckpt = torch.load(path, weights_only=True)  # plain data and tensors only
    assert ckpt["format_version"] == FORMAT_VERSION and ckpt["step_count"] == 2
    assert set(ckpt["rng"]) >= {"torch", "python", "numpy"}

    torch.manual_seed(7), random.seed(7), np.random.seed(7)
    fresh = World(warm=False)
    fresh.model.load(path)
    assert_same(saved, snapshot([fresh.model]))
    assert torch.equal(torch.get_rng_state(), saved_rng[0])
    assert random.getstate() == saved_rng[1]
    assert np.array_equal(np.random.get_state()[1], saved_rng[2])


def test_a_crash_mid_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    w = World(warm=True)
    path = str(tmp_path / "vae.pt")
    w.model.save(path)
    with open(path, "rb") as f:
        good = f.read()

    def crash(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip archive")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    w.model.train({"x": w.x})
    with pytest.raises(OSError, match="disk full"):
        w.model.save(path)
    monkeypatch.undo()
    with open(path, "rb") as f:
        assert f.read() == good
    assert os.listdir(tmp_path) == ["vae.pt"]  # the temporary file is gone
    fresh = World(warm=False)
    fresh.model.load(path)
    assert fresh.model.step_count == 2


def _tampered(w, tmp_path, edit):
    path = str(tmp_path / "tampered.pt")
    state = w.model.state_dict()
    edit(state)
    torch.save(state, path)
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda s: s["optimizer"]["state"][0].update(exp_avg=torch.zeros(3)),
     "the optimizer state of parameter 0 (group 0): 'exp_avg' has shape (3,) in the file, "
     "but its parameter has shape (4, 2) in the model"),
    (lambda s: s["rng"].update(torch=torch.zeros(3, dtype=torch.uint8)),
     "the torch RNG state is missing or malformed"),
    (lambda s: s["rng"].update(python=(3, (1, 2), None)), "the Python RNG state is malformed"),
    (lambda s: s.update(step_count=-1), "step_count -1 is not a count"),
    (lambda s: s.pop("optimizer"), "has no 'optimizer' entry"),
])
def test_load_validates_before_touching_anything(tmp_path, edit, message):
    w = World(warm=True)
    path = _tampered(w, tmp_path, edit)
    before = snapshot([w.model]), torch.get_rng_state()
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")):
        w.model.load(path)
    assert_same(before, (snapshot([w.model]), torch.get_rng_state()))


def test_a_pickle_with_arbitrary_objects_is_refused(tmp_path):
    w = World(warm=True)
    path = _tampered(w, tmp_path, lambda s: s.update(evil=World))
    with pytest.raises(CheckpointError, match="holds objects other than tensors and plain"):
        w.model.load(path)


def test_gan_checkpoints_keep_the_discriminator(tmp_path):
    from torch import nn

    from pixyz_pyro.dist import Deterministic, Normal
    from pixyz_pyro.model import GAN

    class D(Deterministic):
        def __init__(self):
            super().__init__(var=["t"], cond_var=["x"], name="d")
            self.net = nn.Linear(2, 1)

        def forward(self, x):
            return {"t": torch.sigmoid(self.net(x))}

    def gan():
        torch.manual_seed(0)
        loc = nn.Parameter(torch.zeros(2))
        return GAN(Normal(loc=loc, scale=1.0, var=["x"], features_shape=[2]), D())

    a = gan()
    a.train({"x": torch.randn(8, 2)})
    a.save(str(tmp_path / "gan.pt"))
    b = gan()
    b.load(str(tmp_path / "gan.pt"))
    assert_same(a.discriminator.state_dict(), b.discriminator.state_dict())
    assert_same(a.d_optimizer.state_dict(), b.d_optimizer.state_dict())


SCRIPT = textwrap.dedent("""
    import os, random, signal, sys
    import numpy as np, torch
    from torch import nn
    from pixyz_pyro.dist import Bernoulli, Normal
    from pixyz_pyro.loss import Expectation, KullbackLeibler, LogProb
    from pixyz_pyro.model import Model

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    mode, n, m, path, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:]

    class Q(Normal):
        def __init__(self):
            super().__init__(var=["z"], cond_var=["x"], name="q")
            self.net = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU())
            self.loc, self.scale = nn.Linear(16, 2), nn.Linear(16, 2)
        def forward(self, x):
            h = self.net(x)
            return {"loc": self.loc(h), "scale": nn.functional.softplus(self.scale(h))}

    class P(Bernoulli):
        def __init__(self):
            super().__init__(var=["x"], cond_var=["z"], name="p")
            self.net = nn.Linear(2, 6)
        def forward(self, z):
            return {"probs": torch.sigmoid(self.net(z))}

    def build():
        torch.manual_seed(0); random.seed(0); np.random.seed(0)
        q, p = Q(), P()
        prior = Normal(loc=torch.zeros(2), scale=torch.ones(2), var=["z"], name="p_prior")
        loss = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean()
        return Model(loss, distributions=[p, q], optimizer_params={"lr": 1e-2})

    data = torch.rand(64, 6, generator=torch.Generator().manual_seed(1))

    def steps(model, k):
        for _ in range(k):
            idx = torch.randint(0, 64, (16,))
            scale = 0.5 + 0.25 * random.random() + 0.25 * float(np.random.rand())
            model.train({"x": data[idx] * scale})

    def dump(model):
        torch.save({"dists": [d.state_dict() for d in model.distributions],
                    "opt": model.optimizer.state_dict(), "steps": model.step_count}, out)

    if mode == "first":
        model = build()
        steps(model, n + m)
        dump(model)
        model = build()
        steps(model, n)
        model.save(path)
        os.kill(os.getpid(), signal.SIGKILL)
    else:
        model = build()
        torch.manual_seed(123); random.seed(123); np.random.seed(123)  # must not matter
        model.load(path)
        steps(model, m)
        dump(model)
""")


def _run(tmp_path, *args):
    script = tmp_path / "resume.py"
    script.write_text(SCRIPT)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": path})  # this tree's pixyz_pyro


def test_exact_resume_in_a_new_process_after_a_kill(tmp_path):
    ckpt, straight, resumed = tmp_path / "ckpt.pt", tmp_path / "a.pt", tmp_path / "b.pt"
    first = _run(tmp_path, "first", 5, 4, ckpt, straight)
    assert first.returncode == -signal.SIGKILL, first.stderr
    second = _run(tmp_path, "resume", 5, 4, ckpt, resumed)
    assert second.returncode == 0, second.stderr
    a = torch.load(straight, weights_only=True)
    b = torch.load(resumed, weights_only=True)
    assert a["steps"] == b["steps"] == 9
    assert_same(a, b)
