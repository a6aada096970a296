"""Joints: products, ancestral sampling, replace_var, marginalize_var, memoised forward."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from pixyz_pyro.dist import (
    Deterministic,
    MarginalizeVarDistribution,
    MultiplyDistribution,
    Normal,
    ReplaceVarDistribution,
)
from pixyz_pyro.loss import ELBO, Expectation, KullbackLeibler, LogProb

LOG2PI = math.log(2 * math.pi)


def normal_lp(x, mu, sigma):
    return (-0.5 * ((x - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * LOG2PI).sum(-1)


def chain():
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2], name="p_prior")
    p = Normal(loc="z", scale=0.5, var=["x"], cond_var=["z"])
    return p, prior


def test_product_text_and_variables():
    p, prior = chain()
    joint = p * prior
    assert isinstance(joint, MultiplyDistribution)
    assert joint.var == ["x", "z"] and joint.cond_var == []
    assert joint.prob_joint_factorized_and_text == "p(x,z) = p(x|z)p_{prior}(z)"
    cond = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z", "y"]) * prior
    assert cond.var == ["x", "z"] and cond.cond_var == ["y"]
    assert cond.prob_text == "p(x,z|y)"


def test_joint_log_prob_is_the_sum_of_its_factors():
    p, prior = chain()
    joint = p * prior
    x, z = torch.randn(5, 2), torch.randn(5, 2)
    expect = normal_lp(x, z, 0.5) + normal_lp(z, 0.0, 1.0)
    got = joint.get_log_prob({"x": x, "z": z})
    assert torch.allclose(got, expect, atol=1e-5)
    assert torch.allclose(got, p.get_log_prob({"x": x, "z": z})
                          + prior.get_log_prob({"z": z}), atol=1e-6)
    assert torch.allclose(LogProb(joint).eval({"x": x, "z": z}), expect, atol=1e-5)


def test_ancestral_sampling_respects_dependencies():
    """x = z + tiny noise: every sampled x sits on its own z, in any product order."""
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[3])
    p = Normal(loc="z", scale=1e-4, var=["x"], cond_var=["z"])
    h = Normal(loc="x", scale=1e-4, var=["y"], cond_var=["x"])
    for joint in (h * p * prior, prior * p * h, p * (prior * h)):
        s = joint.sample(batch_n=200)
        assert s["z"].shape == s["x"].shape == s["y"].shape == (200, 3)
        assert (s["x"] - s["z"]).abs().max() < 1e-3
        assert (s["y"] - s["z"]).abs().max() < 2e-3
        assert float(s["z"].std()) > 0.5  # z itself is random
    s = (p * prior).sample(batch_n=2, sample_shape=[5])
    assert s["z"].shape == (5, 2, 3) and (s["x"] - s["z"]).abs().max() < 1e-3


def test_conditional_joint_samples_given_its_input():
    q = Normal(loc="y", scale=1e-4, var=["z"], cond_var=["y"])
    p = Normal(loc="z", scale=1e-4, var=["x"], cond_var=["z"])
    y = torch.tensor([[3.0], [-7.0]])
    s = (p * q).sample({"y": y})
    assert torch.allclose(s["x"], y, atol=1e-3) and s["y"] is y


def test_deterministic_factor_in_a_joint():
    class Double(Deterministic):
        def __init__(self):
            super().__init__(var=["h"], cond_var=["z"], name="f")

        def forward(self, z):
            return {"h": 2 * z}

    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2])
    s = (Double() * prior).sample(batch_n=4)
    assert torch.equal(s["h"], 2 * s["z"])


def test_replace_var_returns_a_new_distribution_and_leaves_the_original():
    p = Normal(loc="z", scale=0.5, var=["x"], cond_var=["z"])
    r = p.replace_var(z="y", x="w")
    assert isinstance(r, ReplaceVarDistribution) and r is not p
    assert r.var == ["w"] and r.cond_var == ["y"] and r.prob_text == "p(w|y)"
    assert p.var == ["x"] and p.cond_var == ["z"] and p.prob_text == "p(x|z)"
    x, z = torch.randn(3, 2), torch.randn(3, 2)
    assert torch.allclose(r.get_log_prob({"w": x, "y": z}),
                          p.get_log_prob({"x": x, "z": z}))
    assert torch.allclose(r.get_log_prob({"w": x, "y": z}), normal_lp(x, z, 0.5), atol=1e-5)
    s = r.sample({"y": z})
    assert set(s) == {"y", "w"}
    # the renamed distribution shares the original's networks (one set of parameters)
    q = nn.Linear(2, 2)
    enc = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"])
    enc.net = q
    assert list(enc.replace_var(z="y").parameters())[0] is q.weight


def test_replace_var_of_a_joint_renames_inside_the_product():
    p, prior = chain()
    joint = (p * prior).replace_var(z="u")
    assert joint.prob_text == "p(x,u)"
    s = joint.sample(batch_n=3)
    assert set(s) == {"x", "u"}
    assert torch.allclose(joint.get_log_prob(s), normal_lp(s["x"], s["u"], 0.5)
                          + normal_lp(s["u"], 0.0, 1.0), atol=1e-5)


def test_marginalize_var_returns_a_new_distribution_and_leaves_the_original():
    p, prior = chain()
    joint = p * prior
    m = joint.marginalize_var(["z"])
    assert isinstance(m, MarginalizeVarDistribution) and m is not joint
    assert m.var == ["x"] and joint.var == ["x", "z"]
    assert m.prob_joint_factorized_and_text == "p(x) = \\int p(x|z)p_{prior}(z)dz"
    s = m.sample(batch_n=4000)
    assert set(s) == {"x"}
    # p(x) = N(0, 1 + 0.25): the marginal's draws have that variance
    assert abs(float(s["x"].var()) - 1.25) < 0.1


class CountingEncoder(Normal):
    """q(z|x) that counts its forward calls."""

    def __init__(self):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.fc = nn.Linear(3, 4)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        loc, s = self.fc(x).chunk(2, -1)
        return {"loc": loc, "scale": F.softplus(s)}


def test_forward_runs_once_per_distinct_input_in_one_evaluation():
    q = CountingEncoder()
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2], name="p_prior")
    dec = _Decoder()
    x = torch.randn(6, 3)
    # q appears twice (in the KL and as the expectation's sampler): one forward
    loss = (KullbackLeibler(q, prior) - Expectation(q, LogProb(dec))).mean()
    value = loss.eval({"x": x})
    assert q.calls == 1 and torch.isfinite(value)
    loss.eval({"x": x})
    assert q.calls == 2  # nothing is cached across evaluations
    # the ELBO scores q(z|x) on its own draws: still one call, also with 3 particles
    q.calls = 0
    ELBO(dec * prior, q, sample_shape=[3]).eval({"x": x})
    assert q.calls == 1
    # two different inputs are two calls
    q.calls = 0
    (KullbackLeibler(q, prior) + KullbackLeibler(q.replace_var(x="x2"), prior)).eval(
        {"x": x, "x2": x.clone()})
    assert q.calls == 2


class _Decoder(Normal):
    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.fc = nn.Linear(2, 3)

    def forward(self, z):
        return {"loc": self.fc(z), "scale": torch.ones(1, 3)}


def test_memoised_forward_gives_the_same_value_as_separate_calls():
    q = CountingEncoder()
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2], name="p_prior")
    x = torch.randn(4, 3)
    kl_alone = KullbackLeibler(q, prior).eval({"x": x})
    both = (KullbackLeibler(q, prior) + KullbackLeibler(q, prior)).eval({"x": x})
    assert torch.allclose(both, 2 * kl_alone)
    loc, s = q.fc(x).chunk(2, -1)
    s = F.softplus(s)
    kl = (-s.log() + 0.5 * (s ** 2 + loc ** 2) - 0.5).sum(-1)
    assert torch.allclose(kl_alone, kl, atol=1e-5)
