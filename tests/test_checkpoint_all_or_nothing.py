"""``Model.load`` is all or nothing: hostile or damaged checkpoints are refused before
anything changes, with an error that names the entry, and a load that fails while being
applied puts everything back.

Every test snapshots the model with :mod:`_state_snapshot` (every parameter, buffer,
optimizer state and counter, bit for bit, and the torch, Python and NumPy generators)
and proves it identical after the refused load.
"""
import os
import random

import numpy as np
import pytest
import torch
from _errors_world import World
from _state_snapshot import assert_identical, take
from torch import nn

from pixyz_pyro.dist import Deterministic, Normal
from pixyz_pyro.errors import CheckpointError
from pixyz_pyro.model import GAN, Model


def _saved(model, tmp_path, edit=None, name="ckpt.pt"):
    """``model``'s checkpoint, edited by ``edit(state)``, written to a file."""
    path = str(tmp_path / name)
    state = model.state_dict()
    if edit is not None:
        edit(state)
    torch.save(state, path)
    return path


def _refused(model, path, *fragments):
    """Load ``path`` into ``model``: it must raise naming every fragment, and change
    nothing (parameters, buffers, optimizer state, counters, generators)."""
    before = take(model, rng=True)
    with pytest.raises(CheckpointError) as info:
        model.load(path)
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"
    assert_identical(before, take(model, rng=True))
    return str(info.value)


@pytest.fixture
def worlds():
    """A trained source model (2 steps) and a different target model (3 steps), so that
    a load that changed anything would show."""
    source = World(warm=True)
    target = World(warm=False)
    torch.manual_seed(5)
    for _ in range(3):
        target.model.train({"x": torch.rand(8, 4)})
    random.seed(11)
    np.random.seed(11)
    return source, target


def _dist_state(s, i=1):
    """The state dict of the ``i``-th distribution in a checkpoint (q(z|x) is 1)."""
    return s["distributions"][i][1]


def _np_state(**change):
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"name": name, "keys": torch.from_numpy(keys.astype("int64")), "pos": int(pos),
             "has_gauss": int(has_gauss), "cached": float(cached)}
    state.update(change)
    return tuple(state[k] for k in ("name", "keys", "pos", "has_gauss", "cached"))


def _py_state(keys=None, pos=624):
    version, internal, gauss = random.getstate()
    return (version, tuple(keys if keys is not None else internal[:624]) + (pos,), gauss)


