"""Losses against closed forms: divergences, entropies, the exact ELBO of a conjugate
model, a hand-derived ELBO gradient, and Monte Carlo estimates within their errors."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from pixyz_pyro.dist import Bernoulli, Categorical, Normal
from pixyz_pyro.loss import (
    ELBO,
    NLL,
    CrossEntropy,
    Entropy,
    Expectation,
    KullbackLeibler,
    LogProb,
    Prob,
)

LOG2PI = math.log(2 * math.pi)


def close(a, b, tol=1e-5):
    a, b = torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)
    assert torch.allclose(a.reshape(b.shape), b, atol=tol, rtol=tol), (a, b)


def normal_lp(x, mu, sigma):
    return -0.5 * ((x - mu) / sigma) ** 2 - torch.as_tensor(sigma).log() - 0.5 * LOG2PI


# --- analytic divergences and entropies --------------------------------------------------------

def test_kl_normal_normal():
    m1, s1 = torch.tensor([0.3, -1.0, 2.0]), torch.tensor([0.5, 1.2, 2.0])
    m2, s2 = torch.tensor([0.0, 1.0, -1.0]), torch.tensor([1.0, 0.7, 3.0])
    p = Normal(loc=m1, scale=s1, var=["z"], name="q")
    q = Normal(loc=m2, scale=s2, var=["z"], name="p")
    expect = (torch.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5).sum()
    close(KullbackLeibler(p, q).eval(), expect.reshape(1))
    close(KullbackLeibler(q, q).eval(), torch.zeros(1))


def test_kl_conditional_normal_per_batch_element():
    q = Normal(loc="x", scale=0.5, var=["z"], cond_var=["x"], name="q")
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2], name="p")
    x = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    expect = (math.log(2.0) + (0.25 + x ** 2) / 2 - 0.5).sum(-1)
    close(KullbackLeibler(q, prior).eval({"x": x}), expect)
    close(KullbackLeibler(q, prior, dim=1).eval({"x": x}), expect)


def test_kl_bernoulli():
    a, b = torch.tensor([0.2, 0.6, 0.9]), torch.tensor([0.5, 0.3, 0.8])
    p = Bernoulli(probs=a, var=["x"], name="q")
    q = Bernoulli(probs=b, var=["x"], name="p")
    expect = (a * (a / b).log() + (1 - a) * ((1 - a) / (1 - b)).log()).sum()
    close(KullbackLeibler(p, q).eval(), expect.reshape(1))


def test_kl_categorical():
    a, b = torch.tensor([0.2, 0.3, 0.5]), torch.tensor([0.6, 0.3, 0.1])
    p = Categorical(probs=a, var=["y"], name="q")
    q = Categorical(probs=b, var=["y"], name="p")
    close(KullbackLeibler(p, q).eval(), (a * (a / b).log()).sum().reshape(1))


def test_analytic_entropies():
    s = torch.tensor([0.5, 2.0])
    close(Entropy(Normal(loc=0.0, scale=s, var=["x"])).eval(),
          (0.5 + 0.5 * LOG2PI + s.log()).sum().reshape(1))
    pi = torch.tensor([0.2, 0.8])
    close(Entropy(Bernoulli(probs=pi, var=["x"])).eval(),
          -(pi * pi.log() + (1 - pi) * (1 - pi).log()).sum().reshape(1))
    c = torch.tensor([0.1, 0.2, 0.7])
    close(Entropy(Categorical(probs=c, var=["y"])).eval(), -(c * c.log()).sum().reshape(1))
    q = Normal(loc="x", scale="s", var=["z"], cond_var=["x", "s"])
    sx = torch.tensor([[0.5], [3.0]])
    close(Entropy(q).eval({"x": torch.zeros(2, 1), "s": sx}),
          (0.5 + 0.5 * LOG2PI + sx.log()).squeeze(1))


def test_log_prob_prob_and_nll():
    p = Normal(loc="z", scale=2.0, var=["x"], cond_var=["z"])
    x, z = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.0, 1.0]])
    lp = normal_lp(x, z, 2.0).sum(-1)
    close(LogProb(p).eval({"x": x, "z": z}), lp)
    close(Prob(p).eval({"x": x, "z": z}), lp.exp())
    close(NLL(p).eval({"x": x, "z": z}), -lp)
    close(p.log_prob().eval({"x": x, "z": z}), lp)
    close(LogProb(p, sum_features=False).eval({"x": x, "z": z}), normal_lp(x, z, 2.0))


# --- the ELBO of a conjugate model -------------------------------------------------------------

def conjugate(s=0.7):
    """p(z) = N(0, 1), p(x|z) = N(z, s^2), and the exact posterior q(z|x)."""
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[1], name="p_prior")
    p = Normal(loc="z", scale=s, var=["x"], cond_var=["z"])

    class Posterior(Normal):
        def __init__(self):
            super().__init__(var=["z"], cond_var=["x"], name="q")

        def forward(self, x):
            v = s ** 2 / (1 + s ** 2)
            return {"loc": x / (1 + s ** 2), "scale": torch.full_like(x, math.sqrt(v))}

    evidence = lambda x: normal_lp(x, 0.0, math.sqrt(1 + s ** 2)).sum(-1)  # noqa: E731
    return p * prior, Posterior(), evidence


def test_elbo_with_the_exact_posterior_is_the_log_evidence():
    p_joint, q, evidence = conjugate()
    x = torch.linspace(-3, 3, 200).reshape(200, 1)
    close(ELBO(p_joint, q).eval({"x": x}), evidence(x), tol=1e-4)
    close(ELBO(p_joint, q, sample_shape=[7]).eval({"x": x}), evidence(x), tol=1e-4)


def test_elbo_integrand_is_constant_in_z_for_the_exact_posterior():
    """log p(x, z) - log q(z|x) = log p(x) for every draw z, not only on average."""
    p_joint, q, evidence = conjugate()
    x = torch.full((500, 1), 1.3)
    z = q.sample({"x": x})["z"]
    assert float(z.std()) > 0.3  # the draws differ ...
    integrand = (LogProb(p_joint) - LogProb(q)).eval({"x": x, "z": z})
    close(integrand, evidence(x), tol=1e-4)  # ... the integrand does not


def test_elbo_is_below_the_evidence_for_a_wrong_posterior():
    p_joint, _, evidence = conjugate()
    q = Normal(loc="x", scale=1.0, var=["z"], cond_var=["x"], name="q")
    x = torch.full((1, 1), 0.5)
    elbo = ELBO(p_joint, q, sample_shape=[4000]).eval({"x": x})
    # ELBO = log p(x) - KL(q || posterior), with KL in closed form
    s2, m = 0.49, 0.5 / 1.49
    v = s2 / (1 + s2)
    kl = math.log(math.sqrt(v)) + (1 + (0.5 - m) ** 2) / (2 * v) - 0.5
    z = q.sample({"x": x.expand(4000, 1)})["z"]
    per_draw = (LogProb(p_joint) - LogProb(q)).eval({"x": x.expand(4000, 1), "z": z})
    se = float(per_draw.std()) / math.sqrt(4000)
    assert abs(float(elbo) - (float(evidence(x)) - kl)) < 3 * se
    assert float(elbo) < float(evidence(x))


# --- gradients --------------------------------------------------------------------------------

def test_single_site_elbo_gradient_matches_the_hand_derivation():
    """q(z) = N(mu, sigma), p(z) = N(0, 1), p(x|z) = N(z, 1), z = mu + sigma * eps.

    d/dmu    [log p(x|z) + log p(z) - log q(z)] = x - 2z
    d/dsigma [...]                             = (x - 2z) eps + 1/sigma
    """
    class Q(Normal):
        def __init__(self):
            super().__init__(var=["z"], name="q", features_shape=[1])
            self.mu = nn.Parameter(torch.tensor([[0.3]]))
            self.sigma = nn.Parameter(torch.tensor([[0.8]]))

        def forward(self):
            return {"loc": self.mu, "scale": self.sigma}

    q = Q()
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[1], name="p_prior")
    p = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"])
    x = torch.tensor([[1.5]])
    loss = ELBO(p * prior, q, sample_shape=[16])
    value, samples = loss.eval({"x": x}, return_dict=True)
    value.sum().backward()
    z = samples["z"].detach().reshape(16)
    eps = (z - 0.3) / 0.8
    close(q.mu.grad, (1.5 - 2 * z).mean().reshape(1, 1))
    close(q.sigma.grad, ((1.5 - 2 * z) * eps + 1 / 0.8).mean().reshape(1, 1))
    # and the value is the mean of the integrand at those draws
    integrand = (normal_lp(x, z, 1.0) + normal_lp(z, 0.0, 1.0) - normal_lp(z, 0.3, 0.8))
    close(value, integrand.mean().reshape(1))


def test_kl_gradient_matches_the_closed_form_derivative():
    mu = nn.Parameter(torch.tensor([0.4, -0.2]))
    log_s = nn.Parameter(torch.tensor([0.1, -0.3]))

    class Q(Normal):
        def __init__(self):
            super().__init__(var=["z"], name="q", features_shape=[2])

        def forward(self):
            return {"loc": mu[None], "scale": log_s.exp()[None]}

    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2], name="p")
    KullbackLeibler(Q(), prior).eval().sum().backward()
    # KL = sum(-log s + (s^2 + mu^2)/2 - 1/2): d/dmu = mu, d/dlog s = s^2 - 1
    close(mu.grad, mu.detach())
    close(log_s.grad, log_s.detach().exp() ** 2 - 1)


# --- Monte Carlo estimates within three standard errors ------------------------------------------

def test_mc_kl_within_three_standard_errors():
    m1, s1, m2, s2 = 0.5, 0.8, -0.3, 1.4
    p = Normal(loc=m1, scale=s1, var=["z"], features_shape=[1], name="q")
    q = Normal(loc=m2, scale=s2, var=["z"], features_shape=[1], name="p")
    exact = math.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5
    mc = KullbackLeibler(p, q, analytical=False, sample_shape=[2000]).eval()
    z = p.sample(sample_shape=[2000])["z"]
    per_draw = normal_lp(z, m1, s1) - normal_lp(z, m2, s2)
    se = float(per_draw.std()) / math.sqrt(2000)
    assert abs(float(mc) - exact) < 3 * se
    assert abs(float(KullbackLeibler(p, q).eval()) - exact) < 1e-5


def test_mc_entropy_within_three_standard_errors():
    s = 1.7
    p = Normal(loc=0.2, scale=s, var=["x"], features_shape=[1])
    exact = 0.5 + 0.5 * LOG2PI + math.log(s)
    mc = Entropy(p, sample_shape=[2000], analytical=False).eval()
    per_draw = -normal_lp(p.sample(sample_shape=[2000])["x"], 0.2, s)
    se = float(per_draw.std()) / math.sqrt(2000)
    assert abs(float(mc) - exact) < 3 * se
    close(Entropy(p).eval(), torch.tensor([exact]))


def test_mc_cross_entropy_is_entropy_plus_kl():
    p = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[1], name="q")
    q = Normal(loc=1.0, scale=2.0, var=["z"], features_shape=[1], name="p")
    # H[p, q] = H[p] + KL(p || q)
    exact = (0.5 + 0.5 * LOG2PI) + (math.log(2.0) + (1 + 1) / 8 - 0.5)
    mc = CrossEntropy(p, q, sample_shape=[2000]).eval()
    per_draw = -normal_lp(p.sample(sample_shape=[2000])["z"], 1.0, 2.0)
    assert abs(float(mc) - exact) < 3 * float(per_draw.std()) / math.sqrt(2000)


def test_vectorised_expectation_matches_the_gaussian_integral():
    """E_{N(mu, s)}[log N(x; z, 1)] = -log(2 pi)/2 - ((x - mu)^2 + s^2)/2, per batch row."""
    q = Normal(loc="m", scale=0.6, var=["z"], cond_var=["m"], name="q")
    p = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"])
    m = torch.tensor([[0.0], [2.0], [-1.0]])
    x = torch.tensor([[1.0], [2.0], [0.5]])
    e = Expectation(q, LogProb(p), sample_shape=[2000])
    value = e.eval({"m": m, "x": x})
    assert value.shape == (3,)
    exact = -0.5 * LOG2PI - 0.5 * ((x - m) ** 2 + 0.36)
    # per-draw spread of the integrand: bounded by its exact standard deviation
    z = q.sample({"m": m}, sample_shape=[2000])["z"]
    se = normal_lp(x, z, 1.0).std(0) / math.sqrt(2000)
    assert ((value - exact.squeeze(1)).abs() < 3 * se.squeeze(1)).all()


def test_expectation_with_sample_shape_averages_independent_draws():
    """The mean of S draws has variance Var/S: S = 1 and S = 400 differ in spread."""
    q = Normal(loc="m", scale=1.0, var=["z"], cond_var=["m"], name="q")
    f = LogProb(Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[1]))
    m = torch.zeros(300, 1)
    one = Expectation(q, f).eval({"m": m})
    many = Expectation(q, f, sample_shape=[400]).eval({"m": m})
    assert float(many.std()) < 0.15 * float(one.std())
    close(many.mean(), torch.tensor(-0.5 * LOG2PI - 0.5), tol=0.02)  # -log(2 pi)/2 - E[z^2]/2


def test_categorical_kl_gradient_reaches_the_encoder():
    class Enc(Categorical):
        def __init__(self):
            super().__init__(var=["y"], cond_var=["x"], name="q")
            self.fc = nn.Linear(2, 3)

        def forward(self, x):
            return {"probs": F.softmax(self.fc(x), -1)}

    q = Enc()
    uniform = Categorical(probs=torch.full((3,), 1 / 3), var=["y"], name="p")
    x = torch.randn(4, 2)
    kl = KullbackLeibler(q, uniform).eval({"x": x})
    pi = F.softmax(q.fc(x), -1)
    close(kl, (pi * (3 * pi).log()).sum(-1))
    kl.sum().backward()
    assert q.fc.weight.grad.abs().sum() > 0
