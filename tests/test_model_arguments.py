"""``Model`` and the presets validate their arguments at construction, and the error
names the parameter (``pixyz_pyro.model.arguments``); ``pixyz_pyro.validate_args``
holds the validators that every layer shares.

A refused construction changes nothing: the distributions' parameters and buffers are
bit-identical afterwards.
"""
import copy

import numpy as np
import pyro.optim
import pytest
import torch
from _errors_world import Decoder, Encoder, World, prior
from _state_snapshot import _bits
from torch import nn

from pixyz_pyro.dist import Deterministic, EmpiricalDistribution, Normal
from pixyz_pyro.errors import ArgumentError, ModelError
from pixyz_pyro.loss import ELBO, LogProb
from pixyz_pyro.model import GAN, ML, VAE, VI, Model, OptimizerError
from pixyz_pyro.validate_args import (
    check_one_of,
    check_optional_positive_int,
    check_positive_int,
    check_positive_number,
    check_sample_shape,
)


def _state(*modules):
    return [(n, _bits(t)) for m in modules for n, t in
            list(m.named_parameters()) + list(m.named_buffers())]


def _refused(error, build, *fragments, watch=()):
    """``build()`` raises ``error`` with every fragment, and the ``watch`` modules keep
    every bit."""
    before = _state(*watch)
    with pytest.raises(error) as info:
        build()
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"
    after = _state(*watch)
    assert [n for n, _ in before] == [n for n, _ in after]
    assert all(torch.equal(a[-1], b[-1]) and a[:-1] == b[:-1]
               for (_, a), (_, b) in zip(before, after))
    return str(info.value)


@pytest.fixture
def w():
    return World(warm=True)


# --- clipping ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["clip_grad_norm", "clip_grad_value"])
@pytest.mark.parametrize("value, shown", [(-1.0, "-1.0"), (0, "0"), (float("nan"), "nan"),
                                          (float("inf"), "inf"), ("1.0", "'1.0'"),
                                          (True, "True")])
def test_clip_thresholds_must_be_positive_numbers(w, name, value, shown):
    message = _refused(ArgumentError,
                       lambda: Model(w.loss, distributions=[w.p, w.q], **{name: value}),
                       f"Model: {name} must be a positive number, got {shown}",
                       "None turns clipping off", watch=[w.p, w.q])
    if name == "clip_grad_norm":
        assert "gradient ascent" in message


@pytest.mark.parametrize("preset", ["VAE", "ML"])
def test_presets_validate_clip_thresholds_too(w, preset):
    build = {"VAE": lambda: VAE(w.q, w.p, regularizer=None, clip_grad_norm=-5),
             "ML": lambda: ML(w.p, clip_grad_value=-1)}[preset]
    _refused(ArgumentError, build, "must be a positive number, got -", watch=[w.p, w.q])


def test_a_positive_clip_threshold_trains(w):
    model = Model(w.loss, distributions=[w.p, w.q], clip_grad_norm=1e-3,
                  clip_grad_value=1.0, optimizer=torch.optim.SGD,
                  optimizer_params={"lr": 1.0})
    before = [p.detach().clone() for p in model._params]
    model.train({"x": w.x})
    step = torch.cat([(p.detach() - b).reshape(-1) for p, b in zip(model._params, before)])
    assert 0 < float(step.norm()) <= 1e-3 * (1 + 1e-5)  # lr 1 times a norm of 1e-3


# --- the distributions ----------------------------------------------------------------------
def test_one_distribution_instead_of_a_list(w):
    _refused(ArgumentError, lambda: Model(w.loss, distributions=w.q),
             "Model: distributions must be a list of Distribution, got the single "
             "distribution q(z|x); wrap it in a list: distributions=[...]", watch=[w.q])


def test_distributions_passed_positionally_land_in_test_loss(w):
    _refused(ArgumentError, lambda: Model(w.loss, [w.p, w.q]),
             "Model: test_loss got a list [p(x|z), q(z|x)]: the second positional "
             "parameter of Model is test_loss; pass the distributions by keyword",
             watch=[w.p, w.q])


