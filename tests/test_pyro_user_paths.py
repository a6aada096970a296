"""Review fixes on the Pyro side: site shapes of featureless factors, param-store name
clashes, global variables and multi-sample bounds under SVILoss, dtype checks, the
direct route's subsampling."""
import math

import pyro
import pyro.distributions as pd
import pytest
import torch
from pyro.infer import MCMC, NUTS, SVI, RenyiELBO, Trace_ELBO
from torch import nn

from pixyz_pyro.dist import Normal
from pixyz_pyro.errors import LossError, ParameterError, ShapeError, SupportError
from pixyz_pyro.infer import SVILoss, from_pyro, to_pyro
from pixyz_pyro.loss import ELBO, IWAE, LogProb

N = 20


@pytest.fixture(autouse=True)
def _store():
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()


def _regression():
    """``y_n ~ N(w, 1)``, ``w ~ N(0, 1)``: no factor declares the features of ``y``."""
    lik = Normal(loc="w", scale=1., var=["y"], cond_var=["w"], name="p")
    prior = Normal(loc=0., scale=1., var=["w"], name="p_{prior}")
    return lik, prior


def _log_joint(y, w):
    return float(torch.distributions.Normal(0., 1.).log_prob(w).sum()
                 + torch.distributions.Normal(w, 1.).log_prob(y).sum())


@pytest.mark.parametrize("features", [1, 3])
def test_a_featureless_likelihood_counts_each_row_once(features):
    lik, prior = _regression()
    torch.manual_seed(0)
    y = torch.randn(N, features) + 1.5
    w = torch.tensor([0.7])
    program = to_pyro(lik * prior, observed=["y"], global_vars=["w"])
    tr = pyro.poutine.trace(pyro.poutine.condition(program, {"w": w})).get_trace(y=y)
    tr.compute_log_prob()
    assert tuple(tr.nodes["y"]["log_prob"].shape) == (N,)
    assert tuple(tr.nodes["y"]["fn"].event_shape) == (features,)
    exact = _log_joint(y, w)
    assert float(tr.log_prob_sum()) == pytest.approx(exact, rel=1e-5)
    # the direct executor's log-density of the same values: the likelihood's rows plus
    # the prior once
    direct = LogProb(lik).eval({"y": y, "w": w}).sum() + LogProb(prior).eval({"w": w}).sum()
    assert float(tr.log_prob_sum()) == pytest.approx(float(direct), rel=1e-5)


def test_a_featureless_likelihood_gives_the_conjugate_posterior():
    lik, prior = _regression()
    torch.manual_seed(0)
    y = torch.randn(N, 1) + 1.5
    program = to_pyro(lik * prior, observed=["y"], global_vars=["w"])
    mean, var = float(y.sum() / (N + 1)), 1. / (N + 1)

    def log_density(w):
        return pyro.poutine.trace(pyro.poutine.condition(program, {"w": w})).get_trace(
            y=y).log_prob_sum()

    # the log-density is the posterior's up to a constant: a parabola of curvature
    # -1/var with its top at the posterior mean
    w = torch.tensor([mean], requires_grad=True)
    (grad,) = torch.autograd.grad(log_density(w), w)
    assert abs(float(grad)) < 1e-4
    for d in (0.3, -0.8):
        diff = float(log_density(torch.tensor([mean + d])) - log_density(torch.tensor([mean])))
        assert diff == pytest.approx(-d * d / (2 * var), rel=1e-4)
    mcmc = MCMC(NUTS(program), num_samples=300, warmup_steps=150, disable_progbar=True)
    torch.manual_seed(1)
    mcmc.run(y=y)
    draws = mcmc.get_samples()["w"]
    assert abs(float(draws.mean()) - mean) < 0.1
    assert float(draws.std()) == pytest.approx(math.sqrt(var), rel=0.25)


def test_the_minibatch_example_scores_one_value_per_drawn_row():
    lik, prior = _regression()
    program = to_pyro(lik * prior, observed=["y"], global_vars=["w"], subsample_size=10)
    tr = pyro.poutine.trace(program).get_trace(torch.randn(100, 1) + 2.0)
    tr.compute_log_prob()
    assert tuple(tr.nodes["y"]["log_prob"].shape) == (10,)
    assert tr.nodes["y"]["scale"] == 10.0


def test_an_observed_value_of_other_features_is_the_direct_executors_error():
    lik = Normal(loc="w", scale=1., var=["y"], cond_var=["w"], features_shape=[2], name="p")
    prior = Normal(loc=0., scale=1., var=["w"], features_shape=[2], name="p_{prior}")
    program = to_pyro(lik * prior, observed=["y"], global_vars=["w"])
    y = torch.zeros(N, 3)
    with pytest.raises(ShapeError) as direct:
        LogProb(lik).eval({"y": y, "w": torch.zeros(1, 2)})
    with pytest.raises(ShapeError) as ours:
        pyro.poutine.trace(program).get_trace(y=y)
    assert str(ours.value).startswith(str(direct.value))  # Pyro appends its trace shapes
    assert 'p(y|w): "y" has shape (20, 3)' in str(ours.value)


def test_an_integer_value_under_a_normal_is_the_direct_executors_error():
    p = Normal(loc=0., scale=1., var=["x"], features_shape=[2])
    x = torch.ones(4, 2, dtype=torch.long)
    with pytest.raises(SupportError) as direct:
        LogProb(p).eval({"x": x})
    with pytest.raises(SupportError) as ours:
        pyro.poutine.trace(to_pyro(p, observed=["x"])).get_trace(x=x)
    assert str(ours.value).startswith(str(direct.value))  # Pyro appends its trace shapes
    assert "has dtype torch.int64; a Normal takes floating-point values" in str(ours.value)


