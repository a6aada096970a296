"""GAN: a refused step changes nothing, running statistics included, and ``test``
evaluates both sides in eval mode.

Both networks hold a ``BatchNorm`` (running statistics and ``num_batches_tracked``), the
discriminator a ``Dropout`` too.  A refused step -- at the discriminator's step (a NaN in
the data, an error in its forward pass) or at the generator's (a NaN gradient) -- must
leave every parameter, buffer and optimizer state of both sides and the counters
bit-identical (:mod:`_state_snapshot`); ``GAN.test`` must leave every buffer and the
modules' modes as they were, and its discriminator loss is the eval-mode one.
"""
import math

import pytest
import torch
from _state_snapshot import assert_identical, take
from torch import nn

from pixyz_pyro.dist import Deterministic, Normal
from pixyz_pyro.errors import NonFiniteError
from pixyz_pyro.model import GAN

X, Z, B = 3, 2, 16


class Generator(Deterministic):
    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="g")
        self.net = nn.Linear(Z, X)
        self.bn = nn.BatchNorm1d(X)
        self.poison = False  # NaN gradients into its weight

        def hook(grad):
            return grad * float("nan") if self.poison else grad
        self.net.weight.register_hook(hook)

    def forward(self, z):
        return {"x": self.bn(self.net(z))}


class Discriminator(Deterministic):
    def __init__(self):
        super().__init__(var=["t"], cond_var=["x"], name="d")
        self.bn = nn.BatchNorm1d(X)
        self.net = nn.Sequential(nn.Linear(X, 8), nn.Dropout(0.5), nn.Linear(8, 1))
        self.fail = None  # raised after the BatchNorm ran

    def forward(self, x):
        h = self.bn(x)
        if self.fail is not None:
            raise self.fail
        return {"t": torch.sigmoid(self.net(h))}


class ConstantGenerator(Deterministic):
    """Samples that do not depend on the noise: ``x = c``, for a loss computed by hand."""

    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="g")
        self.c = nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))

    def forward(self, z):
        return {"x": self.c + 0 * z.sum(-1, keepdim=True)}


def make_gan(generator=None, fused=False, **kwargs):
    torch.manual_seed(0)
    prior = Normal(loc=0., scale=1., var=["z"], features_shape=[Z], name="p_z")
    gen, disc = generator or Generator(), Discriminator()
    opt = {"lr": 0.01, "fused": True} if fused else {"lr": 0.01}
    model = GAN((gen * prior).marginalize_var("z"), disc, optimizer_params=opt,
                d_optimizer_params=dict(opt), **kwargs)
    return model, gen, disc


def batch(i, nan=False):
    x = torch.randn(B, X, generator=torch.Generator().manual_seed(i)) + 2
    if nan:
        x[0, 0] = float("nan")
    return {"x": x}


def without_skip(before, after):
    """``after`` with ``skipped_steps`` as in ``before`` (a skipped step counts there)."""
    assert after["counter skipped_steps"] == before["counter skipped_steps"] + 1
    return {**after, "counter skipped_steps": before["counter skipped_steps"]}


@pytest.mark.parametrize("steps_before", [0, 2])
def test_a_refused_discriminator_step_changes_nothing(steps_before):
    model, _, disc = make_gan()
    for i in range(steps_before):
        model.train(batch(i))
    before = take(model)
    with pytest.raises(NonFiniteError, match="discriminator's step was refused; "
                                             "parameters, buffers and optimizer state"):
        model.train(batch(9, nan=True))
    assert_identical(before, take(model))
    assert torch.isfinite(disc.bn.running_mean).all()
    loss, d_loss = model.test(batch(10))
    assert math.isfinite(float(loss)) and math.isfinite(float(d_loss))


@pytest.mark.parametrize("steps_before", [0, 2])
def test_a_skipped_discriminator_step_changes_nothing_but_the_count(steps_before):
    model, _, _ = make_gan(skip_nonfinite=True)
    for i in range(steps_before):
        model.train(batch(i))
    before = take(model)
    loss, d_loss = model.train(batch(9, nan=True))
    assert math.isnan(float(d_loss))
    assert_identical(before, without_skip(before, take(model)))
    assert model.step_count == steps_before
    model.train(batch(10))  # training goes on, and is finite
    assert all(math.isfinite(float(v)) for v in model.test(batch(11)))


def test_an_error_in_the_discriminator_forward_pass_changes_nothing():
    model, _, disc = make_gan()
    model.train(batch(0))
    before = take(model)
    disc.fail = RuntimeError("boom")
    with pytest.raises(Exception, match="boom"):
        model.train(batch(1))
    disc.fail = None
    assert_identical(before, take(model))


def test_a_skipped_generator_step_puts_back_the_discriminator_running_statistics():
    """The discriminator's step went through, then the generator's was refused: both are
    undone, and the running statistics both forward passes changed."""
    model, gen, _ = make_gan(skip_nonfinite=True)
    model.train(batch(0))
    before = take(model)
    gen.poison = True
    model.train(batch(1))
    gen.poison = False
    assert_identical(before, without_skip(before, take(model)))


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("where", ["discriminator", "generator"])
def test_a_refused_step_under_check_every_changes_nothing(skip, where):
    """The verdicts stay on the device; once read, the refused step changed nothing."""
    model, gen, _ = make_gan(fused=True, check_every=4, skip_nonfinite=skip)
    for i in range(2):  # the first step reads; the second is a deferred one
        model.train(batch(i))
    model.sync()
    before = take(model)
    gen.poison = where == "generator"
    model.train(batch(9, nan=where == "discriminator"))
    gen.poison = False
    if skip:
        model.sync()
        after = without_skip(before, take(model))
    else:
        with pytest.raises(NonFiniteError):
            model.sync()
        after = take(model)
    assert_identical(before, after)


@pytest.mark.parametrize("d_mode", [True, False])
def test_test_changes_no_buffer_and_gives_the_modes_back(d_mode):
    model, gen, disc = make_gan()
    model.train(batch(0))
    disc.train(d_mode)
    modes = [m.training for m in disc.modules()]
    before = take(model)
    model.test(batch(1))
    assert_identical(before, take(model))
    assert [m.training for m in disc.modules()] == modes
    assert not gen.training  # the listed distributions stay in eval mode, as Model.test


def test_test_gives_the_eval_mode_discriminator_loss():
    """:math:`\\mathcal{L}_d = -\\mathrm{mean}\\log d(x) - \\mathrm{mean}\\log(1 - d(c))`,
    with ``d`` in eval mode (running statistics, no dropout) and ``c`` the generator's
    constant samples."""
    model, gen, disc = make_gan(generator=ConstantGenerator())
    for i in range(3):
        model.train(batch(i))
    x = batch(5)["x"]
    _, d_loss = model.test({"x": x})
    assert disc.training
    disc.eval()
    with torch.no_grad():
        real = disc(x=x)["t"]
        fake = disc(x=gen.c.expand(B, X))["t"]
    disc.train()
    expected = -torch.log(real).mean() - torch.log1p(-fake).mean()
    assert torch.allclose(d_loss, expected, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # training mode would have given another value
        trained = -torch.log(disc(x=x)["t"]).mean() - \
            torch.log1p(-disc(x=gen.c.expand(B, X))["t"]).mean()
    assert not torch.allclose(trained, expected, rtol=1e-3)
