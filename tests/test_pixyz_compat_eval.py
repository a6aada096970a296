"""Pixyz's evaluation conventions: feature_dims, sample dimensions in scored values, the
order of get_params, unnormalised class probabilities, the values of constant losses,
sample_mean / batch_n / test_mode in eval, the analytic cross-entropy, and the mixture
posterior scored given x alone."""
import math

import pytest
import torch

from pixyz_pyro.dist import Categorical, FactorizedBernoulli, MixtureModel, Normal
from pixyz_pyro.errors import KeywordError, SupportError
from pixyz_pyro.loss import (
    ConstantVar,
    CrossEntropy,
    Entropy,
    Expectation,
    KullbackLeibler,
    LogProb,
    MaxLoss,
    MinLoss,
    Parameter,
    ValueLoss,
)

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


# --- feature_dims and sample dimensions ------------------------------------------------------
def test_empty_feature_dims_sums_nothing():
    p = Normal(loc=0., scale=1., var=["x"])
    x = torch.zeros(2, 3, 4)
    lp = p.get_log_prob({"x": x}, sum_features=True, feature_dims=[])
    assert torch.allclose(lp, torch.full((2, 3, 4), -LOG_SQRT_2PI))
    assert p.get_log_prob({"x": x}, feature_dims=[-2]).shape == (2, 4)
    assert p.get_log_prob({"x": x}, feature_dims=[0, 1]).shape == (4,)
    assert p.get_log_prob({"x": x}).shape == (2,)  # every dimension after the first


def test_empty_kl_dim_is_the_default_sum():
    p = Normal(loc=1., scale=1., var=["z"], features_shape=[3])
    q = Normal(loc=0., scale=1., var=["z"], features_shape=[3])
    assert torch.allclose(KullbackLeibler(p, q, dim=[]).eval(), torch.tensor([1.5]))


def test_a_joint_scores_its_own_draws_with_sample_dimensions():
    p = (Normal(loc="y", scale=1., var=["x"], cond_var=["y"])
         * FactorizedBernoulli(probs=torch.tensor([0.3, 0.8]), var=["y"]))
    p.graph.set_option(dict(batch_n=3, sample_shape=(4,)), ["y"])
    s = p.sample()
    p.graph.set_option({}, ["y"])
    assert s["y"].shape == (4, 3, 2)
    lp = p.get_log_prob(s, feature_dims=[-1])
    y, x = s["y"], s["x"]
    pi = torch.tensor([0.3, 0.8])
    by_hand = (torch.where(y == 1, pi.log(), torch.zeros(())) + (
        -(x - y) ** 2 / 2 - LOG_SQRT_2PI)).sum(-1)
    assert lp.shape == (4, 3) and torch.allclose(lp, by_hand)


def test_sample_dimensions_do_not_hide_a_feature_mismatch():
    p = Normal(loc=torch.zeros(2), scale=1., var=["x"])
    from pixyz_pyro.errors import ShapeError
    with pytest.raises(ShapeError, match="features never broadcast"):
        p.get_log_prob({"x": torch.zeros(4, 3, 1)})


# --- parameters ------------------------------------------------------------------------------
def test_get_params_lists_the_family_order():
    p = Normal(var=["x"], cond_var=["y"], loc="y", scale=1.)
    assert list(p.get_params({"y": torch.ones(1, 1)})) == ["loc", "scale"]
    assert list(p.replace_var(y="z").get_params({"z": torch.ones(1, 1)})) == ["loc", "scale"]


def test_unnormalised_class_probabilities_are_normalised():
    c = Categorical(probs=torch.tensor([1., 3.]), var=["y"])
    assert torch.allclose(c.get_log_prob({"y": torch.tensor([[0., 1.]])}),
                          torch.tensor([math.log(0.75)]))
    m = MixtureModel([Normal(loc=0., scale=1.), Normal(loc=1., scale=1.)],
                     Categorical(probs=torch.tensor([1., 2.]), var=["z"]))
    assert torch.equal(m.sample(sample_mean=True)["x"], torch.ones(1))
    with pytest.raises(SupportError, match="must be non-negative with a positive sum"):
        Categorical(probs=torch.tensor([-1., 2.]), var=["y"]).sample()


