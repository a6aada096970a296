"""AutoregressiveBernoulli: the exact log_prob against enumeration and the sequential
conditionals, the mask's triangular dependence, sampling frequencies, a fit to a known
distribution, and its use as a VAE decoder."""
import itertools
import math

import pytest
import torch

from pixyz_pyro.dist import AutoregressiveBernoulli, Normal
from pixyz_pyro.errors import ShapeError
from pixyz_pyro.loss import ELBO, LogProb
from pixyz_pyro.model import Model


def grid(d):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)))


def randomise(p, scale=1.5):
    with torch.no_grad():
        for t in p.parameters():
            t.copy_(torch.randn_like(t) * scale)


def test_six_pixels_log_prob_is_exact_and_the_sum_of_its_sequential_conditionals():
    torch.manual_seed(0)
    p = AutoregressiveBernoulli(dim=6, hidden=16, cond_var=["z"], cond_dim=2)
    randomise(p)
    x = grid(6)
    z = torch.randn(1, 2).expand(64, 2)
    with torch.no_grad():
        lp = p.get_log_prob({"x": x, "z": z})
        assert abs(float(lp.exp().sum()) - 1.0) < 1e-5  # all 64 images: a distribution
        # The chain rule written out: conditional d sees only x_<d (the rest zeroed).
        chain = torch.zeros(64)
        for d in range(6):
            seen = torch.where(torch.arange(6) < d, x, torch.zeros_like(x))
            logit = p.made(seen, z)[:, d]
            chain += torch.nn.functional.logsigmoid(torch.where(x[:, d] > 0, logit, -logit))
    assert torch.allclose(lp, chain, atol=1e-5)


def test_logit_d_depends_only_on_the_features_before_d():
    torch.manual_seed(1)
    p = AutoregressiveBernoulli(dim=5, hidden=20)
    randomise(p)
    jac = torch.autograd.functional.jacobian(lambda v: p.made(v[None])[0], torch.rand(5))
    assert torch.all(jac.triu() == 0)
    assert torch.all(jac.tril(-1)[1:, 0] != 0)  # and it does read x_1


def test_sampling_frequencies_match_the_exact_probabilities():
    torch.manual_seed(2)
    p = AutoregressiveBernoulli(dim=4, hidden=12)
    randomise(p)
    n = 40000
    x = p.sample(batch_n=n)["x"]
    codes = (x * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()
    freq = torch.bincount(codes, minlength=16).float() / n
    with torch.no_grad():
        exact = p.get_log_prob({"x": grid(4)}).exp()
    tv = 0.5 * float((freq - exact).abs().sum())
    assert tv < 0.02, tv
    assert p.sample(sample_shape=[3], batch_n=2)["x"].shape == (3, 2, 4)


def test_fits_a_known_correlated_distribution():
    # x1 ~ Bern(0.3), x2 = x1, x3 = 1 - x1 with probability 0.9.
    target = torch.zeros(8)
    for x1, x3 in itertools.product([0, 1], repeat=2):
        p1 = 0.3 if x1 else 0.7
        p3 = 0.9 if x3 != x1 else 0.1
        target[x1 * 4 + x1 * 2 + x3] = p1 * p3
    torch.manual_seed(3)
    data = grid(3)[torch.multinomial(target, 4096, replacement=True)]
    p = AutoregressiveBernoulli(dim=3, hidden=16)
    model = Model(-LogProb(p).mean(), distributions=[p], optimizer=torch.optim.Adam,
                  optimizer_params={"lr": 0.05})
    for _ in range(300):
        model.train({"x": data})
    with torch.no_grad():
        lp = p.get_log_prob({"x": grid(3)})
    keep = target > 0
    kl = float((target[keep] * (target[keep].log() - lp[keep])).sum())
    entropy = -float((target[keep] * target[keep].log()).sum())
    assert abs(entropy - (0.6109 + 0.3251)) < 1e-3
    assert kl < 0.01, kl


def test_as_the_decoder_of_a_vae():
    torch.manual_seed(4)
    q = Normal(loc=torch.nn.Parameter(torch.zeros(2)), scale=1., var=["z"],
               features_shape=[2], name="q")
    dec = AutoregressiveBernoulli(dim=6, hidden=16, cond_var=["z"], cond_dim=2)
    prior = Normal(loc=0., scale=1., var=["z"], features_shape=[2], name="p_{prior}")
    loss = -ELBO(dec * prior, q).mean()
    x = torch.bernoulli(torch.full((8, 6), 0.5))
    model = Model(loss, distributions=[q, dec], optimizer=torch.optim.Adam)
    before = float(model.test({"x": x}))
    for _ in range(20):
        model.train({"x": x})
    assert math.isfinite(before) and float(model.test({"x": x})) < before + 1.0
    assert dec.sample({"z": torch.zeros(3, 2)})["x"].shape == (3, 6)


def test_shape_errors_name_the_distribution_and_the_shapes():
    p = AutoregressiveBernoulli(dim=3, hidden=4)
    with pytest.raises(ShapeError, match=r'p\(x\): "x" must have shape \(batch, 3\), got '
                                          r"\(2, 4\)"):
        p.get_log_prob({"x": torch.zeros(2, 4)})
    with pytest.raises(ShapeError, match="give cond_dim"):
        AutoregressiveBernoulli(dim=3, cond_var=["z"])