def test_one_distribution_passed_positionally_lands_in_test_loss(w):
    _refused(ArgumentError, lambda: Model(w.loss, w.q),
             "Model: test_loss got the distribution q(z|x): the second positional "
             "parameter of Model is test_loss", watch=[w.q])


def test_test_loss_must_be_a_loss(w):
    _refused(ArgumentError, lambda: Model(w.loss, test_loss=3.0),
             "Model: test_loss must be a pixyz_pyro loss or None, got float")


@pytest.mark.parametrize("distributions, fragment", [
    ("network", "Model: distributions[1] is a Linear, not a pixyz_pyro Distribution (a "
                "network is trained through the distribution that owns it)"),
    ("loss", "Model: distributions got a loss; the loss is the first parameter"),
    ("generator", "Model: distributions must be a list or tuple of Distribution, got "
                  "generator"),
    ("twice", "Model: distributions lists q(z|x) twice (at [0, 1])"),
])
def test_distributions_must_be_distinct_distributions(w, distributions, fragment):
    value = {"network": lambda: [w.q, nn.Linear(2, 2)], "loss": lambda: w.loss,
             "generator": lambda: (d for d in [w.q, w.p]),
             "twice": lambda: [w.q, w.q, w.p]}[distributions]()
    _refused(ArgumentError, lambda: Model(w.loss, distributions=value), fragment,
             watch=[w.p, w.q])


def test_a_listed_distribution_outside_the_loss_is_refused(w):
    unused = Normal(loc=nn.Parameter(torch.zeros(2)), scale=1.0, var=["u"], name="r")
    _refused(ArgumentError, lambda: Model(w.loss, distributions=[w.p, w.q, unused]),
             "Model: the distributions [r(u)] take no part in the loss",
             "they would get no gradient and never train",
             "pass allow_unused=True", watch=[w.p, w.q, unused])


def test_allow_unused_keeps_it_and_trains_the_others(w):
    unused = Normal(loc=nn.Parameter(torch.zeros(2)), scale=1.0, var=["u"], name="r")
    model = Model(w.loss, distributions=[w.p, w.q, unused], allow_unused=True)
    q_before = _state(w.q)
    model.train({"x": w.x})
    assert torch.equal(unused.loc, torch.zeros(2))
    assert any(not torch.equal(a[-1], b[-1]) for (_, a), (_, b) in zip(q_before, _state(w.q)))
    assert [d.prob_text for d in model.distributions] == ["p(x|z)", "q(z|x)", "r(u)"]


def test_allow_unused_must_be_a_bool(w):
    _refused(ArgumentError, lambda: Model(w.loss, distributions=[w.p], allow_unused="yes"),
             "Model: allow_unused must be True or False, got 'yes'")


def test_factors_of_a_joint_and_parts_of_a_marginal_take_part():
    """ELBO(p * prior, q) uses the joint; its factors p and prior, and a marginal's inner
    q, all take part (Pixyz lists them that way)."""
    torch.manual_seed(0)
    q, p, pr = Encoder(), Decoder(), prior()
    pr_loc = nn.Parameter(torch.zeros(2))
    pr = Normal(loc=pr_loc, scale=1.0, var=["z"], features_shape=[2], name="p_{prior}")
    model = Model(-ELBO(p * pr, q).mean(), distributions=[p, pr, q])
    model.train({"x": torch.rand(8, 4)})
    q_mg = (q * EmpiricalDistribution(["x"])).marginalize_var("x")
    Model(-LogProb(p).mean() + 0 * LogProb(q_mg).mean(), distributions=[p, q])


def test_empty_distributions_take_the_loss_s(w):
    model = Model(w.loss, distributions=[])
    assert {d.prob_text for d in model.distributions} == {"q(z|x)", "p_{prior}(z)",
                                                          "p(x|z)"}


# --- optimizers that need a closure ---------------------------------------------------------
@pytest.mark.parametrize("optimizer", [torch.optim.LBFGS,
                                       pyro.optim.PyroOptim(torch.optim.LBFGS, {"lr": 1})])
