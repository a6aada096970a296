"""Every family against hand-written closed forms: log-density, entropy, mean, variance.

The formulas are written out here with ``math``/``torch.lgamma``/``torch.digamma`` only,
so a wrong parameter mapping in the family table cannot agree with itself.
"""
import itertools
import math

import pyro.distributions as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pixyz_pyro.dist import (
    Bernoulli,
    Beta,
    Categorical,
    Dirichlet,
    FactorizedBernoulli,
    Gamma,
    Laplace,
    Multinomial,
    Normal,
    RelaxedBernoulli,
    RelaxedCategorical,
    lift,
)

LOG2PI = math.log(2 * math.pi)


def close(a, b, tol=1e-5):
    a, b = torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)
    assert a.shape == b.shape or a.numel() == b.numel(), (a.shape, b.shape)
    assert torch.allclose(a.reshape(b.shape), b, atol=tol, rtol=tol), (a, b)


def lbeta(*alphas):
    a = torch.stack([torch.as_tensor(x, dtype=torch.float32) for x in alphas])
    return torch.lgamma(a).sum(0) - torch.lgamma(a.sum(0))


# --- Normal -------------------------------------------------------------------------------

def test_normal_closed_forms():
    mu, sigma = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([1.5, 0.3, 2.0])
    p = Normal(loc=mu, scale=sigma, var=["x"])
    x = torch.tensor([[0.1, -0.7, 4.0], [1.0, 0.0, -2.0]])
    expect = (-0.5 * ((x - mu) / sigma) ** 2 - sigma.log() - 0.5 * LOG2PI).sum(-1)
    close(p.get_log_prob({"x": x}), expect)
    close(p.get_entropy(), (0.5 + 0.5 * LOG2PI + sigma.log()).sum().reshape(1))
    close(p.sample_mean(), mu.reshape(1, 3))
    close(p.sample_variance(), (sigma ** 2).reshape(1, 3))
    assert p.distribution_name == "Normal" and p.has_reparam


# --- Bernoulli and relatives ----------------------------------------------------------------

def bernoulli_lp(x, probs):
    return x * probs.log() + (1 - x) * (1 - probs).log()


def bernoulli_entropy(probs):
    return -(probs * probs.log() + (1 - probs) * (1 - probs).log())


@pytest.mark.parametrize("family", [Bernoulli, RelaxedBernoulli])
def test_bernoulli_scores_grey_levels(family):
    """Grey-level targets in [0, 1]: log p(x) = x log p + (1 - x) log(1 - p)."""
    probs = torch.tensor([0.2, 0.7, 0.9, 0.5])
    p = family(probs=probs, var=["x"])
    x = torch.tensor([[0.0, 0.25, 1.0, 0.6], [1.0, 0.5, 0.1, 0.0]])
    close(p.get_log_prob({"x": x}), bernoulli_lp(x, probs).sum(-1))
    close(p.get_log_prob({"x": x}, sum_features=False), bernoulli_lp(x, probs))
    close(p.get_entropy(), bernoulli_entropy(probs).sum().reshape(1))
    close(p.sample_mean(), probs.reshape(1, 4))
    close(p.sample_variance(), (probs * (1 - probs)).reshape(1, 4))


def test_bernoulli_samples_are_binary_with_the_right_frequency():
    probs = torch.tensor([0.1, 0.5, 0.8])
    x = Bernoulli(probs=probs, var=["x"]).sample(batch_n=4000)["x"]
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    se = (probs * (1 - probs) / 4000).sqrt()
    assert ((x.mean(0) - probs).abs() < 4 * se).all()


def test_bernoulli_logits_parameter():
    logits = torch.tensor([-1.0, 0.5])
    p = Bernoulli(logits=logits, var=["x"])
    x = torch.tensor([[1.0, 0.3]])
    close(p.get_log_prob({"x": x}), bernoulli_lp(x, torch.sigmoid(logits)).sum(-1))


