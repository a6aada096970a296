"""Adversarial losses train their discriminator through ``loss_train`` as in Pixyz, with
the optimizer built from their ``optimizer``/``optimizer_params``; GAN prints as Pixyz."""
import copy

import torch
from torch import nn

from pixyz_pyro.dist import Deterministic, EmpiricalDistribution, Normal
from pixyz_pyro.loss import AdversarialJensenShannon, AdversarialWassersteinDistance
from pixyz_pyro.model import GAN


class Gen(Deterministic):
    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.net = nn.Linear(3, 4)

    def forward(self, z):
        return {"x": self.net(z)}


class Disc(Deterministic):
    def __init__(self, sigmoid=True):
        super().__init__(var=["t"], cond_var=["x"], name="d")
        self.net = nn.Linear(4, 1)
        self.sigmoid = sigmoid

    def forward(self, x):
        y = self.net(x)
        return {"t": torch.sigmoid(y) if self.sigmoid else y}


def setup(sigmoid=True):
    torch.manual_seed(0)
    prior = Normal(loc=torch.tensor(0.), scale=torch.tensor(1.), var=["z"], features_shape=[3])
    g = Gen()
    return g, (g * prior).marginalize_var("z"), EmpiricalDistribution(["x"]), Disc(sigmoid)


def test_loss_train_is_one_step_of_the_stored_optimizer_on_the_discriminator_only():
    g, p, data, d = setup()
    loss = AdversarialJensenShannon(p, data, d, optimizer=torch.optim.SGD,
                                    optimizer_params={"lr": 0.5})
    assert isinstance(loss.d_optimizer, torch.optim.SGD)
    x = torch.randn(8, 4)
    g_before = [w.detach().clone() for w in g.parameters()]
    twin = copy.deepcopy(d)
    torch.manual_seed(1)
    value = loss.loss_train({"x": x})
    # the same step by hand, with the same draw
    torch.manual_seed(1)
    ref = AdversarialJensenShannon(p, data, twin, optimizer=torch.optim.SGD,
                                   optimizer_params={"lr": 0.5}).d_loss({"x": x})
    ref.backward()
    with torch.no_grad():
        expected = [w - 0.5 * w.grad for w in twin.parameters()]
    torch.testing.assert_close(value, ref.detach())
    for w, e in zip(d.parameters(), expected):
        torch.testing.assert_close(w.detach(), e)
    for w, b in zip(g.parameters(), g_before):
        assert torch.equal(w.detach(), b)
    assert not value.requires_grad and d.training


def test_loss_test_is_the_discriminator_side_in_eval_mode_without_grad():
    _, p, data, d = setup()
    loss = AdversarialJensenShannon(p, data, d)
    out = loss.loss_test({"x": torch.randn(8, 4)})
    assert not out.requires_grad and not d.training and out.shape == ()
    assert isinstance(loss.d_optimizer, torch.optim.Adam)


def test_wasserstein_clips_the_critic_after_each_step_and_defaults_to_rmsprop():
    _, p, data, d = setup(sigmoid=False)
    with torch.no_grad():
        d.net.weight.fill_(1.0)
    loss = AdversarialWassersteinDistance(p, data, d, clip_value=0.05)
    assert isinstance(loss.d_optimizer, torch.optim.RMSprop)
    loss.loss_train({"x": torch.randn(8, 4)})
    top = max(w.detach().abs().max() for w in d.parameters())
    assert top <= torch.tensor(0.05)  # clamped at the float32 value of 0.05
    assert torch.equal(d.net.weight.detach(), torch.full((1, 4), 0.05))


def test_gan_preset_keeps_its_own_two_optimizers():
    g, p, data, d = setup()
    model = GAN(p, d, optimizer_params={"lr": 1e-3}, d_optimizer_params={"lr": 1e-3})
    assert model.d_optimizer is not model.loss_cls.d_optimizer
    loss, d_loss = model.train({"x": torch.rand(8, 4)})
    assert torch.isfinite(loss) and torch.isfinite(d_loss)
    # The loss's own optimizer took no step: it has no state.
    assert not model.loss_cls.d_optimizer.state


def test_print_model_is_pixyz_summary_and_repr_adds_networks():
    _, p, data, d = setup()
    model = GAN(p, d)
    text = str(model)
    assert text.startswith("Distributions (for training):\n  p(x)\nLoss function:\n  "
                           "mean(D_{JS}^{Adv} \\left[p_{data}(x)||p(x) \\right])\n"
                           "Optimizer:\n  Adam (")
    assert text.endswith(")") and "Network architecture" not in text
    assert "Network architecture" in repr(model)