# --- constants --------------------------------------------------------------------------------
def test_constant_losses_evaluate_to_float_tensors():
    assert str(ValueLoss(2)) == "2"
    v = ValueLoss(2).eval()
    assert isinstance(v, torch.Tensor) and v.dtype == torch.float32 and float(v) == 2.0
    assert torch.equal((ValueLoss(2) + Parameter("x")).eval({"x": 3}), torch.tensor(5.))
    assert torch.equal((ValueLoss(2) / Parameter("x")).eval({"x": 4}), torch.tensor(0.5))
    assert torch.equal(MinLoss(ValueLoss(3), ValueLoss(1)).eval(), torch.tensor(1.))
    assert torch.equal(MaxLoss(ValueLoss(3), ValueLoss(1)).eval(), torch.tensor(3.))


def test_constant_var_passes_values_as_given():
    assert Parameter("x").constant_var({"x": 1}).eval() == 1
    p = Normal(loc="y", scale=1., var=["x"], cond_var=["y"])
    loss = ConstantVar(LogProb(p), {"y": 1.})
    assert torch.allclose(loss.eval({"x": torch.zeros(2, 1)}),
                          torch.full((2,), -0.5 - LOG_SQRT_2PI))


# --- evaluation keywords ------------------------------------------------------------------------
def test_sample_mean_plugs_in_the_mean():
    q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"])
    p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"])
    e = Expectation(q, LogProb(p), sample_shape=(5,))
    x = torch.randn(3, 1)
    assert torch.allclose(e.eval({"x": x}, sample_mean=True), torch.full((3,), -LOG_SQRT_2PI))


def test_batch_n_sets_the_draws_of_an_unconditioned_distribution():
    p = Normal(loc=0., scale=1., var=["x"])
    assert Expectation(p, LogProb(p)).eval(batch_n=5).shape == (5,)
    with pytest.raises(KeywordError, match='did you mean "batch_n"'):
        Expectation(p, LogProb(p)).eval(batch_sizes=5)  # batch_size: test_pixyz_compat_batch_size


def test_model_train_and_test_refuse_eval_return_keywords_without_contradiction():
    """``Model.train``/``test`` return the loss: ``return_dict`` is refused, with a pointer
    to ``loss.eval``, and never listed among the keywords they accept."""
    from pixyz_pyro.model import Model
    p = Normal(loc=torch.nn.Parameter(torch.zeros(1)), scale=1., var=["x"])
    model = Model(-LogProb(p).mean(), distributions=[p])
    for call in (model.train, model.test):
        for k in ("return_dict", "return_all", "return_terms"):
            with pytest.raises(KeywordError) as e:
                call({"x": torch.zeros(4, 1)}, **{k: True})
            text = str(e.value)
            assert f"use loss.eval(..., {k}=True)" in text and "did you mean" not in text
            assert "'return_dict'" not in text.split("accepts")[1]
    value, samples = (-LogProb(p).mean()).eval({"x": torch.zeros(4, 1)}, return_dict=True)
    assert samples["x"].shape == (4, 1)


class _Dropout(Normal):
    def __init__(self):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, x):
        return {"loc": self.drop(x), "scale": torch.ones_like(x)}


def test_test_mode_evaluates_in_eval_mode_without_gradients():
    q = _Dropout()
    loss = LogProb(q)
    x = {"x": torch.ones(4, 100), "z": torch.ones(4, 100)}
    value = loss.eval(x, test_mode=True)
    assert torch.allclose(value, torch.full((4,), -100 * LOG_SQRT_2PI))
    assert not value.requires_grad
    assert q.training and q.drop.training  # restored


