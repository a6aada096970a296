"""ProductOfNormal and ElementWiseProductOfNormal against the closed-form product of
Gaussians: precision-weighted means, KL, log-density, missing experts, weights, errors."""
import math

import pytest
import torch
from torch.distributions import Normal as TorchNormal
from torch.distributions import kl_divergence

from pixyz_pyro.dist import ElementWiseProductOfNormal, Normal, ProductOfNormal
from pixyz_pyro.errors import ParameterError, VariableError
from pixyz_pyro.loss import KullbackLeibler, LogProb


class Expert(Normal):
    """``loc = a * input``, ``scale = s``: known parameters for closed forms."""

    def __init__(self, cond: str, a: float, s: float, name: str):
        super().__init__(var=["z"], cond_var=[cond], name=name)
        self.cond, self.a, self.s = cond, a, s

    def forward(self, **kw):
        x = kw[self.cond]
        return {"loc": self.a * x, "scale": torch.full_like(x, self.s)}


def closed_form(locs, scales, weights, prior_weight=1.0):
    prec = prior_weight + sum(w / s ** 2 for w, s in zip(weights, scales))
    loc = sum(w * m / s ** 2 for w, m, s in zip(weights, locs, scales)) / prec
    return loc, prec ** -0.5


@pytest.fixture
def experts():
    return Expert("x", 1.0, 0.5, "q_x"), Expert("y", 2.0, 2.0, "q_y")


def test_two_experts_match_the_precision_weighted_product(experts):
    x, y = torch.full((3, 4), 1.5), torch.full((3, 4), -0.5)
    q = ProductOfNormal(list(experts), name="q")
    params = q.get_params({"x": x, "y": y})
    loc, scale = closed_form([1.5, -1.0], [0.5, 2.0], [1.0, 1.0])
    torch.testing.assert_close(params["loc"], torch.full((3, 4), loc))
    torch.testing.assert_close(params["scale"], torch.full((3, 4), scale))
    assert loc == pytest.approx((1.5 * 4 - 1.0 / 4) / (1 + 4 + 0.25))


def test_weights_scale_each_experts_precision(experts):
    x, y = torch.ones(2, 1), torch.ones(2, 1)
    q = ProductOfNormal(list(experts), weight_modalities=[0.5, 2.0, 3.0])
    params = q.get_params({"x": x, "y": y})
    loc, scale = closed_form([1.0, 2.0], [0.5, 2.0], [2.0, 3.0], prior_weight=0.5)
    torch.testing.assert_close(params["loc"], torch.full((2, 1), loc))
    torch.testing.assert_close(params["scale"], torch.full((2, 1), scale))


def test_a_missing_modality_drops_its_expert(experts):
    q = ProductOfNormal(list(experts))
    y = torch.full((2, 3), 1.0)
    loc, scale = closed_form([2.0], [2.0], [1.0])  # p(z) q_y(z|y) only
    params = q.get_params({"y": y})
    torch.testing.assert_close(params["loc"], torch.full((2, 3), loc))
    torch.testing.assert_close(params["scale"], torch.full((2, 3), scale))
    assert q.sample({"y": y})["z"].shape == (2, 3)


def test_no_input_is_the_standard_normal_prior(experts):
    q = ProductOfNormal(list(experts), features_shape=[3])
    torch.manual_seed(0)
    z = q.sample(batch_n=20000)["z"]
    assert z.shape == (20000, 3)
    torch.testing.assert_close(z.mean(0), torch.zeros(3), atol=0.03, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(3), atol=0.03, rtol=0)


def test_samples_have_the_product_moments(experts):
    q = ProductOfNormal(list(experts))
    torch.manual_seed(1)
    x, y = torch.full((40000, 1), 1.0), torch.full((40000, 1), 1.0)
    z = q.sample({"x": x, "y": y})["z"]
    loc, scale = closed_form([1.0, 2.0], [0.5, 2.0], [1.0, 1.0])
    assert float(z.mean()) == pytest.approx(loc, abs=0.01)
    assert float(z.std()) == pytest.approx(scale, abs=0.01)


def test_log_prob_and_kl_are_those_of_the_product_normal(experts):
    q = ProductOfNormal(list(experts), name="q")
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2], name="p")
    x, y, z = torch.ones(5, 2), -torch.ones(5, 2), torch.linspace(-1, 1, 10).reshape(5, 2)
    loc, scale = closed_form([1.0, -2.0], [0.5, 2.0], [1.0, 1.0])
    ref = TorchNormal(torch.full((5, 2), loc), torch.full((5, 2), scale))
    lp = LogProb(q).eval({"x": x, "y": y, "z": z})
    torch.testing.assert_close(lp, ref.log_prob(z).sum(-1))
    kl = KullbackLeibler(q, prior).eval({"x": x, "y": y})
    torch.testing.assert_close(kl, kl_divergence(ref, TorchNormal(0.0, 1.0)).sum(-1))
    # closed form of KL(N(m, s^2) || N(0, 1)) per dimension, two dimensions
    per_dim = 0.5 * (scale ** 2 + loc ** 2 - 1 - 2 * math.log(scale))
    torch.testing.assert_close(kl, torch.full((5,), 2 * per_dim))


