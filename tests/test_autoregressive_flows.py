"""MAF and IAF on Pyro's AffineAutoregressive transforms: the exact log-determinant against
torch.autograd's Jacobian, the autoregressive (triangular) structure, densities equal to
Pyro's own TransformedDistribution and integrating to one, a MAF fit to two moons, and an
IAF posterior that trains a VAE."""
import math

import pyro.distributions as pd
import pytest
import torch
from torch import nn
from torch.autograd.functional import jacobian

from pixyz_pyro.dist import (
    Bernoulli,
    InverseTransformedDistribution,
    Normal,
    TransformedDistribution,
)
from pixyz_pyro.errors import VariableError
from pixyz_pyro.flows import IAF, MAF, FlowList, Reverse
from pixyz_pyro.loss import ELBO, IWAE
from pixyz_pyro.model import ML, Model

D = 4


def _std_normal(d, var="z", name="p_{prior}"):
    return Normal(loc=torch.zeros(d), scale=torch.ones(d), var=[var], name=name)


@pytest.mark.parametrize("kind", ["plain", "conditional", "stable"])
def test_logdet_is_log_abs_det_of_the_autograd_jacobian(kind):
    torch.manual_seed(0)
    f = MAF(D, [16], cond_features=3 if kind == "conditional" else None,
            stable=kind == "stable")
    x, y = torch.randn(5, D), torch.randn(5, 3)
    call = (lambda v: f(v, y)) if kind == "conditional" else f
    z = call(x)
    logdet = f.logdet_jacobian
    assert logdet.shape == (5,)
    for i in range(5):
        yi = y[i:i + 1]
        g = (lambda v, yi=yi: f(v[None], yi)[0]) if kind == "conditional" else \
            (lambda v: f(v[None])[0])
        j = jacobian(g, x[i])
        assert torch.allclose(torch.linalg.slogdet(j)[1], logdet[i], atol=1e-5)
        # natural order: z_d reads x_{<=d}, so the Jacobian is lower-triangular
        assert torch.equal(torch.triu(j, 1), torch.zeros_like(j))
    back = f.inverse(z, y) if kind == "conditional" else f.inverse(z)
    assert torch.allclose(back, x, atol=1e-5)


def test_a_permutation_orders_the_features():
    torch.manual_seed(0)
    f = IAF(3, [12], permutation=[2, 0, 1])
    x = torch.randn(3)
    j = jacobian(lambda v: f(v[None])[0], x)
    # z_2 is first (reads only x_2), then z_0 (x_2, x_0), then z_1 (all)
    assert j[2, 0] == 0 and j[2, 1] == 0 and j[0, 1] == 0
    assert j[1].abs().min() > 0


def test_maf_density_equals_pyros_transformed_distribution_and_integrates_to_one():
    torch.manual_seed(1)
    flow = FlowList([MAF(2, [16]), Reverse(2), MAF(2, [16])])
    p = InverseTransformedDistribution(_std_normal(2), flow, var=["x"])
    x = torch.randn(7, 2) * 2
    ours = p.get_log_prob({"x": x})
    # Pyro's spelling: noise -> data is the inverse of the data -> noise map
    ts = [flow[0].transform, flow[1].transform, flow[2].transform]
    theirs = pd.TransformedDistribution(pd.Normal(torch.zeros(2), 1.).to_event(1),
                                        [t.inv for t in reversed(ts)]).log_prob(x)
    assert torch.allclose(ours, theirs, atol=1e-5)
    g = torch.linspace(-9, 9, 361)
    grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        mass = p.get_log_prob({"x": grid}).exp().sum() * (g[1] - g[0]) ** 2
    assert abs(float(mass) - 1.0) < 5e-3


def test_iaf_posterior_equals_pyros_transformed_distribution_and_scores_its_draws():
    torch.manual_seed(2)
    q0 = Normal(loc="x", scale=0.7, var=["z0"], cond_var=["x"], features_shape=[D],
                name="q_0")
    f = IAF(D, [20], cond_features=D)
    q = TransformedDistribution(q0, f, var=["z"], name="q", flow_cond_var="x")
    assert q.cond_var == ["x"] and q.var == ["z"]
    x = torch.randn(6, D)
    draw = q.sample({"x": x})
    ours = q.get_log_prob(draw)
    base = pd.Normal(x, 0.7).to_event(1)
    theirs = pd.TransformedDistribution(base, [f.pyro_transform.condition(x)]).log_prob(
        draw["z"])
    assert torch.allclose(ours, theirs, atol=1e-4)
    # the change of variables on the latent of the same draw
    f(draw["z0"], x)
    direct = q0.get_log_prob({"x": x, "z0": draw["z0"]}) - f.logdet_jacobian
    assert torch.allclose(ours, direct, atol=1e-4)