def test_factorized_bernoulli_scores_only_nonzero_elements():
    probs = torch.tensor([0.2, 0.7, 0.9, 0.4])
    p = FactorizedBernoulli(probs=probs, var=["x"])
    x = torch.tensor([[0.0, 1.0, 0.4, 0.0], [1.0, 0.0, 1.0, 1.0]])
    expect = (bernoulli_lp(x, probs) * (x != 0)).sum(-1)
    close(p.get_log_prob({"x": x}), expect)
    # the row [1, 0, 1, 1] scores log .2 + log .9 + log .4 and ignores the zero
    close(p.get_log_prob({"x": x})[1], math.log(0.2) + math.log(0.9) + math.log(0.4))
    close(p.get_entropy(), bernoulli_entropy(probs).sum().reshape(1))
    close(p.sample_mean(), probs.reshape(1, 4))
    close(p.sample_variance(), (probs * (1 - probs)).reshape(1, 4))


# --- Categorical, relaxed categorical, multinomial -------------------------------------------

@pytest.mark.parametrize("family", [Categorical, RelaxedCategorical])
def test_categorical_closed_forms(family):
    pi = torch.tensor([0.2, 0.3, 0.5])
    p = family(probs=pi, var=["y"])
    y = F.one_hot(torch.tensor([0, 2, 1, 2]), 3).float()
    close(p.get_log_prob({"y": y}), (y * pi.log()).sum(-1))
    close(p.get_log_prob({"y": y}), pi.log()[torch.tensor([0, 2, 1, 2])])
    close(p.get_entropy(), -(pi * pi.log()).sum().reshape(1))
    close(p.sample_mean(), pi.reshape(1, 3))
    close(p.sample_variance(), (pi * (1 - pi)).reshape(1, 3))


def test_categorical_samples_are_one_hot_with_the_right_frequency():
    pi = torch.tensor([0.2, 0.3, 0.5])
    y = Categorical(probs=pi, var=["y"]).sample(batch_n=4000)["y"]
    assert ((y == 0) | (y == 1)).all() and (y.sum(-1) == 1).all()
    se = (pi * (1 - pi) / 4000).sqrt()
    assert ((y.mean(0) - pi).abs() < 4 * se).all()


def multinomial_lp(x, n, pi):
    return (math.lgamma(n + 1) - torch.lgamma(x + 1).sum(-1) + (x * pi.log()).sum(-1))


def test_multinomial_closed_forms():
    n, pi = 2, torch.tensor([0.2, 0.3, 0.5])
    p = Multinomial(total_count=n, probs=pi, var=["x"])
    x = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    close(p.get_log_prob({"x": x}), multinomial_lp(x, n, pi))
    close(p.get_log_prob({"x": x})[1], 2 * math.log(0.5))
    # entropy by enumerating the six count vectors that sum to 2
    support = [torch.tensor(c, dtype=torch.float32)
               for c in itertools.product(range(n + 1), repeat=3) if sum(c) == n]
    probs = torch.stack([multinomial_lp(c, n, pi).exp() for c in support])
    close(probs.sum(), 1.0)
    close(p.get_entropy(), -(probs * probs.log()).sum().reshape(1))
    close(p.sample_mean(), (n * pi).reshape(1, 3))
    close(p.sample_variance(), (n * pi * (1 - pi)).reshape(1, 3))
    s = p.sample(batch_n=50)["x"]
    assert (s.sum(-1) == n).all() and (s >= 0).all()


# --- continuous families with lgamma/digamma forms ------------------------------------------

def test_dirichlet_closed_forms():
    a = torch.tensor([1.5, 2.0, 3.0])
    a0, k = a.sum(), 3
    p = Dirichlet(concentration=a, var=["x"])
    x = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    expect = torch.lgamma(a0) - torch.lgamma(a).sum() + ((a - 1) * x.log()).sum(-1)
    close(p.get_log_prob({"x": x}), expect)
    ent = (lbeta(*a) + (a0 - k) * torch.digamma(a0) - ((a - 1) * torch.digamma(a)).sum())
    close(p.get_entropy(), ent.reshape(1))
    close(p.sample_mean(), (a / a0).reshape(1, 3))
    close(p.sample_variance(), (a * (a0 - a) / (a0 ** 2 * (a0 + 1))).reshape(1, 3))


