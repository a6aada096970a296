"""Flow distributions: change of variables, densities that integrate to one, training,
and the Pyro translation."""
import math

import pyro
import pytest
import torch
from torch import nn

from pixyz_pyro.dist import InverseTransformedDistribution, Normal, TransformedDistribution
from pixyz_pyro.flows import AffineCoupling, FlowList, PlanarFlow
from pixyz_pyro.infer import to_pyro
from pixyz_pyro.loss import LogProb
from pixyz_pyro.model import ML


def _prior():
    return Normal(loc=torch.zeros(2), scale=torch.ones(2), var=["z"], name="p_{prior}")


def _coupling(inverse_mask: bool):
    def net():
        return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
    return AffineCoupling(2, mask_type="channel_wise", scale_net=nn.Sequential(net(), nn.Tanh()),
                          translate_net=net(), inverse_mask=inverse_mask)


def _realnvp(n: int = 4):
    return InverseTransformedDistribution(
        _prior(), FlowList([_coupling(i % 2 == 1) for i in range(n)]), var=["x"])


def _grid_mass(p, half_width: float = 9.0, n: int = 301) -> float:
    g = torch.linspace(-half_width, half_width, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    pts = torch.stack([xx.flatten(), yy.flatten()], -1)
    with torch.no_grad():
        lp = p.get_log_prob({"x": pts})
    return float(lp.exp().sum() * (g[1] - g[0]) ** 2)


def test_inverse_transformed_density_integrates_to_one():
    torch.manual_seed(3)
    p = _realnvp().double()
    for f in p.flow:  # perturb away from the identity so the test means something
        for w in f.parameters():
            w.data.normal_(0, 0.5)
    assert _grid_mass(p) == pytest.approx(1.0, abs=0.01)


def test_change_of_variables_matches_the_jacobian():
    torch.manual_seed(0)
    p = _realnvp(2).double()
    x = torch.randn(3, 2, dtype=torch.float64)
    f = p.flow
    z = f(x)
    jac = torch.stack([torch.autograd.functional.jacobian(lambda v: f(v[None])[0], xi)
                       for xi in x])
    expected = (-0.5 * z.pow(2).sum(-1) - math.log(2 * math.pi)
                + torch.linalg.slogdet(jac)[1])
    torch.testing.assert_close(p.get_log_prob({"x": x}), expected)


def test_transformed_distribution_scores_its_own_samples_by_change_of_variables():
    torch.manual_seed(0)
    prior = _prior()
    p = TransformedDistribution(prior, FlowList([PlanarFlow(2) for _ in range(2)]), var=["x"])
    s = p.sample(batch_n=5)
    assert set(s) == {"x", "z"}  # the latent comes back too, as in Pixyz
    # Planar flows have no closed-form inverse: they invert their latest output.
    lp = p.get_log_prob({"x": s["x"]})
    p.flow(s["z"])
    expected = prior.get_log_prob({"z": s["z"]}) - p.flow.logdet_jacobian
    torch.testing.assert_close(lp, expected)
    assert "f_{flow}" in str(p)  # the printed formula shows the flow


def test_transformed_distribution_density_inverts_each_coupling_once():
    """log p(z) = log p_prior(f^{-1}(z)) - log|det J_f| at f^{-1}(z), from ONE inverse pass
    per coupling (its networks run once), against the Jacobian by autograd."""
    torch.manual_seed(0)
    flow = FlowList([_coupling(i % 2 == 1) for i in range(3)]).double()
    for w in flow.parameters():  # away from the identity
        w.data.normal_(0, 0.5)
    p = TransformedDistribution(_prior().double(), flow, var=["x"])
    runs = []
    for f in flow:
        f.pyro_transform.scale_net.register_forward_hook(lambda *_: runs.append(1))
    z = torch.randn(4, 2, dtype=torch.float64)
    lp = p.get_log_prob({"x": z})
    assert len(runs) == 3
    x = flow.inverse(z)
    jac = torch.stack([torch.autograd.functional.jacobian(lambda v: flow(v[None])[0], xi)
                       for xi in x])
    expected = (-0.5 * x.pow(2).sum(-1) - math.log(2 * math.pi)
                - torch.linalg.slogdet(jac)[1])
    torch.testing.assert_close(lp, expected)


def test_realnvp_on_two_moons_beats_its_base_distribution():
    torch.manual_seed(0)

    def moons(n):
        t = torch.rand(n) * math.pi
        upper = torch.rand(n) < 0.5
        x = torch.where(upper, torch.cos(t), 1 - torch.cos(t))
        y = torch.where(upper, torch.sin(t), 0.5 - torch.sin(t))
        return torch.stack([x, y], -1) + 0.05 * torch.randn(n, 2)

    train, test = moons(1024), moons(512)
    p = _realnvp(4)
    base = -LogProb(p).mean().eval({"x": test}).item()
    model = ML(p, optimizer_params={"lr": 5e-3})
    for _ in range(300):
        idx = torch.randint(0, 1024, (128,))
        model.train({"x": train[idx]})
    trained = model.test({"x": test}).item()
    assert trained < base - 0.8, (base, trained)


def test_to_pyro_of_a_flow_distribution_trains_in_svi():
    torch.manual_seed(0)
    pyro.clear_param_store()
    p = _realnvp(2)
    data = torch.randn(256, 2) * torch.tensor([0.3, 2.0]) + torch.tensor([1.0, -1.0])
    program = to_pyro(p, observed=["x"])
    tr = pyro.poutine.trace(program).get_trace(x=data)
    torch.testing.assert_close(tr.nodes["x"]["fn"].log_prob(data), p.get_log_prob({"x": data}))
    svi = pyro.infer.SVI(program, lambda **kw: None, pyro.optim.Adam({"lr": 1e-2}),
                         pyro.infer.Trace_ELBO())
    first = svi.evaluate_loss(x=data)
    for _ in range(150):
        svi.step(x=data)
    assert svi.evaluate_loss(x=data) < first - 50
