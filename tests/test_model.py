"""The Model API: one optimizer, set-to-none gradients, printing, Pyro optimizers,
clipping, test without gradients, the presets, and checkpoints."""
import copy

import pyro
import pytest
import torch
from _infer_models import X, Z, params_of, rel_diff, vae
from torch import nn

from pixyz_pyro.dist import Deterministic, Normal
from pixyz_pyro.loss import Expectation, KullbackLeibler, LogProb
from pixyz_pyro.model import GAN, ML, VAE, VI, Model


def _loss(q, p, prior):
    return (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean()


def _snapshot(*modules):
    return [t.detach().clone() for t in params_of(*modules)]


def _same(a, b):
    return all(torch.equal(u, v) for u, v in zip(a, b))


def test_all_parameters_go_to_one_optimizer():
    q, p, prior = vae()
    shared = p.fc_out
    extra = Normal(loc="z", scale=1., var=["x"], cond_var=["z"], name="r")
    extra.net = shared  # the same module inside another distribution
    model = Model(_loss(q, p, prior), distributions=[p, q, extra], allow_unused=True)
    groups = model.optimizer.param_groups
    assert len(groups) == 1
    ids = [id(t) for t in groups[0]["params"]]
    assert len(ids) == len(set(ids)) == len({id(t) for t in params_of(p, q, extra)})
    pyro_model = Model(_loss(q, p, prior), distributions=[p, q],
                       optimizer=pyro.optim.Adam({"lr": 1e-3}))
    assert isinstance(pyro_model.optimizer, torch.optim.Adam)
    assert len(pyro_model.optimizer.param_groups) == 1


def test_gradients_are_set_to_none_before_each_step():
    q, p, prior = vae()
    unused = Normal(loc=nn.Parameter(torch.zeros(1)), scale=1., var=["u"])
    model = Model(_loss(q, p, prior), distributions=[p, q, unused], allow_unused=True,
                  optimizer=torch.optim.SGD, optimizer_params={"lr": 0.1})
    x = torch.rand(4, X)
    q2, p2 = copy.deepcopy(q), copy.deepcopy(p)
    torch.manual_seed(1)
    grads = torch.autograd.grad(_loss(q2, p2, prior).eval({"x": x}), params_of(p2, q2))
    for t in params_of(p, q, unused):
        t.grad = torch.full_like(t, 1e6)  # stale gradients must not leak into the step
    before = _snapshot(p, q)
    torch.manual_seed(1)
    model.train({"x": x})
    for new, old, g in zip(params_of(p, q), before, grads):
        torch.testing.assert_close(new.detach(), old - 0.1 * g)
    assert unused.loc.grad is None and float(unused.loc.detach()) == 0.0


def test_print_shows_formula_optimizer_and_distributions():
    q, p, prior = vae()
    loss = _loss(q, p, prior)
    model = Model(loss, distributions=[p, q], optimizer_params={"lr": 0.005})
    # print() shows Pixyz's summary, which ends with the optimizer; repr adds the networks.
    assert str(model).endswith(")") and "Linear(" not in str(model)
    text = repr(model)
    assert "Distributions (for training):\n  p(x|z), q(z|x)" in text
    assert f"Loss function:\n  {loss.loss_text}" in text
    assert "Optimizer:\n  Adam (" in text and "lr: 0.005" in text
    assert "Linear(in_features=2, out_features=8" in text  # the decoder's network
    assert "Linear(in_features=6, out_features=8" in text  # the encoder's network


def test_torch_class_and_pyro_optimizer_give_identical_trajectories():
    q, p, prior = vae()
    q2, p2 = copy.deepcopy(q), copy.deepcopy(p)
    a = Model(_loss(q, p, prior), distributions=[p, q], optimizer=torch.optim.Adam,
              optimizer_params={"lr": 0.01, "betas": (0.8, 0.9)})
    b = Model(_loss(q2, p2, prior), distributions=[p2, q2],
              optimizer=pyro.optim.Adam({"lr": 0.01, "betas": (0.8, 0.9)}))
    x = torch.rand(8, X)
    torch.manual_seed(2)
    la = [float(a.train({"x": x})) for _ in range(10)]
    torch.manual_seed(2)
    lb = [float(b.train({"x": x})) for _ in range(10)]
    assert la == lb
    assert _same(params_of(p, q), params_of(p2, q2))
    assert not _same(params_of(p, q), params_of(*vae()[:2]))


def _update(model, modules, x):
    before = _snapshot(*modules)
    model.train({"x": x})
    return torch.cat([(a - b).flatten() for a, b in zip(_snapshot(*modules), before)])


def test_clip_grad_norm_bounds_the_step():
    q, p, prior = vae()
    model = Model(_loss(q, p, prior), distributions=[p, q], optimizer=torch.optim.SGD,
                  optimizer_params={"lr": 1.0}, clip_grad_norm=1e-3)
    step = _update(model, [p, q], torch.rand(8, X))
    assert abs(float(step.norm()) - 1e-3) < 1e-7  # the raw gradient norm is far above


def test_clip_grad_value_bounds_each_entry():
    q, p, prior = vae()
    model = Model(_loss(q, p, prior), distributions=[p, q], optimizer=torch.optim.SGD,
                  optimizer_params={"lr": 1.0}, clip_grad_value=1e-4)
    step = _update(model, [p, q], torch.rand(8, X)).abs()
    assert float(step.max()) == pytest.approx(1e-4, abs=1e-7)  # float32 rounding
    assert int((step > 0.99e-4).sum()) > 10  # many entries were clipped


def test_test_evaluates_without_gradients():
    q, p, prior = vae()
    loss = _loss(q, p, prior)
    model = Model(loss, distributions=[p, q])
    x = torch.rand(4, X)
    torch.manual_seed(3)
    value = model.test({"x": x})
    assert not value.requires_grad
    assert all(t.grad is None for t in params_of(p, q))
    assert not q.training and not p.training  # test() switches to eval mode
    torch.manual_seed(3)
    with torch.no_grad():
        assert torch.equal(value, loss.eval({"x": x}))
    model.train({"x": x})
    assert q.training and p.training


# --- presets --------------------------------------------------------------------------------
def _steps(model, x, n=3):
    return [model.train({"x": x}) for _ in range(n)]


def test_vae_preset_is_reconstruction_plus_regularizer():
    q, p, prior = vae()
    model = VAE(q, p, regularizer=KullbackLeibler(q, prior), optimizer_params={"lr": 1e-2})
    x = torch.rand(8, X)
    torch.manual_seed(4)
    value = model.test({"x": x})
    torch.manual_seed(4)
    with torch.no_grad():
        ref = (-Expectation(q, LogProb(p)) + KullbackLeibler(q, prior)).mean().eval({"x": x})
    assert rel_diff(value, ref) < 1e-6
    assert all(torch.isfinite(v) for v in _steps(model, x))


def test_vi_preset_minimises_the_negative_elbo():
    q, p, prior = vae()
    model = VI(p * prior, q, other_distributions=[p], optimizer_params={"lr": 1e-2})
    assert {id(t) for t in model.optimizer.param_groups[0]["params"]} == \
        {id(t) for t in params_of(q, p)}
    x = torch.rand(8, X)
    assert all(torch.isfinite(v) for v in _steps(model, x))


def test_ml_preset_finds_the_maximum_likelihood_estimate():
    p = Normal(loc=nn.Parameter(torch.zeros(2)), scale=1., var=["x"])
    model = ML(p, optimizer_params={"lr": 0.1})
    x = torch.randn(64, 2) + torch.tensor([2.0, -1.0])
    for _ in range(200):
        model.train({"x": x})
    torch.testing.assert_close(p.loc.detach(), x.mean(0), atol=1e-3, rtol=0)


class Generator(Deterministic):
    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="g")
        self.net = nn.Linear(Z, X)

    def forward(self, z):
        return {"x": torch.sigmoid(self.net(z))}