def test_gradients_reach_every_expert_network():
    qx = Normal(loc="x", scale=torch.nn.Parameter(torch.ones(1)), var=["z"], cond_var=["x"])
    qy = Normal(loc="y", scale=torch.nn.Parameter(torch.ones(1)), var=["z"], cond_var=["y"])
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[1])
    loss = KullbackLeibler(ProductOfNormal([qx, qy]), prior).sum()
    loss.eval({"x": torch.ones(3, 1), "y": torch.ones(3, 1)}).backward()
    assert qx.scale.grad is not None and qy.scale.grad is not None
    assert float(qx.scale.grad.abs()) > 0 and float(qy.scale.grad.abs()) > 0


def test_zero_scale_means_an_absent_expert():
    from pixyz_pyro.dist.poe import product_params

    loc = torch.tensor([[[5.0], [5.0]], [[1.0], [1.0]]])  # (experts, batch, features)
    scale = torch.tensor([[[0.0], [1.0]], [[1.0], [1.0]]])
    out_loc, out_scale = product_params(loc, scale, torch.ones(2))
    torch.testing.assert_close(out_loc, torch.tensor([[1.0 / 2], [6.0 / 3]]))
    torch.testing.assert_close(out_scale, torch.tensor([[0.5 ** 0.5], [3 ** -0.5]]))


def test_element_wise_matches_one_expert_per_element():
    class E(Normal):
        def __init__(self):
            super().__init__(var=["z"], cond_var=["y"], name="e")
            self.w = torch.arange(12.0).reshape(4, 3) / 10

        def forward(self, y):
            return {"loc": y @ self.w, "scale": 0.5 + y.abs().sum(-1, keepdim=True).expand(
                -1, 3)}

    e = E()
    q = ElementWiseProductOfNormal(e, name="q")
    y = torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 3.0]])
    params = q.get_params({"y": y})
    for b in range(3):
        locs, scales = [], []
        for k in range(4):
            if y[b, k] != 0:
                masked = torch.zeros(1, 4)
                masked[0, k] = y[b, k]
                out = e.get_params({"y": masked})
                locs.append(out["loc"][0])
                scales.append(out["scale"][0])
        prec = 1 + sum(s ** -2 for s in scales)
        loc = sum(m / s ** 2 for m, s in zip(locs, scales)) / prec if locs else torch.zeros(3)
        torch.testing.assert_close(params["loc"][b], loc)
        torch.testing.assert_close(params["scale"][b], prec ** -0.5 * torch.ones(3))


def test_printing_follows_pixyz(experts):
    q = ProductOfNormal(list(experts), name="q")
    assert q.prob_text == "q(z|x,y)"
    assert q.prob_joint_factorized_and_text == "q(z|x,y) \\propto p(z)q_{x}(z|x)q_{y}(z|y)"
    assert len(list(q.parameters())) == 0 and len(q.p) == 2


def test_errors_name_the_problem(experts):
    from pixyz_pyro.dist import Bernoulli

    with pytest.raises(ParameterError, match="every expert must be a Normal; p\\(z\\|x\\) is a "
                                             "Bernoulli"):
        ProductOfNormal([Bernoulli(probs="x", var=["z"], cond_var=["x"])])
    with pytest.raises(VariableError, match="every expert must define \\['z'\\]; p\\(w\\|x\\)"):
        ProductOfNormal([experts[0], Normal(loc="x", scale=1.0, var=["w"], cond_var=["x"])])
    with pytest.raises(ParameterError, match="weight_modalities needs 3 weights"):
        ProductOfNormal(list(experts), weight_modalities=[1.0, 1.0])
    with pytest.raises(ParameterError, match="needs at least one expert"):
        ProductOfNormal([])
    with pytest.raises(VariableError, match="one conditioning variable; p\\(z\\|x,y\\)"):
        ElementWiseProductOfNormal(Normal(loc="x", scale="y", var=["z"], cond_var=["x", "y"]))


def test_to_pyro_emits_the_product_as_one_normal_site(experts):
    import pyro

    from pixyz_pyro.infer import to_pyro

    q = ProductOfNormal(list(experts), name="q")
    x, y = torch.ones(3, 2), torch.ones(3, 2)
    tr = pyro.poutine.trace(to_pyro(q)).get_trace(x=x, y=y)
    fn = tr.nodes["z"]["fn"]
    loc, scale = closed_form([1.0, 2.0], [0.5, 2.0], [1.0, 1.0])
    assert fn.event_shape == (2,) and fn.batch_shape == (3,)
    torch.testing.assert_close(fn.base_dist.loc, torch.full((3, 2), loc))
    torch.testing.assert_close(fn.base_dist.scale, torch.full((3, 2), scale))