def test_beta_closed_forms():
    a, b = 2.0, 3.0
    p = Beta(concentration1=a, concentration0=b, var=["x"])
    x = torch.tensor([0.3, 0.8])
    expect = (a - 1) * x.log() + (b - 1) * (1 - x).log() - lbeta(a, b)
    close(p.get_log_prob({"x": x}), expect)
    dg = torch.digamma
    ent = (lbeta(a, b) - (a - 1) * dg(torch.tensor(a)) - (b - 1) * dg(torch.tensor(b))
           + (a + b - 2) * dg(torch.tensor(a + b)))
    close(p.get_entropy(), ent.reshape(1))
    close(p.sample_mean(), torch.tensor([a / (a + b)]))
    close(p.sample_variance(), torch.tensor([a * b / ((a + b) ** 2 * (a + b + 1))]))


def test_laplace_closed_forms():
    mu, b = 1.0, 2.0
    p = Laplace(loc=mu, scale=b, var=["x"])
    x = torch.tensor([0.3, -4.0, 1.0])
    close(p.get_log_prob({"x": x}), -math.log(2 * b) - (x - mu).abs() / b)
    close(p.get_entropy(), torch.tensor([1 + math.log(2 * b)]))
    close(p.sample_mean(), torch.tensor([mu]))
    close(p.sample_variance(), torch.tensor([2 * b ** 2]))


def test_gamma_closed_forms():
    k, rate = 2.5, 3.0
    p = Gamma(concentration=k, rate=rate, var=["x"])
    x = torch.tensor([0.3, 1.7])
    expect = k * math.log(rate) + (k - 1) * x.log() - rate * x - math.lgamma(k)
    close(p.get_log_prob({"x": x}), expect)
    ent = k - math.log(rate) + math.lgamma(k) + (1 - k) * torch.digamma(torch.tensor(k))
    close(p.get_entropy(), ent.reshape(1))
    close(p.sample_mean(), torch.tensor([k / rate]))
    close(p.sample_variance(), torch.tensor([k / rate ** 2]))


def test_continuous_samples_match_their_moments():
    """sample_shape draws are independent: their mean and variance match the formulas."""
    for p, mean, var in [(Gamma(concentration=2.5, rate=3.0, var=["x"]), 2.5 / 3, 2.5 / 9),
                         (Laplace(loc=1.0, scale=2.0, var=["x"]), 1.0, 8.0),
                         (Beta(concentration1=2.0, concentration0=3.0, var=["x"]), 0.4, 0.04)]:
        x = p.sample(sample_shape=[4000])["x"].flatten()
        assert x.numel() == 4000
        assert abs(float(x.mean()) - mean) < 4 * math.sqrt(var / 4000)
        assert abs(float(x.var()) - var) < 0.15 * var


# --- relaxed families: reparameterised samples, hard scoring ---------------------------------

class _RelaxedEncoder(RelaxedCategorical):
    def __init__(self):
        super().__init__(var=["y"], cond_var=["x"], name="q", temperature=torch.tensor(0.5))
        self.fc = nn.Linear(2, 4)

    def forward(self, x):
        return {"probs": F.softmax(self.fc(x), -1)}


class _RelaxedBernoulliEncoder(RelaxedBernoulli):
    def __init__(self):
        super().__init__(var=["y"], cond_var=["x"], name="q", temperature=torch.tensor(0.5))
        self.fc = nn.Linear(2, 4)

    def forward(self, x):
        return {"probs": torch.sigmoid(self.fc(x))}


