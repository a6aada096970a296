"""Pyro's features on pixyz_pyro models: SVI, losses as SVI losses, Predictive,
render_model, MCMC/NUTS, and the translation's naming rules."""
import copy
import importlib.util
import shutil

import pyro
import pytest
import torch
from _infer_models import K, X, Z, m2, params_of, rel_diff, vae
from pyro.infer import MCMC, NUTS, SVI, Predictive, Trace_ELBO

from pixyz_pyro.dist import Bernoulli, Normal
from pixyz_pyro.errors import LossError, VariableError
from pixyz_pyro.infer import SVILoss, to_pyro
from pixyz_pyro.loss import ELBO, Expectation, KullbackLeibler, LogProb, Parameter
from pixyz_pyro.model import Model


def _patterns(n=64):
    """Binary images from two prototypes with 10% flipped pixels: a VAE can learn them."""
    protos = torch.tensor([[1., 1., 1., 0., 0., 0.], [0., 0., 0., 1., 1., 1.]])
    labels = torch.arange(n) % 2
    flip = (torch.rand(n, X) < 0.1).float()
    return (protos[labels] - flip).abs(), labels


# --- SVI -----------------------------------------------------------------------------------
def test_svi_with_trace_elbo_trains_a_vae():
    q, p, prior = vae()
    x, _ = _patterns()
    svi = SVI(to_pyro(p * prior, observed=["x"]), to_pyro(q), pyro.optim.Adam({"lr": 0.05}),
              loss=Trace_ELBO())
    losses = [svi.step(x=x) / len(x) for _ in range(100)]
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < first - 0.5, (first, last)
    # The trained pair also scores better under the direct executor.
    with torch.no_grad():
        assert float(-ELBO(p * prior, q, sample_shape=[64]).mean().eval({"x": x})) < first


def test_svi_loss_trains_a_beta_weighted_objective_like_model_does():
    q, p, prior = vae()
    q2, p2 = copy.deepcopy(q), copy.deepcopy(p)
    x, _ = _patterns(16)

    def beta_vae(q, p):
        return (Parameter("beta") * KullbackLeibler(q, prior)
                - Expectation(q, LogProb(p))).sum()

    svi = SVI(to_pyro(p * prior, observed=["x"]), to_pyro(q), pyro.optim.Adam({"lr": 0.02}),
              loss=SVILoss(beta_vae(q, p)))
    model = Model(beta_vae(q2, p2), distributions=[p2, q2],
                  optimizer=pyro.optim.Adam({"lr": 0.02}))
    torch.manual_seed(5)
    a = [svi.step(x=x, beta=4.0) for _ in range(10)]
    torch.manual_seed(5)
    b = [float(model.train({"x": x, "beta": 4.0})) for _ in range(10)]
    assert rel_diff(torch.tensor(a), torch.tensor(b)) < 1e-5
    for u, v in zip(params_of(q, p), params_of(q2, p2)):
        assert rel_diff(u, v) < 1e-5
    # beta is really in the objective: the value moves with it, by beta * KL.  v4 - v1
    # cancels two sums of ~100 nats, so the identity is checked in float64.
    q, p, prior, x = q.double(), p.double(), prior.double(), x.double()
    torch.manual_seed(0)
    v1 = SVILoss(beta_vae(q, p))(None, None, x=x, beta=1.0)
    torch.manual_seed(0)
    v4 = SVILoss(beta_vae(q, p))(None, None, x=x, beta=4.0)
    kl = KullbackLeibler(q, prior).sum().eval({"x": x})
    torch.testing.assert_close(v4 - v1, 3 * kl)


def test_svi_loss_trains_an_m2_classifier_term():
    """Labelled M2 bound plus alpha times the classifier's NLL: the classifier appears
    only in the extra term, and SVI trains it to separate the two prototypes."""
    qz, qy, p, pz, py = m2()
    x, labels = _patterns(32)
    y = torch.nn.functional.one_hot(labels, K).float()
    alpha = 10.0
    loss = (-ELBO(p * pz * py, qz) - alpha * LogProb(qy)).sum()
    before = [t.detach().clone() for t in qy.parameters()]
    nll = (-LogProb(qy).mean()).detach()
    nll0 = float(nll.eval({"x": x, "y": y}))
    svi = SVI(to_pyro(p * pz * py, observed=["x", "y"]), to_pyro(qz),
              pyro.optim.Adam({"lr": 0.05}), loss=SVILoss(loss))
    for _ in range(60):
        svi.step(x=x, y=y)
    assert all(rel_diff(a, b) > 1e-2 for a, b in zip(qy.parameters(), before))
    assert float(nll.eval({"x": x, "y": y})) < 0.5 * nll0
    acc = (qy.get_params({"x": x})["probs"].argmax(-1) == labels).float().mean()
    assert float(acc) == 1.0


