"""IWAE and the Rényi bounds: closed forms on a conjugate Gaussian model, agreement with
Pyro's RenyiELBO on the same draws, and the STL / DReG gradients against hand-written
autograd on the same draws.

The model: :math:`z \\sim N(0, 1)`, :math:`x|z \\sim N(z, 1)`, so :math:`p(x) = N(0, 2)`
and the posterior is :math:`N(x/2, 1/2)`.  The proposal :math:`q(z|x) = N(wx + c, s)`
has trainable ``w, c, log s``.
"""
import math
import warnings

import pyro
import pytest
import torch
from _infer_models import max_rel_grads, params_of, rel_diff, vae, value_and_grads
from pyro.infer import RenyiELBO
from torch import nn

from pixyz_pyro.dist import Normal
from pixyz_pyro.errors import LossError
from pixyz_pyro.infer import to_pyro
from pixyz_pyro.loss import ELBO, IWAE, IterativeLoss, KullbackLeibler, VRBound
from pixyz_pyro.model import Model

EXACT = (0.5, 0.0, math.sqrt(0.5))  # the posterior's w, c, s


class Q(Normal):
    def __init__(self, w=0.3, c=0.2, s=0.9):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.wt = nn.Parameter(torch.tensor(float(w)))
        self.bias = nn.Parameter(torch.tensor(float(c)))
        self.log_s = nn.Parameter(torch.tensor(math.log(s)))

    def forward(self, x):
        return {"loc": self.wt * x + self.bias, "scale": self.log_s.exp().expand_as(x)}


def joint():
    lik = Normal(loc="z", scale=1., var=["x"], cond_var=["z"], name="p")
    prior = Normal(loc=0., scale=1., var=["z"], name="p")
    return lik * prior, prior


def log_evidence(x):
    return -0.5 * math.log(4 * math.pi) - x ** 2 / 4


def grads(value, params):
    return torch.autograd.grad(value, params, retain_graph=True)


# --- values ---------------------------------------------------------------------------------
def test_iwae_at_the_exact_posterior_is_the_log_evidence_for_every_draw():
    p, _ = joint()
    q = Q(*EXACT)
    x = torch.tensor([[-1.0], [0.0], [2.0]])
    torch.manual_seed(0)
    for bound in (IWAE(p, q, k=7), VRBound(p, q, k=7, alpha=0.5), VRBound(p, q, 7, -2.0),
                  ELBO(p, q, [7], estimator="stl")):
        v = bound.eval({"x": x})
        assert v.shape == (3,)
        assert torch.allclose(v, log_evidence(x[:, 0]), atol=1e-5), bound


def test_iwae_k1_equals_the_elbo_on_the_same_draws():
    p, _ = joint()
    q = Q()
    x = torch.randn(4, 1)
    for est in ("reparam", "stl", "dreg"):
        torch.manual_seed(3)
        a = IWAE(p, q, k=1, estimator=est).eval({"x": x})
        torch.manual_seed(3)
        b = ELBO(p, q).eval({"x": x})
        assert torch.allclose(a, b, atol=1e-6), est


def test_vr_bound_alpha0_is_iwae_and_alpha1_is_the_elbo_on_the_same_draws():
    p, _ = joint()
    q = Q()
    x = torch.randn(4, 1)
    torch.manual_seed(5)
    a = VRBound(p, q, k=6, alpha=0.0).eval({"x": x})
    torch.manual_seed(5)
    b = IWAE(p, q, k=6).eval({"x": x})
    torch.manual_seed(5)
    c = VRBound(p, q, k=6, alpha=1.0).eval({"x": x})
    torch.manual_seed(5)
    d = ELBO(p, q, sample_shape=[6]).eval({"x": x})
    assert torch.equal(a, b)
    assert torch.allclose(c, d, atol=1e-6)


