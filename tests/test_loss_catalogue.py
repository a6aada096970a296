"""The rest of the loss catalogue, each checked by a number: constants and parameters,
min/max, REINFORCE, MMD, Wasserstein, the adversarial losses, IterativeLoss, terms."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from pixyz_pyro.dist import (
    Bernoulli,
    Deterministic,
    EmpiricalDistribution,
    Normal,
)
from pixyz_pyro.loss import (
    MMD,
    REINFORCE,
    AdversarialJensenShannon,
    AdversarialKullbackLeibler,
    AdversarialWassersteinDistance,
    ConstantVar,
    Expectation,
    IterativeLoss,
    KullbackLeibler,
    LogProb,
    MaxLoss,
    MinLoss,
    Parameter,
    ValueLoss,
    WassersteinDistance,
)

LOG2PI = math.log(2 * math.pi)


def close(a, b, tol=1e-5):
    a, b = torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)
    assert torch.allclose(a.reshape(b.shape), b, atol=tol, rtol=tol), (a, b)


def normal_lp(x, mu, sigma):
    return (-0.5 * ((x - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * LOG2PI).sum(-1)


P = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"])
X, Z = torch.tensor([[0.5, 1.0], [2.0, -1.0]]), torch.tensor([[0.0, 0.0], [1.0, 1.0]])
LP = normal_lp(X, Z, 1.0)


# --- values and parameters ----------------------------------------------------------------

def test_value_loss_and_parameter():
    assert ValueLoss(2.5).eval() == 2.5
    close((ValueLoss(2.0) * LogProb(P)).eval({"x": X, "z": Z}), 2 * LP)
    beta = Parameter("beta")
    assert beta.input_var == ["beta"]
    close((beta * LogProb(P)).eval({"x": X, "z": Z, "beta": 0.25}), 0.25 * LP)
    close((LogProb(P) - beta).eval({"x": X, "z": Z, "beta": torch.tensor(3.0)}), LP - 3)


def test_constant_var_fixes_inputs():
    c = ConstantVar(LogProb(P), {"z": Z})
    assert c.input_var == ["x"]
    close(c.eval({"x": X}), LP)
    close(LogProb(P).constant_var({"z": torch.zeros(2, 2)}).eval({"x": X}),
          normal_lp(X, torch.zeros(2, 2), 1.0))
    # the constant wins over a value of the same name in the input
    close(c.eval({"x": X, "z": torch.full((2, 2), 9.0)}), LP)


def test_min_and_max_are_elementwise():
    lo = MinLoss(LogProb(P), ValueLoss(-3.0)).eval({"x": X, "z": Z})
    hi = MaxLoss(LogProb(P), ValueLoss(-3.0)).eval({"x": X, "z": Z})
    close(lo, torch.minimum(LP, torch.tensor(-3.0)))
    close(hi, torch.maximum(LP, torch.tensor(-3.0)))
    assert float(LP.min()) < -3.0 < float(LP.max())  # both branches are taken


def test_abs_and_detach():
    close(LogProb(P).abs().eval({"x": X, "z": Z}), LP.abs())
    z = Z.clone().requires_grad_()
    v = (LogProb(P).detach() + LogProb(P)).eval({"x": X, "z": z})
    v.sum().backward()
    close(z.grad, X - Z)  # only the non-detached term contributes d/dz log p = x - z


# --- REINFORCE -----------------------------------------------------------------------------

class Policy(Bernoulli):
    def __init__(self):
        super().__init__(var=["z"], name="q", features_shape=[1])
        self.w = nn.Parameter(torch.tensor([[0.3]]))

    def forward(self):
        return {"probs": torch.sigmoid(self.w)}


def test_reinforce_value_is_the_expectation_and_gradient_is_the_score_function():
    q = Policy()
    reward = LogProb(Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"]))
    x = torch.tensor([[0.7]])
    value, samples = REINFORCE(q, reward, sample_shape=[50]).eval({"x": x}, return_dict=True)
    z = samples["z"].reshape(50)
    assert 0 < float(z.sum()) < 50  # both outcomes drawn
    f = -0.5 * (0.7 - z) ** 2 - 0.5 * LOG2PI
    close(value, f.mean().reshape(1))
    value.sum().backward()
    # d/dw log Bernoulli(z; sigmoid(w)) = z - sigmoid(w)
    score = z - torch.sigmoid(torch.tensor(0.3))
    close(q.w.grad, (f * score).mean().reshape(1, 1))


def test_reinforce_baseline_changes_the_gradient_not_the_value():
    q = Policy()
    reward = LogProb(Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"]))
    x = torch.tensor([[0.7]])
    value, samples = REINFORCE(q, reward, b=ValueLoss(-1.0), sample_shape=[50]).eval(
        {"x": x}, return_dict=True)
    z = samples["z"].reshape(50)
    f = -0.5 * (0.7 - z) ** 2 - 0.5 * LOG2PI
    close(value, f.mean().reshape(1))
    value.sum().backward()
    score = z - torch.sigmoid(torch.tensor(0.3))
    close(q.w.grad, ((f + 1.0) * score).mean().reshape(1, 1))


# --- MMD and Wasserstein ---------------------------------------------------------------------

class Encoder(Normal):
    def __init__(self):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.fc = nn.Linear(2, 4)

    def forward(self, x):
        loc, s = self.fc(x).chunk(2, -1)
        return {"loc": loc, "scale": F.softplus(s)}


def test_mmd_gives_the_encoder_a_gradient():
    q = Encoder()
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2], name="p_prior")
    value = MMD(q, prior).eval({"x": torch.randn(64, 2)})
    assert value.dim() == 0
    value.backward()
    assert q.fc.weight.grad.abs().sum() > 0 and q.fc.bias.grad.abs().sum() > 0


def test_mmd_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    q = Normal(loc="x", scale=1.0, var=["z"], cond_var=["x"], name="q")
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2], name="p_prior")
    for kernel in ("gaussian", "inv-multiquadratic"):
        same = MMD(q, prior, kernel=kernel).eval({"x": torch.zeros(500, 2)})
        shifted = MMD(q, prior, kernel=kernel).eval({"x": torch.full((500, 2), 2.0)})
        assert abs(float(same)) < 0.01
        assert float(shifted) > 0.2


def test_mmd_matches_the_unbiased_estimator_by_hand():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([[1.0, 1.0], [3.0, 0.0], [0.0, -1.0]])
    p = Normal(loc="a", scale=1e-8, var=["z"], cond_var=["a"], name="p")
    q = Normal(loc="b", scale=1e-8, var=["z"], cond_var=["b"], name="q")

    def k(u, v):
        return math.exp(-sum((ui - vi) ** 2 for ui, vi in zip(u, v)) / 2.0)

    xs, ys = x.tolist(), y.tolist()
    kxx = sum(k(a, b) for i, a in enumerate(xs) for j, b in enumerate(xs) if i != j) / 6
    kyy = sum(k(a, b) for i, a in enumerate(ys) for j, b in enumerate(ys) if i != j) / 6
    kxy = sum(k(a, b) for a in xs for b in ys) / 9
    close(MMD(p, q).eval({"a": x, "b": y}), torch.tensor(kxx + kyy - 2 * kxy), tol=1e-5)


def test_wasserstein_upper_bound_is_the_paired_distance():
    a = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    b = torch.tensor([[3.0, 4.0], [1.0, 2.0]])
    p = Normal(loc="a", scale=1e-7, var=["z"], cond_var=["a"], name="p")
    q = Normal(loc="b", scale=1e-7, var=["z"], cond_var=["b"], name="q")
    close(WassersteinDistance(p, q).eval({"a": a, "b": b}), torch.tensor([5.0, 0.0]), tol=1e-4)
    q2 = Encoder()
    w = WassersteinDistance(q2, Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2],
                                       name="p")).eval({"x": torch.randn(8, 2)})
    w.mean().backward()
    assert q2.fc.weight.grad.abs().sum() > 0


# --- adversarial losses -------------------------------------------------------------------------

class Generator(Deterministic):
    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.fc = nn.Linear(2, 3)

    def forward(self, z):
        return {"x": self.fc(z)}


class Discriminator(Deterministic):
    def __init__(self):
        super().__init__(var=["t"], cond_var=["x"], name="d")
        self.fc = nn.Linear(3, 1)

    def forward(self, x):
        return {"t": torch.sigmoid(self.fc(x))}


def _gan():
    g, d = Generator(), Discriminator()
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2], name="p_prior")
    return g, d, (g * prior).marginalize_var("z"), EmpiricalDistribution(["x"])


def test_adversarial_generator_side_trains_the_generator():
    for cls in (AdversarialJensenShannon, AdversarialKullbackLeibler,
                AdversarialWassersteinDistance):
        g, d, p, p_data = _gan()
        loss = cls(p, p_data, discriminator=d)
        value = loss.eval({"x": torch.randn(16, 3)})
        assert value.dim() == 0 and torch.isfinite(value)
        value.backward()
        assert g.fc.weight.grad is not None and g.fc.weight.grad.abs().sum() > 0, cls


def test_adversarial_discriminator_side_trains_only_the_discriminator():
    for cls in (AdversarialJensenShannon, AdversarialKullbackLeibler,
                AdversarialWassersteinDistance):
        g, d, p, p_data = _gan()
        loss = cls(p, p_data, discriminator=d)
        value = loss.d_loss({"x": torch.randn(16, 3)})
        value.backward()
        assert g.fc.weight.grad is None, cls
        assert d.fc.weight.grad.abs().sum() > 0, cls


def test_jensen_shannon_discriminator_loss_is_the_binary_cross_entropy():
    g, d, p, p_data = _gan()
    x = torch.randn(16, 3)
    torch.manual_seed(3)
    value = AdversarialJensenShannon(p, p_data, discriminator=d).d_loss({"x": x})
    torch.manual_seed(3)
    z = torch.randn(16, 2)
    t_gen, t_data = d.fc(g.fc(z)).sigmoid(), d.fc(x).sigmoid()
    expect = -(t_gen.log().mean() + (1 - t_data).log().mean())
    close(value, expect, tol=1e-5)


# --- IterativeLoss -----------------------------------------------------------------------------

class Transition(Normal):
    """p(z|z_prev)"""

    def __init__(self):
        super().__init__(var=["z"], cond_var=["z_prev"], name="p")
        self.fc = nn.Linear(2, 2)

    def forward(self, z_prev):
        return {"loc": self.fc(z_prev), "scale": torch.ones_like(z_prev)}


class Emission(Bernoulli):
    """p(x|z)"""

    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.fc = nn.Linear(2, 3)

    def forward(self, z):
        return {"probs": torch.sigmoid(self.fc(z))}


class Filter(Normal):
    """q(z|x,z_prev)"""

    def __init__(self):
        super().__init__(var=["z"], cond_var=["x", "z_prev"], name="q")
        self.fc = nn.Linear(5, 4)

    def forward(self, x, z_prev):
        loc, s = self.fc(torch.cat([x, z_prev], -1)).chunk(2, -1)
        return {"loc": loc, "scale": F.softplus(s) + 0.1}


def test_iterative_loss_equals_a_hand_written_loop_on_a_deep_markov_model():
    prior, emission, q = Transition(), Emission(), Filter()
    step = (KullbackLeibler(q, prior) - Expectation(q, LogProb(emission))).mean()
    loss = IterativeLoss(step, series_var=["x"], update_value={"z": "z_prev"})
    x = torch.rand(5, 4, 3).bernoulli()  # (time, batch, features)
    z0 = torch.zeros(4, 2)
    torch.manual_seed(7)
    value = loss.eval({"x": x, "z_prev": z0})

    torch.manual_seed(7)
    total, z_prev = 0.0, z0
    for t in range(5):
        qd = torch.distributions.Normal(**q.get_params({"x": x[t], "z_prev": z_prev}))
        pd = torch.distributions.Normal(**prior.get_params({"z_prev": z_prev}))
        kl = torch.distributions.kl_divergence(qd, pd).sum(-1)
        z = qd.rsample()
        probs = emission.get_params({"z": z})["probs"]
        lp = (x[t] * probs.log() + (1 - x[t]) * (1 - probs).log()).sum(-1)
        total = total + (kl - lp).mean()
        z_prev = z
    close(value, total, tol=1e-5)
    assert loss.input_var == ["x", "z_prev"]


def test_iterative_loss_mask_and_max_iter():
    p = Normal(loc=0.0, scale=1.0, var=["x"], features_shape=[1])
    x = torch.tensor([[[0.0]], [[1.0]], [[2.0]], [[3.0]]])
    per_step = [normal_lp(x[t], 0.0, 1.0) for t in range(4)]
    close(IterativeLoss(LogProb(p), series_var=["x"]).eval({"x": x}), sum(per_step))
    close(IterativeLoss(LogProb(p), max_iter=2, series_var=["x"]).eval({"x": x}),
          per_step[0] + per_step[1])
    mask = torch.tensor([[1], [0], [1], [0]])
    close(IterativeLoss(LogProb(p), series_var=["x"]).eval({"x": x}, mask=mask),
          per_step[0] + per_step[2])


class SliceStep(Deterministic):
    def __init__(self):
        super().__init__(var=["x_t"], cond_var=["t", "x"], name="f")
        self.seen = []

    def forward(self, t, x):
        self.seen.append(t)
        return {"x_t": x[t]}


def test_slice_step_gets_the_time_index_t_automatically():
    p = Normal(loc=1.0, scale=2.0, var=["x_t"], features_shape=[2])
    slicer = SliceStep()
    loss = IterativeLoss(LogProb(p), max_iter=3, series_var=["x"], slice_step=slicer)
    assert "t" not in loss.input_var and loss.input_var == ["x"]
    x = torch.randn(3, 5, 2)
    value = loss.eval({"x": x})
    assert slicer.seen == [0, 1, 2]
    close(value, sum(normal_lp(x[t], 1.0, 2.0) for t in range(3)))


# --- per-term values --------------------------------------------------------------------------

def test_return_terms_sum_to_the_total():
    q = Encoder()
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2], name="p_{prior}")
    dec = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"])
    x = torch.randn(8, 2)
    loss = (Parameter("beta") * KullbackLeibler(q, prior)
            - Expectation(q, LogProb(dec))).mean() + 0.5
    torch.manual_seed(5)
    plain = loss.eval({"x": x, "beta": 2.0})
    torch.manual_seed(5)
    value, terms = loss.eval({"x": x, "beta": 2.0}, return_terms=True)
    close(value, plain)  # same draws, same value
    kl_text = "D_{KL} \\left[q(z|x)||p_{prior}(z) \\right]"
    e_text = "\\mathbb{E}_{q(z|x)} \\left[\\log p(x|z) \\right]"
    assert set(terms) == {kl_text, e_text, "0.5"}
    close(sum(terms.values()), value)
    close(terms[kl_text], 2.0 * KullbackLeibler(q, prior).eval({"x": x}).mean())
    assert float(terms["0.5"]) == 0.5


def test_expectation_with_many_draws_over_a_distribution_that_ignores_its_input():
    """q(z|x) whose parameters do not depend on x: S draws per batch element, vectorised,
    and the Monte Carlo mean matches the closed form
    E_z[log N(0 | z, 1)] = d (-log(2 pi)/2 - 1/2) for z ~ N(0, 1) in d dims."""
    import math

    import torch

    from pixyz_pyro.dist import Normal
    from pixyz_pyro.loss import Expectation, LogProb

    q = Normal(loc=0., scale=1., var=["z"], cond_var=["x"], features_shape=[2], name="q")
    p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"])
    e = Expectation(q, LogProb(p), sample_shape=[4000])
    torch.manual_seed(0)
    value, samples = e.eval({"x": torch.zeros(3, 2)}, return_dict=True, return_all=False)
    assert value.shape == (3,)
    assert samples["z"].shape == (4000, 3, 2)
    exact = 2 * (-0.5 * math.log(2 * math.pi) - 0.5)
    # per-sample variance of log N(0|z,1) summed over 2 dims is 2 * Var(z^2/2) = 1
    assert torch.allclose(value, torch.full((3,), exact), atol=4 * (1 / 4000) ** 0.5)
