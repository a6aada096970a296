"""An analytic KL against a distribution of batch 1 (a prior) is the per-row KL, for every
family whose closed form comes from ``torch.distributions.kl_divergence``: torch's
Bernoulli formula masks its rows and does not broadcast a batch of 1 by itself."""
import pytest
import torch

from pixyz_pyro.dist import Bernoulli, Categorical
from pixyz_pyro.loss import KullbackLeibler


def _bernoulli_kl(a, b):  # KL[Bern(a) || Bern(b)], elementwise
    return a * (a / b).log() + (1 - a) * ((1 - a) / (1 - b)).log()


@pytest.mark.parametrize("prior_first", [False, True])
def test_bernoulli_kl_against_a_batch_one_prior(prior_first):
    q = Bernoulli(probs="x", var=["y"], cond_var=["x"], name="q")
    prior = Bernoulli(probs=torch.full((3,), 0.3), var=["y"], features_shape=[3], name="r")
    x = torch.rand(5, 3, generator=torch.Generator().manual_seed(0)) * 0.9 + 0.05
    a, b = (prior, q) if prior_first else (q, prior)
    value = KullbackLeibler(a, b).eval({"x": x})
    pa, pb = (torch.full_like(x, 0.3), x) if prior_first else (x, torch.full_like(x, 0.3))
    assert value.shape == (5,)
    torch.testing.assert_close(value, _bernoulli_kl(pa, pb).sum(-1))


def test_categorical_kl_against_a_batch_one_prior():
    q = Categorical(probs="x", var=["y"], cond_var=["x"], name="q")
    prior = Categorical(probs=torch.tensor([0.2, 0.3, 0.5]), var=["y"], features_shape=[3],
                        name="r")
    x = torch.softmax(torch.randn(4, 3, generator=torch.Generator().manual_seed(1)), -1)
    value = KullbackLeibler(q, prior).eval({"x": x})
    exact = (x * (x / torch.tensor([0.2, 0.3, 0.5])).log()).sum(-1)
    torch.testing.assert_close(value, exact)
