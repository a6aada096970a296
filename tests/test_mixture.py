"""MixtureModel, its posterior and MixtureOfNormal against closed forms."""
import math

import pyro
import pytest
import torch

from pixyz_pyro.dist import Categorical, MixtureModel, MixtureOfNormal, Normal
from pixyz_pyro.errors import VariableError
from pixyz_pyro.infer import to_pyro
from pixyz_pyro.loss import LogProb

MU = [-2.0, 0.5, 3.0]
SD = [0.5, 1.0, 0.8]
PI = [0.2, 0.5, 0.3]


def gauss(x, m, s):
    return -0.5 * ((x - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)


def mixture(dim=1):
    comps = [Normal(loc=torch.full((dim,), m), scale=torch.full((dim,), s), var=["x"],
                    name=f"p_{i}") for i, (m, s) in enumerate(zip(MU, SD))]
    prior = Categorical(probs=torch.tensor(PI), var=["z"], name="prior")
    return MixtureModel(distributions=comps, prior=prior)


def test_log_prob_is_the_closed_form_mixture_density():
    x = torch.tensor([[-2.5], [0.0], [1.7], [4.0]])
    expect = torch.tensor([math.log(sum(p * math.exp(gauss(v, m, s))
                                        for p, m, s in zip(PI, MU, SD))) for v in x[:, 0]])
    p = mixture()
    torch.testing.assert_close(p.get_log_prob({"x": x}), expect)
    torch.testing.assert_close(LogProb(p).eval({"x": x}), expect)


def test_features_are_summed_inside_each_component():
    p = mixture(dim=2)
    x = torch.tensor([[0.1, -1.0]])
    expect = math.log(sum(pi * math.exp(gauss(0.1, m, s) + gauss(-1.0, m, s))
                          for pi, m, s in zip(PI, MU, SD)))
    assert float(p.get_log_prob({"x": x})) == pytest.approx(expect, rel=1e-6)


def test_density_integrates_to_one():
    grid = torch.linspace(-8, 10, 4001).unsqueeze(1)
    mass = mixture().get_log_prob({"x": grid}).exp().sum() * (grid[1, 0] - grid[0, 0])
    assert float(mass) == pytest.approx(1.0, abs=1e-4)


def test_hidden_table_and_posterior_responsibilities():
    p = mixture()
    x = torch.tensor([[-1.0], [2.0]])
    table = p.get_log_prob({"x": x}, return_hidden=True)
    assert table.shape == (3, 2)
    expect = torch.tensor([[math.log(pi) + gauss(v, m, s) for v in (-1.0, 2.0)]
                           for pi, m, s in zip(PI, MU, SD)])
    torch.testing.assert_close(table, expect)
    post = p.posterior()
    assert post.prob_text == "p(z|x)" and post.var == ["z"]
    resp = post.get_log_prob({"x": x}).exp()
    torch.testing.assert_close(resp, expect.softmax(0))
    z = torch.eye(3)[[2, 0]]
    torch.testing.assert_close(post.get_log_prob({"x": x, "z": z}),
                               torch.stack([resp[2, 0], resp[0, 1]]).log())


def test_samples_follow_the_mixture_moments():
    torch.manual_seed(0)
    out = mixture().sample(batch_n=40000, return_hidden=True)
    x, z = out["x"][:, 0], out["z"]
    assert x.shape == (40000,) and z.shape == (40000, 3)
    mean = sum(p * m for p, m in zip(PI, MU))
    var = sum(p * (s ** 2 + m ** 2) for p, m, s in zip(PI, MU, SD)) - mean ** 2
    assert float(x.mean()) == pytest.approx(mean, abs=0.03)
    assert float(x.var()) == pytest.approx(var, rel=0.03)
    torch.testing.assert_close(z.mean(0), torch.tensor(PI), atol=0.01, rtol=0)
    first = x[z[:, 0] == 1]  # the draws of component 0 come from N(-2, 0.5)
    assert float(first.mean()) == pytest.approx(-2.0, abs=0.02)
    assert float(first.std()) == pytest.approx(0.5, abs=0.02)
    assert float(mixture().sample_mean()[0, 0]) == pytest.approx(mean)


def test_maximum_likelihood_recovers_two_components():
    torch.manual_seed(0)
    data = torch.cat([torch.randn(300, 1) * 0.5 - 2, torch.randn(700, 1) * 0.5 + 2])
    locs = [torch.nn.Parameter(torch.tensor([v])) for v in (-0.5, 0.5)]
    comps = [Normal(loc=loc, scale=0.5, var=["x"], name=f"p_{i}") for i, loc in
             enumerate(locs)]
    logits = torch.nn.Parameter(torch.zeros(2))
    p = MixtureModel(comps, Categorical(logits=logits, var=["z"], name="prior"))
    opt = torch.optim.Adam(p.parameters(), lr=0.05)
    loss = -LogProb(p).mean()
    for _ in range(300):
        opt.zero_grad()
        loss.eval({"x": data}).backward()
        opt.step()
    assert [round(float(v.detach()), 1) for v in locs] == [-2.0, 2.0]
    torch.testing.assert_close(logits.detach().softmax(0), torch.tensor([0.3, 0.7]),
                               atol=0.02, rtol=0)


def test_to_pyro_scores_the_same_density():
    p = mixture(dim=2)
    x = torch.randn(5, 2)
    tr = pyro.poutine.trace(to_pyro(p, observed=["x"])).get_trace(x=x)
    tr.compute_log_prob()
    torch.testing.assert_close(tr.nodes["x"]["log_prob"], p.get_log_prob({"x": x}))
    draw = p.pyro_dist({}).sample(torch.Size([7]))
    assert draw.shape == (7, 1, 2)


def test_mixture_errors_name_the_problem():
    comps = [Normal(loc=0., scale=1., var=["x"]), Normal(loc=1., scale=1., var=["x"])]
    with pytest.raises(ValueError, match="The prior must be the categorical distribution"):
        MixtureModel(comps, Normal(loc=0., scale=1., var=["z"]))
    with pytest.raises(ValueError, match="has 3 categories, but 2 distributions"):
        MixtureModel(comps, Categorical(probs=torch.ones(3) / 3, var=["z"]))
    with pytest.raises(VariableError, match="the same single variable"):
        MixtureModel([comps[0], Normal(loc=0., scale=1., var=["y"])],
                     Categorical(probs=torch.ones(2) / 2, var=["z"]))


def experts():
    px = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="p_x")
    py = Normal(loc="y", scale=2., var=["z"], cond_var=["y"], name="p_y")
    return px, py


