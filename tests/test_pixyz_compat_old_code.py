"""Older Pixyz code (0.0-0.2) and what real Pixyz programs pass around: ``dim=``,
``GAN(p_data, p, d)``, ``loss.train(x_dict)`` of an adversarial loss,
``p.log_likelihood``, and state carried as lists of tensors (DynaNet's LSTM state)."""
import copy
import math

import pytest
import torch
from torch import nn

from pixyz_pyro.dist import (
    DataDistribution,
    Deterministic,
    EmpiricalDistribution,
    Normal,
)
from pixyz_pyro.errors import InputError, ParameterError
from pixyz_pyro.loss import AdversarialJensenShannon
from pixyz_pyro.model import GAN

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


# --- Normal(..., dim=n) ---------------------------------------------------------------------
def test_dim_is_the_old_spelling_of_features_shape():
    with pytest.warns(DeprecationWarning, match=r"use features_shape=\[3\] \(Pixyz 0\.3\)"):
        p = Normal(loc=torch.tensor(0.), scale=torch.tensor(1.), var=["z"], dim=3)
    assert p.features_shape == torch.Size([3])
    assert p.sample(batch_n=2)["z"].shape == (2, 3)
    assert torch.allclose(p.get_log_prob({"z": torch.zeros(2, 3)}),
                          torch.full((2,), -3 * LOG_SQRT_2PI))


def test_dim_and_a_different_features_shape_is_an_error():
    with pytest.raises(ParameterError, match=r"dim=3 and features_shape=\[4\] disagree"):
        Normal(loc=0., scale=1., var=["z"], dim=3, features_shape=[4])


def test_log_likelihood_is_the_old_spelling_of_get_log_prob():
    p = Normal(loc=0., scale=1., var=["x"])
    x = {"x": torch.zeros(2, 1)}
    with pytest.warns(DeprecationWarning, match=r"use p\.get_log_prob\(x_dict\)"):
        assert torch.equal(p.log_likelihood(x), p.get_log_prob(x))


# --- adversarial losses and GAN, old forms --------------------------------------------------
class Gen(Deterministic):
    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.net = nn.Linear(3, 4)

    def forward(self, z):
        return {"x": self.net(z)}


class Disc(Deterministic):
    def __init__(self):
        super().__init__(var=["t"], cond_var=["x"], name="d")
        self.net = nn.Linear(4, 1)

    def forward(self, x):
        return {"t": torch.sigmoid(self.net(x))}


def _generator():
    torch.manual_seed(0)
    prior = Normal(loc=torch.tensor(0.), scale=torch.tensor(1.), var=["z"], features_shape=[3])
    return (Gen() * prior).marginalize_var("z")


def test_adversarial_train_of_a_dict_is_loss_train():
    p, d = _generator(), Disc()
    twin = copy.deepcopy(d)
    loss = AdversarialJensenShannon(p, EmpiricalDistribution(["x"]), d,
                                    optimizer=torch.optim.SGD, optimizer_params={"lr": 0.1})
    ref = AdversarialJensenShannon(p, EmpiricalDistribution(["x"]), twin,
                                   optimizer=torch.optim.SGD, optimizer_params={"lr": 0.1})
    x = {"x": torch.randn(8, 4)}
    torch.manual_seed(1)
    with pytest.warns(DeprecationWarning, match=r"use loss\.loss_train\(x_dict\)"):
        value = loss.train(x)
    torch.manual_seed(1)
    expected = ref.loss_train(x)
    torch.testing.assert_close(value, expected)
    for a, b in zip(d.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)
    with pytest.warns(DeprecationWarning, match=r"use loss\.loss_test\(x_dict\)"):
        torch.manual_seed(2)
        tested = loss.test(x)
    torch.manual_seed(2)
    torch.testing.assert_close(tested, ref.loss_test(x))
    assert loss.train(False) is loss and not d.training  # a mode is nn.Module.train


def test_gan_takes_pixyz_0_0s_p_data_first():
    p, d = _generator(), Disc()
    with pytest.warns(DeprecationWarning):
        data = DataDistribution(["x"])
    with pytest.warns(DeprecationWarning, match=r"use GAN\(p, discriminator, \.\.\.\)"):
        old = GAN(data, p, d, optimizer=torch.optim.Adam, optimizer_params={"lr": 1e-3},
                  d_optimizer=torch.optim.SGD, d_optimizer_params={"lr": 1e-2})
    assert old.loss_cls.p is data and old.discriminator is d
    assert isinstance(old.d_optimizer, torch.optim.SGD)
    new = GAN(p, d, torch.optim.SGD, {"lr": 1e-2})  # the optimizer by position, as in 0.3
    assert isinstance(new.optimizer, torch.optim.SGD)
    with pytest.raises(TypeError, match="multiple values for argument 'optimizer'"):
        GAN(p, d, torch.optim.SGD, optimizer=torch.optim.Adam)


# --- lists of tensors as values -------------------------------------------------------------------
class LSTMStep(Deterministic):
    """One LSTM step whose state (h, c) travels as a list, as DynaNet's transition does."""

    def __init__(self):
        super().__init__(var=["h"], cond_var=["x", "h_prev"], name="f")
        self.cell = nn.LSTMCell(2, 3)

    def forward(self, x, h_prev):
        h, c = self.cell(x, tuple(h_prev))
        return {"h": [h, c]}


def test_state_carried_as_a_list_of_tensors():
    f = LSTMStep()
    x = torch.randn(4, 2)
    state = [torch.zeros(4, 3), torch.zeros(4, 3)]
    for _ in range(3):
        out = f.sample({"x": x, "h_prev": state})
        assert isinstance(out["h"], list)
        expected = f.cell(x, tuple(state))
        torch.testing.assert_close(out["h"][0], expected[0])
        state = out["h"]
    with pytest.raises(InputError, match=r'takes a tensor for "h_prev", got list'):
        f.sample({"x": x, "h_prev": [1.0, 2.0]})