@pytest.mark.parametrize("cls", [_RelaxedEncoder, _RelaxedBernoulliEncoder])
def test_relaxed_samples_are_reparameterised(cls):
    q = cls()
    assert q.has_reparam
    x = torch.randn(64, 2)
    y = q.sample({"x": x}, reparam=True)["y"]
    assert y.requires_grad
    # relaxed: strictly inside the unit interval / simplex, not hard 0/1 values
    assert ((y > 0) & (y < 1)).float().mean() > 0.5
    if cls is _RelaxedEncoder:
        close(y.sum(-1), torch.ones(64), tol=1e-4)
    (y * torch.arange(4.0)).sum().backward()
    assert q.fc.weight.grad.abs().sum() > 0


def test_relaxed_categorical_nll_of_one_hot_labels_is_finite_and_hard():
    q = _RelaxedEncoder()
    x = torch.randn(5, 2)
    labels = torch.tensor([0, 3, 1, 1, 2])
    y = F.one_hot(labels, 4).float()
    lp = q.get_log_prob({"x": x, "y": y})
    assert torch.isfinite(lp).all()
    probs = q.get_params({"x": x})["probs"]
    close(lp, probs.log().gather(1, labels[:, None]).squeeze(1))


def test_relaxed_bernoulli_hard_nll_of_binary_targets_is_finite():
    q = _RelaxedBernoulliEncoder()
    x = torch.randn(5, 2)
    y = torch.tensor([[0.0, 1.0, 1.0, 0.0]]).expand(5, 4)
    lp = q.get_log_prob({"x": x, "y": y})
    probs = q.get_params({"x": x})["probs"]
    assert torch.isfinite(lp).all()
    close(lp, bernoulli_lp(y, probs).sum(-1))


# --- lift ---------------------------------------------------------------------------------------

def test_lift_student_t():
    StudentT = lift(pd.StudentT, params=("df", "loc", "scale"))
    nu, mu, s = 4.0, 0.5, 2.0
    p = StudentT(df=nu, loc=mu, scale=s, var=["x"])
    assert p.distribution_name == "StudentT" and p.has_reparam
    x = torch.tensor([0.0, 3.0, -1.5])
    z = (x - mu) / s
    expect = (math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
              - math.log(s) - (nu + 1) / 2 * torch.log1p(z ** 2 / nu))
    close(p.get_log_prob({"x": x}), expect)
    close(p.sample_mean(), torch.tensor([mu]))
    close(p.sample_variance(), torch.tensor([s ** 2 * nu / (nu - 2)]))
    draws = p.sample(batch_n=3, sample_shape=[2])["x"]
    assert draws.shape == (2, 3)


def test_lift_default_parameter_names_come_from_arg_constraints():
    LogNormal = lift(pd.LogNormal)
    p = LogNormal(loc=0.0, scale=1.0, var=["x"])
    x = torch.tensor([0.5, 2.0])
    close(p.get_log_prob({"x": x}),
          -x.log() - 0.5 * LOG2PI - 0.5 * x.log() ** 2)


# --- parameters: constants, bound variables, networks ---------------------------------------

def test_constant_parameters_become_buffers_of_batch_one():
    p = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[64])
    buffers = dict(p.named_buffers())
    assert set(buffers) == {"loc", "scale"} and not list(p.parameters())
    assert buffers["loc"].shape == (1, 64) and buffers["scale"].shape == (1, 64)
    assert float(buffers["scale"].sum()) == 64.0
    assert set(p.state_dict()) == {"loc", "scale"}
    assert p.double().loc.dtype == torch.float64


def test_tensor_constants_infer_features_shape():
    p = Normal(loc=torch.zeros(2, 3), scale=torch.ones(3), var=["x"])
    assert p.features_shape == (2, 3)
    assert p.loc.shape == (1, 2, 3) and p.scale.shape == (1, 2, 3)


def test_string_parameters_bind_to_conditioning_variables():
    p = Normal(loc="y", scale="s", var=["x"], cond_var=["y", "s"])
    y, s = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.5, 3.0]])
    x = torch.tensor([[0.0, 0.0]])
    params = p.get_params({"y": y, "s": s})
    assert params["loc"] is y and params["scale"] is s
    expect = (-0.5 * ((x - y) / s) ** 2 - s.log() - 0.5 * LOG2PI).sum(-1)
    close(p.get_log_prob({"x": x, "y": y, "s": s}), expect)
    # a bound location shifts every draw by exactly that location
    torch.manual_seed(1)
    a = p.sample({"y": y, "s": s})["x"]
    torch.manual_seed(1)
    b = p.sample({"y": y + 10, "s": s})["x"]
    close(b - a, torch.full((1, 2), 10.0))