class Discriminator(Deterministic):
    def __init__(self):
        super().__init__(var=["t"], cond_var=["x"], name="d")
        self.net = nn.Linear(X, 1)

    def forward(self, x):
        return {"t": torch.sigmoid(self.net(x))}


def test_gan_steps_each_side_with_its_own_parameters():
    gen, disc = Generator(), Discriminator()
    p = (gen * Normal(loc=0., scale=1., var=["z"], features_shape=[Z])).marginalize_var("z")
    model = GAN(p, disc, optimizer_params={"lr": 0.01}, d_optimizer_params={"lr": 0.01})
    log = []

    def spy(opt, tag):
        step = opt.step

        def wrapped(*args, **kwargs):
            g0, d0 = _snapshot(gen), _snapshot(disc)
            out = step(*args, **kwargs)
            log.append((tag, not _same(g0, _snapshot(gen)), not _same(d0, _snapshot(disc))))
            return out
        opt.step = wrapped

    spy(model.optimizer, "generator")
    spy(model.d_optimizer, "discriminator")
    x = torch.rand(16, X)
    loss, d_loss = model.train({"x": x})
    # (tag, generator changed, discriminator changed)
    assert log == [("discriminator", False, True), ("generator", True, False)]
    assert loss.dim() == 0 and d_loss.dim() == 0
    assert bool(torch.isfinite(loss)) and bool(torch.isfinite(d_loss))
    assert all(t.grad is None for t in disc.parameters())  # nothing left for the next step
    log.clear()
    model.train({"x": x}, adversarial_loss=False)
    assert log == [("generator", True, False)]