class _Learn(Normal):
    """``p(z)`` with a trainable mean."""

    def __init__(self, name="p"):
        super().__init__(var=["z"], features_shape=[1], name=name)
        self.loc_ = nn.Parameter(torch.zeros(1))

    def forward(self):
        return {"loc": self.loc_, "scale": torch.ones(1)}


def _clash_svi(guide_name):
    prior, guide = _Learn(), _Learn(guide_name)
    lik = Normal(loc="z", scale=1., var=["x"], cond_var=["z"], features_shape=[1], name="p")
    svi = SVI(to_pyro(lik * prior, observed=["x"], global_vars=["z"]),
              to_pyro(guide, global_vars=["z"]), pyro.optim.Adam({"lr": 0.05}), Trace_ELBO())
    return svi, guide


def test_a_guide_and_a_prior_that_print_alike_are_an_error():
    svi, _ = _clash_svi("p")
    with pytest.raises(ParameterError) as e:
        svi.step(x=torch.full((50, 1), 3.0))
    msg = str(e.value)
    assert '"p(z)$$$loc_"' in msg and "prints as p(z)" in msg and "_Learn" in msg
    assert 'name="q"' in msg


def test_distinct_names_keep_their_store_names_and_both_train():
    svi, guide = _clash_svi("q")
    for _ in range(50):
        svi.step(x=torch.full((50, 1), 3.0))
    assert sorted(pyro.get_param_store().keys()) == ["p(z)$$$loc_", "q(z)$$$loc_"]
    assert guide.loc_.item() > 0.5  # the guide's mean moves towards the posterior's


def _global_pair():
    lik = Normal(loc="w", scale=1., var=["y"], cond_var=["w"], features_shape=[1], name="p")
    prior = Normal(loc=0., scale=1., var=["w"], features_shape=[1], name="p_{prior}")
    q = Normal(loc=torch.tensor([1.7]), scale=torch.tensor([0.2]), var=["w"],
               features_shape=[1], name="q")
    return (to_pyro(lik * prior, observed=["y"], global_vars=["w"]),
            to_pyro(q, global_vars=["w"]), -ELBO(lik * prior, q).sum())


def test_global_vars_programs_take_the_direct_route_with_the_reason():
    model, guide, loss = _global_pair()
    torch.manual_seed(0)
    y = torch.randn(N, 1) + 1.5
    name, why = SVILoss(loss).route(model, guide)
    assert name is None
    assert "['w'] once for all rows (global_vars)" in why and "Trace_ELBO()" in why
    torch.manual_seed(1)
    direct = float(loss.eval({"y": y}))
    torch.manual_seed(1)
    assert SVILoss(loss).loss(model, guide, y=y) == pytest.approx(direct, rel=1e-6)
    with pytest.raises(LossError, match="global_vars"):
        SVILoss(loss, executor="pyro")(model, guide, y=y)


def _wrapped_regression():
    def regression(x, y=None):
        w = pyro.sample("w", pd.Normal(0., 1.))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("y", pd.Normal(w * x, 1.), obs=y)

    def regression_guide(x, y=None):
        loc = pyro.param("g_loc", torch.tensor(1.0))
        pyro.sample("w", pd.Normal(loc, 0.3))

    p = from_pyro(regression, var=["y", "w"])
    q = from_pyro(regression_guide, var=["w"], name="q")
    torch.manual_seed(0)
    x = torch.randn(50)
    return regression, regression_guide, p, q, x, 2 * x + torch.randn(50)


def test_iwae_of_a_wrapped_global_site_is_pyros_renyi_elbo_in_value_and_gradient():
    model, guide, p, q, x, y = _wrapped_regression()
    loss = SVILoss(-IWAE(p, q, 8).sum())
    assert loss.route(model, guide) == ("RenyiELBO", "")
    renyi = RenyiELBO(0., num_particles=8, vectorize_particles=True, max_plate_nesting=1)
    for seed in range(3):
        torch.manual_seed(seed)
        ours = loss.differentiable_loss(model, guide, x, y)
        torch.manual_seed(seed)
        assert loss.loss(model, guide, x, y) == pytest.approx(float(ours.detach()), rel=1e-6)
        torch.manual_seed(seed)
        assert renyi.loss(model, guide, x, y) == pytest.approx(float(ours.detach()), rel=1e-6)
        param = pyro.param("g_loc").unconstrained()
        (ga,) = torch.autograd.grad(ours, [param])
        param.grad = None
        torch.manual_seed(seed)
        renyi.loss_and_grads(model, guide, x, y)
        assert float(ga) == pytest.approx(float(param.grad), rel=1e-5)
        param.grad = None


def test_the_direct_route_says_it_uses_every_row_of_a_subsampled_program():
    prior = Normal(loc=0., scale=1., var=["z"], features_shape=[1])
    p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"], features_shape=[1]) * prior
    q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], features_shape=[1], name="q")
    loss = SVILoss(-ELBO(p, q).sum() + 0 * LogProb(prior, sum_features=True).sum())
    model = to_pyro(p, observed=["x"], subsample_size=10)
    guide = to_pyro(q, subsample_size=10)
    name, why = loss.route(model, guide)
    assert name is None
    assert "every row of the data, not on the programs' subsample" in why
    assert SVILoss(-ELBO(p, q).sum()).route(model, guide) == ("Trace_ELBO", "")