def test_iwae_rises_with_k_to_the_log_evidence_within_monte_carlo_error():
    p, _ = joint()
    q = Q()
    n = 400
    x = torch.full((n, 1), 1.5)
    exact = log_evidence(1.5)
    means, errs = [], []
    torch.manual_seed(0)
    with torch.no_grad():
        for k in (1, 5, 50, 500):
            v = IWAE(p, q, k=k).eval({"x": x})
            means.append(float(v.mean()))
            errs.append(float(v.std() / math.sqrt(n)))
    for (m0, e0), (m1, e1) in zip(zip(means, errs), zip(means[1:], errs[1:])):
        assert m1 > m0 - 4 * math.hypot(e0, e1)
    assert means[0] < exact - 0.05  # the mismatched q: the ELBO is visibly loose
    assert all(m < exact + 4 * e for m, e in zip(means, errs))  # a lower bound
    assert abs(means[-1] - exact) < 4 * errs[-1] + 2e-3


def test_an_unconditional_q_draws_k_per_data_row():
    lik = Normal(loc="z", scale=1., var=["x"], cond_var=["z"], name="p")
    prior = Normal(loc=torch.zeros(1), scale=torch.ones(1), var=["z"], features_shape=[1],
                   name="p")
    p = lik * prior
    x = torch.tensor([[-1.0], [0.0], [2.0], [0.5]])
    torch.manual_seed(0)
    v = IWAE(p, prior, k=3).eval({"x": x})  # q = the prior: w_i = p(x|z_i)
    assert v.shape == (4,)
    torch.manual_seed(0)
    z = torch.randn(3, 4, 1)
    lik = -0.5 * (x - z) ** 2 - 0.5 * math.log(2 * math.pi)
    assert torch.allclose(v, torch.logsumexp(lik[..., 0], 0) - math.log(3), atol=1e-5)


# --- printing and composition ------------------------------------------------------------------
def test_printing_and_composition():
    p, prior = joint()
    q = Q()
    iwae = IWAE(p, q, k=5, estimator="dreg")
    text = str(iwae)
    assert text == "\\log \\frac{1}{5}\\sum_{i=1}^{5} \\frac{p(x,z_i)}{q(z_i|x)}"
    loss = -iwae.mean() + 0.5 * KullbackLeibler(q, prior).mean()
    assert "D_{KL}" in str(loss) and text in str(loss)
    assert str(IWAE(p, q, k=5) - IWAE(p, q, k=6)) != "0"  # different k, different symbols
    torch.manual_seed(0)
    x = torch.randn(3, 1)
    v = loss.eval({"x": x})
    assert v.dim() == 0 and torch.isfinite(v)
    (g,) = torch.autograd.grad(v, [q.wt])
    assert torch.isfinite(g)


def test_iterative_loss_over_an_iwae_step():
    p, _ = joint()
    q = Q(*EXACT)
    loss = IterativeLoss(IWAE(p, q, k=4), max_iter=3, series_var=["x"]).mean()
    xs = torch.randn(3, 2, 1)
    torch.manual_seed(0)
    v = loss.eval({"x": xs})
    assert torch.allclose(v, log_evidence(xs[..., 0]).sum(0).mean(), atol=1e-5)


def test_model_trains_with_the_dreg_bound():
    p, _ = joint()
    q = Q()
    model = Model(-IWAE(p, q, k=8, estimator="dreg").mean(), distributions=[q],
                  optimizer=torch.optim.Adam, optimizer_params={"lr": 0.05})
    torch.manual_seed(0)
    x = torch.randn(64, 1) * math.sqrt(2)
    for _ in range(150):
        model.train({"x": x})
    w, s = float(q.wt.detach()), float(q.log_s.detach().exp())
    assert abs(w - 0.5) < 0.1 and abs(s - EXACT[2]) < 0.1, (w, s)