def test_svi_loss_errors_name_the_problem():
    q, p, prior = vae()
    x = torch.rand(4, X)
    with pytest.raises(LossError, match="SVILoss needs a pixyz_pyro loss, got Trace_ELBO"):
        SVILoss(Trace_ELBO())
    with pytest.raises(LossError, match=r"is not a scalar; reduce it with \.mean\(\) or "
                                        r"\.sum\(\)"):
        SVILoss(-ELBO(p * prior, q))(None, None, x=x)
    with pytest.raises(LossError, match=r"takes the data as keyword arguments, "
                                        r"svi\.step\(x=\.\.\.\)"):
        SVILoss(-ELBO(p * prior, q).sum())(None, None, x)


# --- Predictive -----------------------------------------------------------------------------
def test_predictive_gives_posterior_predictive_samples():
    q, p, prior = vae()
    x = torch.rand(5, X)
    guide = to_pyro(q)
    # x observed: Predictive returns the data for x and fresh z from the guide.
    out = Predictive(to_pyro(p * prior, observed=["x"]), guide=guide, num_samples=7)(x=x)
    assert out["z"].shape == (7, 5, Z) and out["x"].shape == (7, 5, X)
    assert torch.equal(out["x"], x.expand(7, 5, X))
    # x not observed: x is drawn from p(x|z) for each guide sample (reconstructions).
    for parallel in (False, True):
        out = Predictive(to_pyro(p * prior), guide=guide, num_samples=7,
                         parallel=parallel)(x=x)
        assert out["z"].shape == (7, 5, Z) and out["x"].shape == (7, 5, X)
        assert set(out["x"].unique().tolist()) <= {0.0, 1.0}
    # No data, no guide: prior samples, one batch element per draw.
    out = Predictive(to_pyro(p * prior), num_samples=7)()
    assert out["z"].shape == (7, 1, Z) and out["x"].shape == (7, 1, X)


# --- render_model ---------------------------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("graphviz") is None,
                    reason="the graphviz Python package is not installed")