HOSTILE = {
    "adam state missing exp_avg_sq": (
        lambda s: s["optimizer"]["state"][0].pop("exp_avg_sq"),
        ["the optimizer state of parameter 0 (group 0) has the entries ['exp_avg', "
         "'step'] in the file; Adam keeps ['exp_avg', 'exp_avg_sq', 'step']"]),
    "adam state with a second moment of the wrong dtype": (
        lambda s: s["optimizer"]["state"][1].update(
            exp_avg_sq=s["optimizer"]["state"][1]["exp_avg_sq"].double()),
        ["the optimizer state of parameter 1 (group 0): 'exp_avg_sq' has dtype "
         "torch.float64 in the file, torch.float32 in the model"]),
    "adam step as a vector": (
        lambda s: s["optimizer"]["state"][0].update(step=torch.ones(3)),
        ["'step' has shape (3,) in the file, () in the model"]),
    "amsgrad switched on without its state": (
        lambda s: s["optimizer"]["param_groups"][0].update(amsgrad=True),
        ["Adam keeps ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'step']"]),
    "learning rate as a string": (
        lambda s: s["optimizer"]["param_groups"][0].update(lr="0.01"),
        ["the optimizer group 0 has lr='0.01' in the file, which is not a number like "
         "the model's lr=0.01"]),
    "learning rate NaN": (
        lambda s: s["optimizer"]["param_groups"][0].update(lr=float("nan")),
        ["the optimizer group 0 has the non-finite lr=nan in the file"]),
    "betas of the wrong length": (
        lambda s: s["optimizer"]["param_groups"][0].update(betas=(0.9,)),
        ["betas=(0.9,) in the file, which is not a sequence of 2 numbers like the "
         "model's betas=(0.9, 0.999)"]),
    "an unknown hyperparameter": (
        lambda s: s["optimizer"]["param_groups"][0].update(momentum=0.9),
        ["the optimizer group 0 has the hyperparameters ['momentum'] in the file, which "
         "Adam does not have"]),
    "state for a parameter in no group": (
        lambda s: s["optimizer"]["state"].update({99: s["optimizer"]["state"][0]}),
        ["the optimizer has state for the parameter ids ['99'], which are in none of "
         "its groups"]),
    "duplicate parameter ids": (
        lambda s: s["optimizer"]["param_groups"][0].update(
            params=[0] * len(s["optimizer"]["param_groups"][0]["params"])),
        ["the parameter ids of the optimizer are not unique integers"]),
    "a sparse tensor of the right shape": (
        lambda s: _dist_state(s).update(
            {"loc.weight": _dist_state(s)["loc.weight"].to_sparse()}),
        ["q(z|x): loc.weight is a sparse_coo tensor in the file; only dense tensors load"]),
    "a weight of another dtype": (
        lambda s: _dist_state(s, 0).update(
            {"net.bias": _dist_state(s, 0)["net.bias"].double()}),
        ["does not fit p(x|z): net.bias has dtype torch.float64 in the file, "
         "torch.float32 in the model"]),
    "a BatchNorm count of another dtype": (
        lambda s: _dist_state(s).update(
            {"net.1.num_batches_tracked": torch.tensor(2.0)}),
        ["q(z|x): net.1.num_batches_tracked has dtype torch.float32 in the file, "
         "torch.int64 in the model"]),
    "skipped steps as a string": (
        lambda s: s.update(skipped_steps="3"),
        ["skipped_steps '3' is not a count (a non-negative int)"]),
    "step count as a float": (
        lambda s: s.update(step_count=2.0), ["step_count 2.0 is not a count"]),
    "step count as a bool": (
        lambda s: s.update(step_count=True), ["step_count True is not a count"]),
    "format version as a bool": (
        lambda s: s.update(format_version=True), ["has an invalid format version True"]),
    "an unknown entry": (
        lambda s: s.update(discriminator={}),
        ["has the entries ['discriminator'], which this model does not save"]),
    "an optimizer class that is not a name": (
        lambda s: s.update(optimizer_class=3), ["optimizer_class 3 is not a class name"]),
    "distributions that are not pairs": (
        lambda s: s.update(distributions=[1, 2]),
        ["the 'distributions' entry is not a list of (name, state) pairs"]),
    "numpy position out of range": (
        lambda s: s["rng"].update(numpy=_np_state(pos=100000)),
        ["the NumPy RNG state is malformed (rng['numpy']: position 100000 is not an int "
         "in [0, 624])"]),
    "numpy all-zero keys": (
        lambda s: s["rng"].update(numpy=_np_state(keys=torch.zeros(624, dtype=torch.int64))),
        ["rng['numpy']: its 624 keys are all zero, a degenerate Mersenne Twister state"]),
    "numpy negative keys": (
        lambda s: s["rng"].update(numpy=_np_state(keys=-torch.ones(624, dtype=torch.int64))),
        ["rng['numpy']: a key lies outside [0, 2**32)"]),
    "numpy another generator": (
        lambda s: s["rng"].update(numpy=_np_state(name="PCG64")),
        ["rng['numpy']: generator 'PCG64' is not MT19937"]),
    "numpy keys of the wrong shape": (
        lambda s: s["rng"].update(numpy=_np_state(keys=torch.ones(3, dtype=torch.int64))),
        ["rng['numpy']: the keys must be a dense int64 tensor of shape (624,)"]),
    "numpy cached Gaussian NaN": (
        lambda s: s["rng"].update(numpy=_np_state(cached=float("nan"))),
        ["rng['numpy']: the cached Gaussian nan is not a finite float"]),
    "python all-zero keys": (
        lambda s: s["rng"].update(python=_py_state(keys=[0] * 624)),
        ["the Python RNG state is malformed (rng['python']: its 624 keys are all zero"]),
    "python keys out of range": (
        lambda s: s["rng"].update(python=_py_state(keys=[2 ** 40] * 624)),
        ["rng['python']: a key lies outside [0, 2**32)"]),
    "python position out of range": (
        lambda s: s["rng"].update(python=_py_state(pos=1000)),
        ["rng['python']: position 1000 lies outside [0, 624]"]),
    "torch state of the wrong dtype": (
        lambda s: s["rng"].update(torch=s["rng"]["torch"].to(torch.int16)),
        ["the torch RNG state is missing or malformed (expected a dense torch.uint8 "
         "tensor of shape"]),
    "an unknown generator": (
        lambda s: s["rng"].update(jax=torch.zeros(2)),
        ["the 'rng' entry has unknown generators ['jax']"]),
}


@pytest.mark.parametrize("edit, fragments", HOSTILE.values(), ids=list(HOSTILE))
def test_a_hostile_checkpoint_is_refused_and_changes_nothing(worlds, tmp_path, edit,
                                                             fragments):
    source, target = worlds
    path = _saved(source.model, tmp_path, edit)
    message = _refused(target.model, path, *fragments)
    assert message.startswith(repr(path)) or repr(path) in message