# --- cross-entropy, entropy ----------------------------------------------------------------------
def test_analytic_cross_entropy_is_entropy_plus_kl():
    p = Normal(loc=0., scale=1., var=["x"], features_shape=[64], name="p")
    q = Normal(loc=1., scale=1., var=["x"], features_shape=[64], name="q")
    h = CrossEntropy(p, q, analytical=True)
    assert str(h) == r"D_{KL} \left[p(x)||q(x) \right] + H \left[ {p(x)} \right]"
    assert torch.allclose(h.eval(), torch.tensor([64 * (LOG_SQRT_2PI + 1.0)]))
    assert str(CrossEntropy(p, q)) == r"- \mathbb{E}_{p(x)} \left[\log q(x) \right]"


def test_entropy_takes_analytical_second_as_in_pixyz():
    p = Normal(loc=0., scale=1., var=["x"])
    assert str(Entropy(p, False)) == r"- \mathbb{E}_{p(x)} \left[\log p(x) \right]"


# --- mixtures -------------------------------------------------------------------------------------
def test_mixture_posterior_given_x_alone_is_the_responsibility_table():
    locs = [-2., 0., 3.]
    comps = [Normal(loc=torch.tensor([m]), scale=torch.ones(1), var=["x"], name=f"p_{i}")
             for i, m in enumerate(locs)]
    pi = torch.tensor([0.2, 0.3, 0.5])
    p = MixtureModel(comps, Categorical(probs=pi, var=["z"], name="prior"))
    x = torch.tensor([[-1.], [0.5], [2.]])
    r = p.posterior().prob().eval({"x": x})
    joint = torch.stack([pi[k].log() - (x[:, 0] - m) ** 2 / 2 for k, m in enumerate(locs)])
    assert r.shape == (3, 3) and torch.allclose(r, torch.softmax(joint, 0), atol=1e-6)


# --- IterativeLoss -----------------------------------------------------------------------------
def test_iterative_loss_equals_the_hand_written_loop_under_one_seed():
    """The step's expectation draws z afresh at every step: the z of the previous step,
    carried in the state, is not a draw of q (VRNN)."""
    from torch import nn

    from pixyz_pyro.dist import Bernoulli, Deterministic
    from pixyz_pyro.loss import IterativeLoss

    class Dec(Bernoulli):
        def __init__(self):
            super().__init__(var=["x"], cond_var=["z", "h_prev"])
            self.fc = nn.Linear(5, 4)

        def forward(self, z, h_prev):
            return {"probs": torch.sigmoid(self.fc(torch.cat((z, h_prev), -1)))}

    class Enc(Normal):
        def __init__(self):
            super().__init__(var=["z"], cond_var=["x", "h_prev"], name="q")
            self.fc = nn.Linear(7, 2)

        def forward(self, x, h_prev):
            return {"loc": self.fc(torch.cat((x, h_prev), -1)), "scale": torch.ones(1, 2)}

    class Rec(Deterministic):
        def __init__(self):
            super().__init__(var=["h"], cond_var=["x", "z", "h_prev"])
            self.cell = nn.GRUCell(6, 3)

        def forward(self, x, z, h_prev):
            return {"h": self.cell(torch.cat((z, x), -1), h_prev)}

    torch.manual_seed(0)
    dec, enc, rec = Dec(), Enc(), Rec()
    prior = Normal(loc=0., scale=1., var=["z"], features_shape=[2])
    step = (-dec.log_prob().expectation(enc * rec) + KullbackLeibler(enc, prior)).mean()
    loss = IterativeLoss(step, max_iter=4, series_var=["x"], update_value={"h": "h_prev"})
    x, h0 = torch.bernoulli(torch.full((4, 2, 4), 0.5)), torch.zeros(2, 3)
    torch.manual_seed(1)
    value = loss.eval({"x": x, "h_prev": h0})
    torch.manual_seed(1)
    h, by_hand = h0, 0
    for t in range(4):
        v, out = step.eval({"x": x[t], "h_prev": h}, return_dict=True)
        by_hand, h = by_hand + v, out["h"]
    torch.testing.assert_close(value, by_hand)