def test_render_model_draws_the_joint(tmp_path):
    q, p, prior = vae()
    x = torch.rand(5, X)
    model = to_pyro(p * prior, observed=["x"])
    g = pyro.render_model(model, model_kwargs={"x": x})
    src = g.source
    assert "cluster_data" in src and "z -> x" in src
    assert "x [label=x fillcolor=gray" in src  # observed
    assert "z [label=z fillcolor=white" in src  # latent
    if shutil.which("dot") is None:
        pytest.skip("the Graphviz `dot` program is not installed; the picture is not written")
    path = tmp_path / "vae.png"
    pyro.render_model(model, model_kwargs={"x": x}, filename=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- MCMC -----------------------------------------------------------------------------------
class Likelihood(Bernoulli):
    """p(y|x,w) = Bernoulli(sigmoid(x . w))"""

    def __init__(self):
        super().__init__(var=["y"], cond_var=["x", "w"], name="p")

    def forward(self, x, w):
        return {"logits": (x * w).sum(-1, keepdim=True)}


def test_nuts_recovers_logistic_regression_coefficients():
    d, n = 3, 200
    w_true = torch.tensor([1.5, -1.0, 0.5])
    x = torch.randn(n, d)
    y = torch.bernoulli(torch.sigmoid(x @ w_true)).unsqueeze(-1)
    prior_w = Normal(loc=0., scale=2., var=["w"], features_shape=[d], name="p_{prior}")
    model = to_pyro(Likelihood() * prior_w, observed=["y"], global_vars=["w"])
    mcmc = MCMC(NUTS(model), num_samples=200, warmup_steps=200, disable_progbar=True)
    mcmc.run(x=x, y=y)
    w = mcmc.get_samples()["w"]
    assert w.shape == (200, 1, d)  # a global variable keeps its batch of one
    w = w.squeeze(1)
    lo, hi = w.quantile(0.025, dim=0), w.quantile(0.975, dim=0)
    assert bool(((lo < w_true) & (w_true < hi)).all()), (lo, hi)
    assert bool(((hi - lo) < 2.0).all())  # and the interval is informative
    # Posterior predictive: y drawn for every posterior sample of w.
    pred = Predictive(model, posterior_samples=mcmc.get_samples())(x=x, y=None)
    assert pred["y"].shape == (200, n, 1)
    acc = (pred["y"].mean(0).squeeze(-1).round() == (x @ w_true > 0).float()).float().mean()
    assert float(acc) > 0.85


def test_global_vars_are_sampled_once_outside_the_plate():
    prior_w = Normal(loc=0., scale=1., var=["w"], features_shape=[3])
    model = to_pyro(Likelihood() * prior_w, observed=["y"], global_vars=["w"])
    x, y = torch.randn(10, 3), torch.ones(10, 1)
    tr = pyro.poutine.trace(model).get_trace(x=x, y=y)
    assert [f.name for f in tr.nodes["w"]["cond_indep_stack"]] == []
    assert [f.name for f in tr.nodes["y"]["cond_indep_stack"]] == ["data"]
    assert tr.nodes["w"]["fn"].event_shape == (1, 3)
    assert tr.nodes["y"]["fn"].batch_shape == (10,)
    assert tr.nodes["y"]["fn"].event_shape == (1,)


# --- naming ---------------------------------------------------------------------------------
def test_a_variable_named_like_the_plate_is_refused():
    p = Normal(loc=0., scale=1., var=["data"])
    with pytest.raises(VariableError, match='to_pyro: variable "data" of p\\(data\\) clashes '
                                            'with the Pyro plate of the same name; rename it '
                                            'with replace_var or pass plate_name=...'):
        to_pyro(p)
    tr = pyro.poutine.trace(to_pyro(p, plate_name="batch")).get_trace(data=torch.zeros(2, 1))
    assert tr.nodes["data"]["type"] == "sample" and tr.nodes["batch"]["type"] == "sample"


def test_unknown_variables_are_refused():
    q, p, prior = vae()
    with pytest.raises(VariableError, match=r'to_pyro: p\(x,z\) has no variable "y"; its '
                                            r"variables are \['x', 'z'\]"):
        to_pyro(p * prior, observed=["y"])


def test_parameters_are_registered_under_stable_names_that_hold_the_modules_tensors():
    """The name is the distribution's formula and the parameter's path: the same in every
    process (so save/load round-trips) and not a construction counter.  A second module
    under the same name takes the name over, so SVI always trains the running module."""
    q1, p1, prior = vae()
    q2 = copy.deepcopy(q1)
    store = pyro.get_param_store()
    pyro.poutine.trace(to_pyro(q1)).get_trace(x=torch.rand(2, X))
    assert sorted(store.keys()) == sorted(f"q(z|x)$$${n}" for n, _ in q1.named_parameters())
    assert store["q(z|x)$$$fc.weight"] is q1.fc.weight  # the module's own tensor
    pyro.poutine.trace(to_pyro(q2)).get_trace(x=torch.rand(2, X))
    assert store["q(z|x)$$$fc.weight"] is q2.fc.weight
    pyro.poutine.trace(to_pyro(q1, name="first.")).get_trace(x=torch.rand(2, X))
    assert store["first.q(z|x)$$$fc.weight"] is q1.fc.weight


def test_a_replaced_parameter_replaces_the_store_entry():
    q, p, prior = vae()
    x = torch.rand(2, X)
    pyro.poutine.trace(to_pyro(q)).get_trace(x=x)
    q.fc.weight = torch.nn.Parameter(torch.zeros(8, X))
    pyro.poutine.trace(to_pyro(q)).get_trace(x=x)
    assert pyro.get_param_store()["q(z|x)$$$fc.weight"] is q.fc.weight


def test_a_marginal_becomes_a_program_with_its_latent_sites():
    # x = z + noise, z ~ N(0, 1): the marginal p(x) is N(0, 2).
    joint = Normal(loc="z", scale=1., var=["x"], cond_var=["z"]) * Normal(
        loc=0., scale=1., var=["z"])
    p = joint.marginalize_var(["z"])
    tr = pyro.poutine.trace(to_pyro(p)).get_trace()
    assert [n for n in tr.nodes if tr.nodes[n]["type"] == "sample"] == ["z", "x"]
    x = Predictive(to_pyro(p), num_samples=4000, parallel=True)()["x"]
    assert abs(float(x.var()) - 2.0) < 0.15