def test_gan_refuses_a_non_finite_discriminator_step_and_changes_nothing():
    from pixyz_pyro.errors import NonFiniteError

    gen, disc = Generator(), Discriminator()
    p = (gen * Normal(loc=0., scale=1., var=["z"], features_shape=[Z])).marginalize_var("z")
    model = GAN(p, disc, optimizer_params={"lr": 0.01}, d_optimizer_params={"lr": 0.01})
    model.train({"x": torch.rand(16, X)})  # optimizer state exists
    g0, d0 = _snapshot(gen), _snapshot(disc)
    d_state = copy.deepcopy(model.d_optimizer.state_dict())
    bad = torch.rand(16, X)
    bad[3, 1] = float("nan")
    with pytest.raises(NonFiniteError, match="discriminator"):
        model.train({"x": bad})
    assert _same(g0, _snapshot(gen)) and _same(d0, _snapshot(disc))
    assert str(model.d_optimizer.state_dict()) == str(d_state)
    skipping = GAN(p, disc, d_optimizer_params={"lr": 0.01}, skip_nonfinite=True)
    skipping.train({"x": bad})
    assert skipping.skipped_steps == 1 and _same(d0, _snapshot(disc))


# --- checkpoints ----------------------------------------------------------------------------
def test_save_and_load_restore_parameters_optimizer_and_rng(tmp_path):
    q, p, prior = vae()
    model = Model(_loss(q, p, prior), distributions=[p, q], optimizer_params={"lr": 0.01})
    x = torch.rand(8, X)
    _steps(model, x, 3)
    path = str(tmp_path / "model.pt")
    model.save(path)
    saved = _snapshot(p, q)
    saved_opt = copy.deepcopy(model.optimizer.state_dict())
    later = [float(v) for v in _steps(model, x, 2)]
    later_params = _snapshot(p, q)
    model.load(path)
    assert _same(_snapshot(p, q), saved)
    assert model.step_count == 3
    state = model.optimizer.state_dict()["state"]
    for k, v in saved_opt["state"].items():
        assert all(torch.equal(v[n], state[k][n]) for n in ("exp_avg", "exp_avg_sq"))
    # RNG, parameters and optimizer state all came back: the same two steps again.
    assert [float(v) for v in _steps(model, x, 2)] == later
    assert _same(_snapshot(p, q), later_params)


def test_a_step_holds_no_parameters_of_its_evaluation_through_backward():
    """The evaluation's memo is released before backward: a factor's parameters that the
    backward does not need (a fixed-scale Normal's mean, not saved by its small composed
    score) are freed, as in hand-written code."""
    import weakref

    class Mean(Normal):
        def __init__(self):
            super().__init__(var=["x"], cond_var=["z"], scale=torch.tensor(1.0), name="p")
            self.fc = torch.nn.Linear(2, 3)
            self.seen = []

        def forward(self, z):
            loc = self.fc(z)
            self.seen.append(weakref.ref(loc))
            return {"loc": loc}

    p = Mean()
    alive = []
    p.fc.weight.register_hook(lambda g: alive.append(p.seen[-1]() is not None))
    model = Model(-LogProb(p).mean(), distributions=[p], optimizer=torch.optim.SGD,
                  optimizer_params={"lr": 0.1})
    for _ in range(2):
        model.train({"x": torch.randn(4, 3), "z": torch.randn(4, 2)})
    assert alive == [False, False]