def test_network_parameters_from_forward():
    class Enc(Normal):
        def __init__(self):
            super().__init__(var=["z"], cond_var=["x"], name="q")
            self.fc = nn.Linear(3, 4)

        def forward(self, x):
            loc, s = self.fc(x).chunk(2, -1)
            return {"loc": loc, "scale": F.softplus(s)}

    q = Enc()
    x, z = torch.randn(5, 3), torch.randn(5, 2)
    loc, s = q.fc(x).chunk(2, -1)
    s = F.softplus(s)
    expect = (-0.5 * ((z - loc) / s) ** 2 - s.log() - 0.5 * LOG2PI).sum(-1)
    close(q.get_log_prob({"z": z, "x": x}), expect)
    close(q.sample_mean({"x": x}), loc)


def test_sum_features_sums_every_dimension_but_the_batch():
    p = Normal(loc=0.0, scale=2.0, var=["x"], features_shape=[2, 3])
    x = torch.randn(4, 2, 3)
    elementwise = -0.5 * (x / 2) ** 2 - math.log(2.0) - 0.5 * LOG2PI
    close(p.get_log_prob({"x": x}, sum_features=False), elementwise)
    close(p.get_log_prob({"x": x}), elementwise.sum((1, 2)))
    close(p.get_log_prob({"x": x}, feature_dims=[2]), elementwise.sum(2))
    close(p.get_entropy(sum_features=False),
          torch.full((1, 2, 3), 0.5 + 0.5 * LOG2PI + math.log(2.0)))


# --- sampling: extra keys, shapes as Pixyz ----------------------------------------------------

def test_sample_carries_unknown_extra_keys_through():
    p = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"])
    z, extra = torch.zeros(4, 3), object()
    out = p.sample({"z": z, "extra": extra, "t": 7})
    assert out["extra"] is extra and out["t"] == 7 and out["z"] is z
    assert set(p.sample({"z": z, "extra": extra}, return_all=False)) == {"x"}


def test_sample_shapes_follow_pixyz():
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[3])
    assert prior.sample()["z"].shape == (1, 3)
    assert prior.sample(batch_n=2)["z"].shape == (2, 3)
    assert prior.sample(batch_n=2, sample_shape=[5])["z"].shape == (5, 2, 3)
    assert prior.sample(sample_shape=[5])["z"].shape == (5, 1, 3)
    p = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"])
    assert p.sample({"z": torch.zeros(4, 3)}, sample_shape=[6])["x"].shape == (6, 4, 3)
    scalar = Normal(loc=0.0, scale=1.0, var=["x"])
    assert scalar.sample()["x"].shape == (1,)
    assert scalar.sample(batch_n=2)["x"].shape == (2,)
    assert scalar.sample(batch_n=2, sample_shape=[3])["x"].shape == (3, 2)


def test_sample_shape_draws_are_independent_and_follow_the_location():
    p = Normal(loc="z", scale=2.0, var=["x"], cond_var=["z"])
    z = torch.tensor([[-5.0], [5.0]])
    x = p.sample({"z": z}, sample_shape=[3000])["x"]
    assert x.shape == (3000, 2, 1)
    close(x.mean(0), z, tol=4 * 2.0 / math.sqrt(3000))
    assert abs(float(x.std(0).mean()) - 2.0) < 0.1
    b = Normal(loc=1.0, scale=0.5, var=["x"], features_shape=[2]).sample(
        batch_n=2, sample_shape=[1000])["x"]
    assert abs(float(b.mean()) - 1.0) < 4 * 0.5 / math.sqrt(4000)
    assert float((b[:, 0] - b[:, 1]).abs().min()) > 0  # batch rows are distinct draws