def test_flow_cond_var_must_be_a_conditioning_variable_of_the_prior():
    q0 = Normal(loc="x", scale=1., var=["z0"], cond_var=["x"], features_shape=[2])
    with pytest.raises(VariableError, match=r"flow_cond_var must be one of the prior's "
                                            r"conditioning variables \['x'\], got 'h'"):
        TransformedDistribution(q0, IAF(2, cond_features=2), var=["z"], flow_cond_var="h")


def test_errors_in_user_terms():
    with pytest.raises(ValueError, match="MAF: in_features is the number of features, a "
                                         "positive integer; got 0"):
        MAF(0)
    with pytest.raises(ValueError, match=r"IAF: permutation must order the 3 features "
                                         r"0..2, got \[0, 0, 1\]"):
        IAF(3, permutation=[0, 0, 1])
    with pytest.raises(ValueError, match="is conditional: call it with y="):
        MAF(2, cond_features=2)(torch.zeros(1, 2))


def _two_moons(n, gen):
    t = torch.rand(n, generator=gen) * math.pi
    upper = torch.rand(n, generator=gen) < 0.5
    x = torch.where(upper[:, None], torch.stack([t.cos(), t.sin()], -1),
                    torch.stack([1 - t.cos(), 0.5 - t.sin()], -1))
    return x + 0.08 * torch.randn(n, 2, generator=gen)


def test_maf_fits_two_moons_better_than_the_best_gaussian():
    gen = torch.Generator().manual_seed(0)
    train, test = _two_moons(1024, gen), _two_moons(1024, gen)
    torch.manual_seed(0)
    flow = FlowList([m for i in range(4) for m in (MAF(2, [32, 32]), Reverse(2))])
    p = InverseTransformedDistribution(_std_normal(2), flow, var=["x"])
    model = ML(p, optimizer=torch.optim.Adam, optimizer_params={"lr": 3e-3})
    for _ in range(400):
        model.train({"x": train})
    with torch.no_grad():
        ours = float(p.get_log_prob({"x": test}).mean())
        gauss = pd.MultivariateNormal(train.mean(0), torch.cov(train.T)).log_prob(test).mean()
    assert ours > float(gauss) + 0.5, (ours, float(gauss))


class _Enc(Normal):
    def __init__(self, x_dim, z_dim):
        super().__init__(var=["z0"], cond_var=["x"], name="q_0")
        self.net = nn.Linear(x_dim, 2 * z_dim)

    def forward(self, x):
        loc, s = self.net(x).chunk(2, -1)
        return {"loc": loc, "scale": nn.functional.softplus(s) + 1e-3}


class _Dec(Bernoulli):
    def __init__(self, x_dim, z_dim):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.net = nn.Sequential(nn.Linear(z_dim, 32), nn.Tanh(), nn.Linear(32, x_dim))

    def forward(self, z):
        return {"probs": torch.sigmoid(self.net(z))}


@pytest.mark.parametrize("bound", ["elbo", "iwae"])
def test_an_iaf_posterior_trains_a_vae(bound):
    torch.manual_seed(0)
    x_dim, z_dim = 8, 2
    protos = (torch.rand(4, x_dim) < 0.5).float()
    x = protos[torch.randint(0, 4, (128,))]
    x = torch.where(torch.rand_like(x) < 0.05, 1 - x, x)
    q = TransformedDistribution(_Enc(x_dim, z_dim), FlowList([
        IAF(z_dim, [16], cond_features=x_dim), Reverse(z_dim),
        IAF(z_dim, [16], cond_features=x_dim)]), var=["z"], name="q", flow_cond_var="x")
    p = _Dec(x_dim, z_dim) * _std_normal(z_dim)
    loss = -ELBO(p, q).mean() if bound == "elbo" else -IWAE(p, q, k=4).mean()
    model = Model(loss, distributions=[q, p], optimizer=torch.optim.Adam,
                  optimizer_params={"lr": 1e-2})
    first = [float(model.train({"x": x})) for _ in range(5)]
    for _ in range(150):
        model.train({"x": x})
    last = [float(model.train({"x": x})) for _ in range(5)]
    assert sum(last) / 5 < sum(first) / 5 - 1.0, (first, last)
