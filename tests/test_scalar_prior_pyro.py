"""``to_pyro`` of a factor of scalar constants with no declared ``features_shape``
(``Normal(loc=torch.tensor(0.), scale=torch.tensor(1.), var=["z"])``): the direct executor
broadcasts it over its value's features, and so does its Pyro site (the features of a
replayed or observed value).  It used to fail with a plate shape mismatch at the decoder's
site.  Each check: the same draws (seeded) give the direct executor's value and gradients
to a relative 1e-5."""
import pyro
import pytest
import torch
from _infer_models import (
    Decoder,
    Encoder,
    X,
    Z,
    max_rel_grads,
    params_of,
    rel_diff,
    value_and_grads,
)
from pyro.infer import SVI, RenyiELBO, Trace_ELBO, TraceMeanField_ELBO

from pixyz_pyro.dist import Normal
from pixyz_pyro.infer import SVILoss, to_pyro
from pixyz_pyro.loss import ELBO, IWAE, Expectation, KullbackLeibler, LogProb

TOL = 1e-5


def _scalar_vae():
    q, dec = Encoder(), Decoder()
    prior = Normal(loc=torch.tensor(0.), scale=torch.tensor(1.), var=["z"], name="p_{prior}")
    assert prior.features_shape == torch.Size()
    return q, dec, prior, to_pyro(dec * prior, observed=["x"]), to_pyro(q), torch.rand(5, X)


def _agree(ours, theirs, params, seed=3):
    torch.manual_seed(seed)
    a, ga = value_and_grads(ours(), params)
    torch.manual_seed(seed)
    b, gb = value_and_grads(theirs(), params)
    assert rel_diff(a, b) < TOL, (float(a), float(b))
    assert max_rel_grads(ga, gb) < TOL
    return float(a)


@pytest.mark.parametrize("particles", [1, 3])
def test_trace_elbo_on_a_scalar_prior_equals_the_direct_executor(particles):
    q, dec, prior, model, guide, x = _scalar_vae()
    loss = -ELBO(dec * prior, q, sample_shape=[particles] if particles > 1 else ()).sum()
    elbo = Trace_ELBO(num_particles=particles, vectorize_particles=particles > 1,
                      max_plate_nesting=1)
    _agree(lambda: elbo.differentiable_loss(model, guide, x=x), lambda: loss.eval({"x": x}),
           params_of(q, dec))
    svi_loss = SVILoss(loss)
    assert svi_loss.route(model, guide)[0] == "Trace_ELBO"
    _agree(lambda: svi_loss(model, guide, x=x), lambda: loss.eval({"x": x}), params_of(q, dec))


def test_the_prior_site_takes_the_guides_features():
    q, dec, prior, model, guide, x = _scalar_vae()
    guide_trace = pyro.poutine.trace(guide).get_trace(x=x)
    trace = pyro.poutine.trace(pyro.poutine.replay(model, guide_trace)).get_trace(x=x)
    fn = trace.nodes["z"]["fn"]
    assert (fn.batch_shape, fn.event_shape) == (torch.Size([5]), torch.Size([Z]))
    assert trace.nodes["x"]["fn"].event_shape == torch.Size([X])
    trace.compute_log_prob()
    expected = prior.get_log_prob({"z": guide_trace.nodes["z"]["value"]})
    assert rel_diff(trace.nodes["z"]["log_prob"], expected) < TOL


def test_trace_mean_field_elbo_uses_the_analytic_kl_to_a_scalar_prior():
    q, dec, prior, model, guide, x = _scalar_vae()
    loss = (KullbackLeibler(q, prior) - Expectation(q, LogProb(dec))).sum()
    _agree(lambda: TraceMeanField_ELBO().differentiable_loss(model, guide, x=x),
           lambda: loss.eval({"x": x}), params_of(q, dec))
    assert SVILoss(loss).route(model, guide) == ("TraceMeanField_ELBO", "")


def test_renyi_elbo_on_a_scalar_prior_equals_iwae():
    q, dec, prior, model, guide, x = _scalar_vae()
    loss = -IWAE(dec * prior, q, k=4).sum()
    elbo = RenyiELBO(alpha=0.0, num_particles=4, vectorize_particles=True,
                     max_plate_nesting=1)
    torch.manual_seed(2)
    ours = float(loss.eval({"x": x}).detach())
    torch.manual_seed(2)
    theirs = elbo.loss(model, guide, x=x)
    assert abs(ours - theirs) < 1e-6 * abs(ours)


def test_an_observed_scalar_factor_scores_every_feature():
    prior = Normal(loc=torch.tensor(0.5), scale=torch.tensor(2.0), var=["z"])
    z = torch.randn(4, 3)
    trace = pyro.poutine.trace(to_pyro(prior, observed=["z"])).get_trace(z=z)
    trace.compute_log_prob()
    assert trace.nodes["z"]["fn"].event_shape == torch.Size([3])
    assert rel_diff(trace.nodes["z"]["log_prob"], prior.get_log_prob({"z": z})) < TOL


def test_svi_trains_a_vae_with_a_scalar_prior():
    q, dec, prior, model, guide, x = _scalar_vae()
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), loss=Trace_ELBO())
    before = -ELBO(dec * prior, q, sample_shape=[200]).sum().eval({"x": x}).item()
    for _ in range(60):
        svi.step(x=x)
    after = -ELBO(dec * prior, q, sample_shape=[200]).sum().eval({"x": x}).item()
    assert after < before


def test_without_a_guide_the_site_draws_one_scalar_per_row_as_sample_does():
    _, _, prior, _, _, _ = _scalar_vae()
    trace = pyro.poutine.trace(to_pyro(prior)).get_trace()
    assert trace.nodes["z"]["value"].shape == prior.sample()["z"].shape