def test_the_last_entry_is_checked_before_the_first_is_applied(worlds, tmp_path):
    """A good first distribution, a bad last entry (the RNG): nothing is applied."""
    source, target = worlds
    path = _saved(source.model, tmp_path,
                  lambda s: s["rng"].update(numpy=_np_state(pos=-1)))
    _refused(target.model, path, "rng['numpy']: position -1")


def test_a_good_checkpoint_loads_bit_for_bit(worlds, tmp_path):
    source, target = worlds
    path = _saved(source.model, tmp_path)
    expected = take(source.model)
    holds = take(target.model)["optimizer optimizer holds"]
    target.model.load(path)
    got = take(target.model)
    assert_identical(expected, got, ignore=["optimizer optimizer holds"])
    assert got["optimizer optimizer holds"] == holds  # the same parameter objects


@pytest.mark.parametrize("interrupt", [RuntimeError("disk gone"), KeyboardInterrupt()])
def test_a_load_that_fails_while_applying_puts_everything_back(worlds, tmp_path,
                                                               monkeypatch, interrupt):
    """The distributions are applied, then the optimizer's load fails: the
    distributions, the optimizer and the generators are rolled back."""
    source, target = worlds
    path = _saved(source.model, tmp_path)
    before = take(target.model, rng=True)
    real = torch.optim.Adam.load_state_dict
    calls = []

    def fail_once(self, state):
        calls.append(1)
        if len(calls) == 1:
            raise interrupt
        return real(self, state)

    monkeypatch.setattr(torch.optim.Adam, "load_state_dict", fail_once)
    with pytest.raises(type(interrupt)):
        target.model.load(path)
    monkeypatch.undo()
    assert_identical(before, take(target.model, rng=True),
                     ignore=["optimizer optimizer holds"])


class _D(Deterministic):
    def __init__(self):
        super().__init__(var=["t"], cond_var=["x"], name="d")
        self.net = nn.Linear(2, 1)

    def forward(self, x):
        return {"t": torch.sigmoid(self.net(x))}


def _gan(d_optimizer=torch.optim.Adam, d_optimizer_params=None, seed=0):
    torch.manual_seed(seed)
    loc = nn.Parameter(torch.zeros(2))
    gan = GAN(Normal(loc=loc, scale=1.0, var=["x"], features_shape=[2]), _D(),
              d_optimizer=d_optimizer, d_optimizer_params=d_optimizer_params)
    gan.train({"x": torch.randn(8, 2)})
    return gan


def test_a_gan_checkpoint_records_the_discriminator_optimizer_class():
    assert _gan().state_dict()["d_optimizer_class"] == "Adam"


def test_a_gan_checkpoint_with_another_discriminator_optimizer_is_refused(tmp_path):
    sgd = _gan(torch.optim.SGD, {"lr": 0.1, "momentum": 0.9})
    path = _saved(sgd, tmp_path)
    _refused(_gan(seed=1), path, "d_optimizer was SGD in the file, Adam in the model")


def test_an_old_gan_checkpoint_without_the_class_is_checked_by_its_structure(tmp_path):
    """Files written before ``d_optimizer_class`` existed: the SGD state and
    hyperparameters do not fit Adam."""
    sgd = _gan(torch.optim.SGD, {"lr": 0.1, "momentum": 0.9})
    path = _saved(sgd, tmp_path, lambda s: s.pop("d_optimizer_class"))
    _refused(_gan(seed=1), path, "d_optimizer group 0 has the hyperparameters",
             "which Adam does not have")


def test_a_gan_checkpoint_with_a_broken_discriminator_state_changes_nothing(tmp_path):
    a = _gan()
    path = _saved(a, tmp_path, lambda s: s["d_optimizer"]["state"][0].pop("exp_avg"))
    _refused(_gan(seed=1), path, "d_optimizer state of parameter 0 (group 0) has the "
             "entries ['exp_avg_sq', 'step']")


def test_an_optimizer_that_keeps_state_from_the_start_needs_it(tmp_path):
    """Adagrad has state before its first step; a file without it is refused."""
    def model():
        w = World(warm=False)
        return Model(w.loss, distributions=[w.p, w.q], optimizer=torch.optim.Adagrad)

    path = _saved(model(), tmp_path, lambda s: s["optimizer"]["state"].pop(0))
    _refused(model(), path, "has no state for parameter 0 (group 0) in the file; Adagrad "
             "keeps ['step', 'sum'] from the start")


def test_a_checkpoint_without_optimizer_state_yet_loads(tmp_path):
    """A model saved before its first step has no Adam state: that is fine."""
    fresh = World(warm=False).model
    path = _saved(fresh, tmp_path)
    target = World(warm=True).model
    target.load(path)
    assert target.optimizer.state_dict()["state"] == {} and target.step_count == 0
    assert os.path.exists(path)