# --- Pyro -------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_equals_pyro_renyi_elbo_on_the_same_draws(alpha):
    pyro.clear_param_store()
    q, dec, prior = vae()
    x = torch.rand(5, 6)
    k = 7
    model, guide = to_pyro(dec * prior, observed=["x"]), to_pyro(q)
    torch.manual_seed(11)
    ours = VRBound(dec * prior, q, k=k, alpha=alpha).sum().eval({"x": x}).detach()
    torch.manual_seed(11)
    theirs = -RenyiELBO(alpha=alpha, num_particles=k, vectorize_particles=True,
                        max_plate_nesting=1).loss(model, guide, x=x)
    assert abs(float(ours) - theirs) < 1e-6 * max(1.0, abs(theirs)), (float(ours), theirs)
    pyro.clear_param_store()


def test_iwae_gradient_equals_pyro_renyi_elbo_alpha0_gradient():
    pyro.clear_param_store()
    q, dec, prior = vae()
    x = torch.rand(5, 6)
    params = params_of(q, dec)
    model, guide = to_pyro(dec * prior, observed=["x"]), to_pyro(q)
    torch.manual_seed(2)
    a, ga = value_and_grads(-IWAE(dec * prior, q, k=4).sum().eval({"x": x}), params)
    renyi = RenyiELBO(alpha=0.0, num_particles=4, vectorize_particles=True,
                      max_plate_nesting=1)
    for t in params:
        t.grad = None
    torch.manual_seed(2)
    b = renyi.loss_and_grads(model, guide, x=x)
    gb = [t.grad.clone() for t in params]
    assert rel_diff(a, torch.tensor(b)) < 1e-5
    assert max_rel_grads(ga, gb) < 1e-5
    pyro.clear_param_store()


# --- gradient estimators ----------------------------------------------------------------------
def _reference(q, x, k, seed, alpha):
    """Hand-written DReG / IWAE / STL on explicit draws ``z = mu + s * eps``."""
    torch.manual_seed(seed)
    mu = q.wt * x + q.bias
    s = q.log_s.exp().expand_as(x)
    eps = torch.randn(k, *x.shape)
    z = mu + s * eps

    def log_normal(v, m, sd):
        return (-0.5 * ((v - m) / sd) ** 2 - sd.log() - 0.5 * math.log(2 * math.pi)).sum(-1)

    log_p = log_normal(x, z, torch.ones_like(z)) + log_normal(z, torch.zeros_like(z),
                                                               torch.ones_like(z))
    lw_full = log_p - log_normal(z, mu, s)
    lw_stl = log_p - log_normal(z, mu.detach(), s.detach())
    v = torch.softmax((1 - alpha) * lw_stl, 0).detach()
    enc = [q.wt, q.bias, q.log_s]
    dreg = grads(((alpha * v + (1 - alpha) * v ** 2) * lw_stl).sum(), enc)
    bound = ((torch.logsumexp((1 - alpha) * lw_full, 0) - math.log(k)) / (1 - alpha)).sum()
    return bound, dreg, grads(bound, enc), grads((v * lw_stl).sum(), enc)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_dreg_and_stl_equal_hand_written_autograd_on_the_same_draws(alpha):
    q = Q()
    p, _ = joint()
    x = torch.randn(3, 1)
    enc = [q.wt, q.bias, q.log_s]
    ref_value, ref_dreg, ref_reparam, ref_stl = _reference(q, x, 6, 4, alpha)
    for est, ref in (("dreg", ref_dreg), ("reparam", ref_reparam), ("stl", ref_stl)):
        torch.manual_seed(4)
        value = VRBound(p, q, k=6, alpha=alpha, estimator=est).sum().eval({"x": x})
        assert torch.allclose(value, ref_value, atol=1e-5), est
        for g, r in zip(grads(value, enc), ref):
            assert torch.allclose(g, r, atol=1e-5), (est, g, r)


def test_stl_gradient_is_zero_at_the_exact_posterior_and_reparam_is_not():
    q = Q(*EXACT)
    p, _ = joint()
    x = torch.randn(5, 1)
    enc = [q.wt, q.bias, q.log_s]
    for seed in range(3):
        torch.manual_seed(seed)
        g_stl = grads(ELBO(p, q, [3], estimator="stl").sum().eval({"x": x}), enc)
        torch.manual_seed(seed)
        g_dreg = grads(IWAE(p, q, 3, estimator="dreg").sum().eval({"x": x}), enc)
        torch.manual_seed(seed)
        g_rep = grads(ELBO(p, q, [3]).sum().eval({"x": x}), enc)
        assert all(float(g.abs()) < 1e-5 for g in g_stl + g_dreg)
        assert max(float(g.abs()) for g in g_rep) > 1e-2