def test_an_optimizer_that_needs_a_closure_is_refused(w, optimizer):
    _refused(OptimizerError, lambda: Model(w.loss, distributions=[w.p, w.q],
                                           optimizer=optimizer),
             "Model: optimizer=torch.optim.lbfgs.LBFGS needs a closure (its step evaluates "
             "the loss several times)", "use a first-order optimizer",
             "a closure that calls loss.eval(...)", watch=[w.p, w.q])


class _D(Deterministic):
    def __init__(self):
        super().__init__(var=["t"], cond_var=["x"], name="d")
        self.net = nn.Linear(2, 1)

    def forward(self, x):
        return {"t": torch.sigmoid(self.net(x))}


def _generator():
    return Normal(loc=nn.Parameter(torch.zeros(2)), scale=1.0, var=["x"],
                  features_shape=[2])


def test_a_gan_discriminator_optimizer_that_needs_a_closure_is_refused():
    p, d = _generator(), _D()
    _refused(OptimizerError, lambda: GAN(p, d, d_optimizer=torch.optim.LBFGS),
             "GAN: d_optimizer=torch.optim.lbfgs.LBFGS needs a closure", watch=[p, d])


# --- the presets' distributions ---------------------------------------------------------------
@pytest.mark.parametrize("build, fragment", [
    (lambda w: VAE([w.q], w.p), "VAE: encoder must be a pixyz_pyro Distribution, got list; "
                                "pass one distribution here"),
    (lambda w: VAE(w.q, nn.Linear(2, 4)), "VAE: decoder must be a pixyz_pyro Distribution, "
                                          "got Linear"),
    (lambda w: VI(w.p * w.prior, None), "VI: approximate_dist must be a pixyz_pyro "
                                        "Distribution, got NoneType"),
    (lambda w: ML((w.p,)), "ML: p must be a pixyz_pyro Distribution, got tuple"),
    (lambda w: GAN(_generator(), nn.Linear(2, 1)),
     "GAN: discriminator must be a pixyz_pyro Distribution, got Linear"),
    (lambda w: ML(w.p, other_distributions=[nn.Linear(2, 2)]),
     "Model: distributions[1] is a Linear, not a pixyz_pyro Distribution"),
])
def test_presets_name_the_bad_distribution(w, build, fragment):
    _refused(ArgumentError, lambda: build(w), fragment, watch=[w.p, w.q])


# --- precision ---------------------------------------------------------------------------------
def _half_model(dtype):
    torch.manual_seed(0)

    class P(Normal):
        def __init__(self):
            super().__init__(var=["x"], cond_var=["y"], name="p")
            self.net = nn.Linear(3, 3)

        def forward(self, y):
            return {"loc": self.net(y), "scale": torch.ones_like(y)}

    p = P().to(dtype)
    return p, -LogProb(p).mean()


def test_float16_on_the_cpu_is_refused_with_what_to_use_instead():
    p, loss = _half_model(torch.float16)
    _refused(ModelError, lambda: Model(loss, distributions=[p]),
             "Model: p(x|y) has float16 parameters on the CPU (net.weight, net.bias)",
             "Use torch.bfloat16 (P.to(torch.bfloat16)) or float32", watch=[p])
    _refused(ModelError, lambda: ML(p), "float16 parameters on the CPU", watch=[p])


def test_bfloat16_keeps_training():
    p, loss = _half_model(torch.bfloat16)
    model = Model(loss, distributions=[p], optimizer_params={"lr": 1e-2})
    torch.manual_seed(1)
    y = torch.randn(64, 3, dtype=torch.bfloat16)
    x = 2 * y + 1
    first = float(model.train({"x": x, "y": y}))
    for _ in range(100):
        last = float(model.train({"x": x, "y": y}))
    assert p.net.weight.dtype == torch.bfloat16
    assert bool(torch.isfinite(p.net.weight).all()) and last < first - 0.5


