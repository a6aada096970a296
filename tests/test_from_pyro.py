"""Existing Pyro code in the loss algebra: ``from_pyro`` on a Pyro-tutorial-style VAE.

The VAE below is written as in Pyro's VAE tutorial (an ``nn.Module`` with ``model(x)``
and ``guide(x)``, ``pyro.module``, ``pyro.plate`` and ``.to_event``), with its sample
sites named after the variables, ``z`` and ``x`` (``sites=`` maps other names; Pyro's own
vae.py, with "latent" and "obs", is in ``test_pyro_examples.py``).

Every pixyz_pyro loss on it agrees with Pyro's ``Trace_ELBO`` on the same draws (seed,
then evaluate), in value and in the gradient of every parameter.
"""
import copy

import pyro
import pyro.distributions as dist
import torch
from _infer_models import max_rel_grads, rel_diff, value_and_grads
from pyro.infer import SVI, Trace_ELBO
from torch import nn
from torch.nn import functional as F

from pixyz_pyro.dist import Normal
from pixyz_pyro.infer import from_pyro
from pixyz_pyro.loss import ELBO, Expectation, KullbackLeibler, LogProb
from pixyz_pyro.model import Model

X, Z, H = 6, 2, 8
TOL = 1e-5


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(X, H)
        self.fc_loc = nn.Linear(H, Z)
        self.fc_scale = nn.Linear(H, Z)

    def forward(self, x):
        h = torch.tanh(self.fc(x))
        return self.fc_loc(h), F.softplus(self.fc_scale(h))


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(Z, H)
        self.fc_out = nn.Linear(H, X)

    def forward(self, z):
        return torch.sigmoid(self.fc_out(torch.tanh(self.fc(z))))


class PyroVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.decoder = Decoder()

    def model(self, x):
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(x.shape[0], Z),
                                             x.new_ones(x.shape[0], Z)).to_event(1))
            pyro.sample("x", dist.Bernoulli(self.decoder(z)).to_event(1), obs=x)

    def guide(self, x):
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", x.shape[0]):
            loc, scale = self.encoder(x)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))


def prior_model(x):
    """The prior alone, as a Pyro model: Trace_ELBO(prior_model, guide) is a one-sample
    estimate of KL(q(z|x) || p(z))."""
    with pyro.plate("data", x.shape[0]):
        pyro.sample("z", dist.Normal(x.new_zeros(x.shape[0], Z),
                                     x.new_ones(x.shape[0], Z)).to_event(1))


def _setup():
    vae = PyroVAE()
    p = from_pyro(vae.model, var=["x", "z"], name="p")
    q = from_pyro(vae.guide, var=["z"], cond_var=["x"], name="q")
    prior = Normal(loc=0., scale=1., var=["z"], features_shape=[Z], name="p_{prior}")
    x = torch.bernoulli(torch.full((5, X), 0.4))
    return vae, p, q, prior, x


def _agree(direct, pyro_fn, params, seed=1):
    torch.manual_seed(seed)
    a, ga = value_and_grads(direct(), params)
    torch.manual_seed(seed)
    b, gb = value_and_grads(pyro_fn(), params)
    assert rel_diff(a, b) < TOL, (float(a), float(b))
    assert max_rel_grads(ga, gb) < TOL


def test_wrapped_functions_read_as_distributions():
    vae, p, q, prior, x = _setup()
    assert p.prob_text == "p(x,z)" and q.prob_text == "q(z|x)"
    assert {id(t) for t in q.parameters()} == {id(t) for t in vae.parameters()}
    assert q.sample({"x": x})["z"].shape == (5, Z)
    assert p.get_log_prob({"x": x, "z": torch.zeros(5, Z)}).shape == (5,)


def test_elbo_agrees_with_trace_elbo():
    vae, p, q, prior, x = _setup()
    _agree(lambda: ELBO(p, q).sum().eval({"x": x}),
           lambda: -Trace_ELBO().differentiable_loss(vae.model, vae.guide, x),
           list(vae.parameters()))


def test_monte_carlo_kl_agrees_with_trace_elbo_of_the_prior():
    vae, p, q, prior, x = _setup()
    _agree(lambda: KullbackLeibler(q, prior, analytical=False).sum().eval({"x": x}),
           lambda: Trace_ELBO().differentiable_loss(prior_model, vae.guide, x),
           list(vae.encoder.parameters()))


def test_analytic_kl_uses_the_guides_site_distribution():
    vae, p, q, prior, x = _setup()
    loc, scale = vae.encoder(x)
    closed = (0.5 * (loc ** 2 + scale ** 2 - 1) - scale.log()).sum(-1)
    torch.testing.assert_close(KullbackLeibler(q, prior).eval({"x": x}), closed)


def test_expectation_agrees_with_the_replayed_model_trace():
    vae, p, q, prior, x = _setup()

    def pyro_side():
        guide_tr = pyro.poutine.trace(vae.guide).get_trace(x)
        model = pyro.poutine.replay(vae.model, trace=guide_tr)
        return pyro.poutine.trace(model).get_trace(x).log_prob_sum()

    _agree(lambda: Expectation(q, LogProb(p)).sum().eval({"x": x}), pyro_side,
           list(vae.parameters()))


def test_an_extra_beta_term_agrees_with_pyro():
    """-ELBO + beta KL: the direct executor evaluates the terms left to right, each
    drawing its own z; on Pyro's side two Trace_ELBO calls in the same order."""
    vae, p, q, prior, x = _setup()
    beta = 3.0
    loss = -ELBO(p, q).sum() + beta * KullbackLeibler(q, prior, analytical=False).sum()

    def pyro_side():
        elbo = Trace_ELBO()
        return (elbo.differentiable_loss(vae.model, vae.guide, x)
                + beta * elbo.differentiable_loss(prior_model, vae.guide, x))

    _agree(lambda: loss.eval({"x": x}), pyro_side, list(vae.parameters()))


def test_model_trains_the_pyro_vae_like_svi_does():
    """``Model`` finds the parameters through the module and, from the same networks,
    seed and optimizer, takes the same 20 steps as Pyro's SVI on the original code."""
    vae, p, q, prior, x = _setup()
    vae2 = copy.deepcopy(vae)
    model = Model(-ELBO(p, q).sum(), distributions=[p, q],
                  optimizer=pyro.optim.Adam({"lr": 0.01}))
    assert {id(t) for t in model.optimizer.param_groups[0]["params"]} == \
        {id(t) for t in vae.parameters()}
    torch.manual_seed(3)
    ours = [float(model.train({"x": x})) for _ in range(20)]
    # The tutorial's pyro.module("decoder", ...) names are global: clear the store, or
    # SVI would find the first VAE's tensors under the same names.
    pyro.clear_param_store()
    svi = SVI(vae2.model, vae2.guide, pyro.optim.Adam({"lr": 0.01}), loss=Trace_ELBO())
    torch.manual_seed(3)
    theirs = [svi.step(x) for _ in range(20)]
    assert rel_diff(torch.tensor(ours), torch.tensor(theirs)) < TOL
    for a, b in zip(vae.parameters(), vae2.parameters()):
        assert rel_diff(a, b) < TOL
    assert ours[-1] < ours[0]