def _encoder_grads(est, k, seeds, x):
    p, _ = joint()
    q = Q()
    out = []
    for seed in seeds:
        torch.manual_seed(seed)
        out.append(grads(IWAE(p, q, k, estimator=est).sum().eval({"x": x}), [q.wt])[0])
    return torch.stack(out)


def test_dreg_encoder_gradient_is_unbiased_for_the_iwae_gradient():
    x = torch.tensor([[1.5]])
    seeds = range(600)
    a = _encoder_grads("dreg", 8, seeds, x)
    b = _encoder_grads("reparam", 8, seeds, x)
    se = math.hypot(float(a.std()), float(b.std())) / math.sqrt(len(seeds))
    assert abs(float(a.mean() - b.mean())) < 4 * se


def test_dreg_signal_to_noise_at_k64_is_at_least_three_times_iwae():
    x = torch.tensor([[1.5]])
    seeds = range(200)
    snr = {}
    for est in ("dreg", "reparam"):
        g = _encoder_grads(est, 64, seeds, x)
        snr[est] = float(g.mean().abs() / g.std())
    assert snr["dreg"] >= 3 * snr["reparam"], snr


# --- errors -----------------------------------------------------------------------------------
def test_errors_in_user_terms():
    p, prior = joint()
    q = Q()
    with pytest.raises(LossError, match="k is the number of importance samples"):
        IWAE(p, q, k=0)
    with pytest.raises(LossError, match="estimator must be one of"):
        IWAE(p, q, k=2, estimator="vimco")
    with pytest.raises(LossError, match=r"p has no \['z'\]"):
        IWAE(Normal(loc=0., scale=1., var=["x"]), q, 2)
    with pytest.raises(LossError, match="estimator must be 'reparam' or 'stl'"):
        ELBO(p, q, estimator="dreg")
    # A hierarchical q: the second factor's parameters depend on q's own draw.
    q2 = Normal(loc="u", scale=1., var=["z"], cond_var=["u"], name="q") * Normal(
        loc="x", scale=1., var=["u"], cond_var=["x"], name="q")
    p2 = p * Normal(loc=0., scale=1., var=["u"], name="r")
    with pytest.raises(LossError, match="depends on the sampled"):
        IWAE(p2, q2, 2, estimator="dreg").eval({"x": torch.zeros(1, 1)})


@pytest.mark.slow
def test_compiled_dreg_steps_equal_eager_steps():
    """The DReG gradient scales z's incoming gradient by a hook (a graph break for
    Dynamo, whose tracing warns about a non-leaf .grad: an error under pytest's
    filterwarnings=error, so warnings are recorded here): a real torch.compile, drawing
    from eager's generator, takes the same steps as eager."""
    x = torch.randn(16, 1)
    out = []
    for compiled in (False, True):
        p, _ = joint()
        q = Q()
        model = Model(-IWAE(p, q, k=8, estimator="dreg").mean(), distributions=[q],
                      optimizer=torch.optim.SGD, optimizer_params={"lr": 1.0},
                      compile=compiled)
        with torch._inductor.config.patch(fallback_random=True), warnings.catch_warnings(
                record=True) as caught:
            warnings.simplefilter("always")
            for seed in range(3):
                torch.manual_seed(seed)
                model.train({"x": x})
        assert not [w for w in caught if "eager mode" in str(w.message)]
        if compiled:
            assert model._compiled.failed is None
        out.append(torch.stack([q.wt.detach(), q.bias.detach(), q.log_s.detach()]))
    assert torch.allclose(out[0], out[1], atol=1e-6), out