def test_mixture_of_normal_density_is_the_weighted_mixture():
    p = MixtureOfNormal(list(experts()), weight_modalities=[0.25, 0.75])
    v = {"z": torch.tensor([[0.3]]), "x": torch.tensor([[1.0]]), "y": torch.tensor([[-1.0]])}
    expect = math.log(0.25 * math.exp(gauss(0.3, 1.0, 1.0)) +
                      0.75 * math.exp(gauss(0.3, -1.0, 2.0)))
    assert float(p.get_log_prob(v)) == pytest.approx(expect, rel=1e-6)
    assert float(p.pyro_dist(v).log_prob(v["z"])) == pytest.approx(expect, rel=1e-6)
    only_x = {"z": v["z"], "x": v["x"]}  # a missing expert drops out
    assert float(p.get_log_prob(only_x)) == pytest.approx(gauss(0.3, 1.0, 1.0), rel=1e-6)
    assert p.prob_text == "p(z|x,y)"


def test_mixture_of_normal_samples_and_gradients():
    torch.manual_seed(0)
    px, py = experts()
    p = MixtureOfNormal([px, py])
    n = 40000
    z = p.sample({"x": torch.full((n, 1), 3.0), "y": torch.full((n, 1), -3.0)})["z"]
    assert float(z.mean()) == pytest.approx(0.0, abs=0.05)
    assert float(z.var()) == pytest.approx(0.5 * 1 + 0.5 * 4 + 9, rel=0.03)
    assert float(p.sample_mean({"x": torch.ones(1, 1), "y": torch.zeros(1, 1)})) == 0.5
    x = torch.zeros(4, 1, requires_grad=True)
    p.sample({"x": x, "y": torch.zeros(4, 1)}, reparam=True)["z"].sum().backward()
    assert x.grad is not None and float(x.grad.sum()) > 0  # drawn from p_x: dz/dx = 1


def test_mixture_of_normal_errors():
    px, py = experts()
    with pytest.raises(ValueError, match="2 positive weights summing to 1"):
        MixtureOfNormal([px, py], weight_modalities=[0.5, 0.6])
    with pytest.raises(VariableError, match="at least one expert"):
        MixtureOfNormal([px, py]).sample({"w": torch.zeros(1, 1)})


def test_mixtures_follow_the_module_dtype():
    p = mixture().double()
    x = torch.zeros(3, 1, dtype=torch.float64)
    assert p.get_log_prob({"x": x}).dtype == torch.float64
    assert p.posterior().get_log_prob({"x": x, "z": torch.eye(3, dtype=torch.float64)}).dtype \
        == torch.float64
    moe = MixtureOfNormal(list(experts())).double()
    v = {"z": x, "x": x, "y": x}
    assert moe.get_log_prob(v).dtype == torch.float64
    assert moe.sample({"x": x, "y": x})["z"].dtype == torch.float64