# --- the shared validators ------------------------------------------------------------------------
@pytest.mark.parametrize("value", [0, -1, 1.0, True, "3", None, torch.tensor(2)])
def test_check_positive_int_refuses(value):
    with pytest.raises(ArgumentError, match="IterativeLoss: max_iter must be a positive int"):
        check_positive_int("max_iter", value, "IterativeLoss")


def test_check_positive_int_takes_integers():
    assert check_positive_int("batch_n", np.int64(3), "q.sample") == 3
    assert type(check_positive_int("batch_n", np.int64(3), "q.sample")) is int
    assert check_optional_positive_int("batch_n", None, "q.sample") is None
    with pytest.raises(ArgumentError, match="got 0"):
        check_optional_positive_int("batch_n", 0, "q.sample")


@pytest.mark.parametrize("value, expected", [(3, (3,)), ([4, 2], (4, 2)), ((), ()),
                                             (torch.Size([5]), (5,))])
def test_check_sample_shape_takes(value, expected):
    assert check_sample_shape("sample_shape", value, "Expectation") == torch.Size(expected)


@pytest.mark.parametrize("value, fragment", [
    (0, "must have positive sizes, got 0 (a size of 0 draws no samples)"),
    ([4, -1], "must have positive sizes, got [4, -1] (a size of -1 draws no samples)"),
    (2.0, "must be an int or a tuple of ints (a torch.Size), got 2.0"),
    ([2, "a"], "must be an int or a tuple of ints"),
    (torch.ones(2), "got a tensor of shape (2,)"),
])
def test_check_sample_shape_refuses(value, fragment):
    with pytest.raises(ArgumentError) as info:
        check_sample_shape("sample_shape", value, "Expectation(q, f)")
    assert str(info.value).startswith("Expectation(q, f): sample_shape ")
    assert fragment in str(info.value)


def test_check_positive_number_and_one_of():
    assert check_positive_number("sigma", 2, "MMD") == 2.0
    with pytest.raises(ArgumentError, match=r"MMD: sigma must be a positive number, got -2 "
                                            r"\(a hint\)"):
        check_positive_number("sigma", -2, "MMD", " (a hint)")
    assert check_one_of("kernel", "gaussian", ("gaussian", "inv-multiquadratic"), "MMD")
    with pytest.raises(ArgumentError, match=r"MMD: kernel must be one of \['gaussian'\], "
                                            r"got 'rbf'"):
        check_one_of("kernel", "rbf", ("gaussian",), "MMD")


def test_a_refused_construction_leaves_a_deep_copy_equal(w):
    """The trained model beside it is untouched too (nothing global changes)."""
    before = copy.deepcopy(w.model.optimizer.state_dict())
    with pytest.raises(ArgumentError):
        Model(w.loss, distributions=[w.p, w.q], clip_grad_norm=-1)
    after = w.model.optimizer.state_dict()
    assert before["param_groups"] == after["param_groups"]
    assert all(torch.equal(before["state"][k][e], after["state"][k][e])
               for k in before["state"] for e in before["state"][k])


# --- the losses outside the evaluation core ------------------------------------------------------
def test_mmd_validates_its_kernel_and_bandwidth(w):
    from pixyz_pyro.loss import MMD

    with pytest.raises(ArgumentError, match=r"MMD: kernel must be one of \['gaussian', "
                                            r"'inv-multiquadratic'\], got 'rbf'"):
        MMD(w.q, w.prior, kernel="rbf")
    with pytest.raises(ArgumentError, match="MMD: sigma_sqr must be a positive number, "
                                            "got -1.0"):
        MMD(w.q, w.prior, sigma_sqr=-1.0)


def test_wasserstein_clip_value_must_be_positive():
    from pixyz_pyro.loss import AdversarialWassersteinDistance

    p = _generator()
    with pytest.raises(ArgumentError, match=r"AdversarialWassersteinDistance: clip_value "
                                            r"must be a positive number, got -0.01 \(the "
                                            r"critic's weights are clamped"):
        AdversarialWassersteinDistance(EmpiricalDistribution(["x"]), p, _D(),
                                       clip_value=-0.01)
