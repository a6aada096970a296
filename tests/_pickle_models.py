"""Module-level distributions for ``tests/test_pickle.py``: pickle finds classes and
functions by their module and name, so the cases must not be defined inside tests.

Each builder returns ``(distribution, values)``: a distribution with trainable
parameters or networks, and a batch of values to score it on.
"""
import pyro.distributions as pd
import torch
import torch.nn.functional as F
from torch import nn

from pixyz_pyro import dist as D
from pixyz_pyro.flows import AffineCoupling

#: A user's one-line lift, at module level as a user would write it.
StudentT = D.lift(pd.StudentT, ("df", "loc", "scale"))

B, N = 5, 3  # batch size, features


class CondNormal(D.Normal):
    """q(z|x): a network gives the location and scale."""

    def __init__(self, name="q"):
        super().__init__(var=["z"], cond_var=["x"], name=name)
        self.net = nn.Linear(N, 2 * N)

    def forward(self, x):
        h = self.net(x)
        return {"loc": h[..., :N], "scale": F.softplus(h[..., N:]) + 0.1}


class Double(D.Deterministic):
    """h = 2 x + b, a deterministic map with a parameter."""

    def __init__(self):
        super().__init__(var=["h"], cond_var=["x"], name="f")
        self.b = nn.Parameter(torch.full((N,), 0.5))

    def forward(self, x):
        return {"h": 2 * x + self.b}


class Expert(D.Normal):
    """p(z|y) for ElementWiseProductOfNormal: one expert per element of y."""

    def __init__(self):
        super().__init__(var=["z"], cond_var=["y"], name="e")
        self.w = nn.Parameter(torch.full((1,), 0.7))

    def forward(self, y):
        return {"loc": self.w * y.sum(-1, keepdim=True), "scale": torch.ones(len(y), 1)}


class ScaleNet(nn.Module):
    """The scale and translation nets of an affine coupling: a linear map."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(N, N)

    def forward(self, x):
        return torch.tanh(self.lin(x))


def _coupling():
    return AffineCoupling(N, mask_type="channel_wise", scale_net=ScaleNet(),
                          translate_net=ScaleNet())


def _mixture():
    return D.MixtureModel([D.Normal(loc=_p(N), scale=1.0, var=["x"], name="p_0"),
                           D.Normal(loc=-_p(N), scale=1.0, var=["x"], name="p_1")],
                          D.Categorical(probs=_probs(2), var=["c"], name="p_c"))


def _experts():
    return [D.Normal(loc="x", scale=_p(N), var=["z"], cond_var=["x"], name="p_x"),
            D.Normal(loc="y", scale=_p(N), var=["z"], cond_var=["y"], name="p_y")]


def standard_normal_log_prob(x):
    """A user's density for CustomProb: independent standard normals."""
    return (-0.5 * x ** 2 - 0.9189385332046727).sum(-1)


def _p(*shape):
    return nn.Parameter(torch.rand(*shape) * 0.5 + 0.5)


def _probs(*shape):
    return nn.Parameter(torch.softmax(torch.randn(*shape), -1))


def _one_hot(k=N):
    return F.one_hot(torch.randint(0, k, (B,)), k).float()


#: Every class of ``pixyz_pyro.dist.FAMILIES``, by name: how to build one and score it.
FAMILY_CASES = {
    "Normal": lambda: (D.Normal(loc=_p(N), scale=_p(N), var=["x"]),
                       {"x": torch.randn(B, N)}),
    "Laplace": lambda: (D.Laplace(loc=_p(N), scale=_p(N), var=["x"]),
                        {"x": torch.randn(B, N)}),
    "Beta": lambda: (D.Beta(concentration1=_p(N), concentration0=_p(N), var=["x"]),
                     {"x": torch.rand(B, N) * 0.8 + 0.1}),
    "Gamma": lambda: (D.Gamma(concentration=_p(N), rate=_p(N), var=["x"]),
                      {"x": torch.rand(B, N) + 0.1}),
    "Dirichlet": lambda: (D.Dirichlet(concentration=_p(N), var=["x"], features_shape=[N]),
                          {"x": torch.softmax(torch.randn(B, N), -1)}),
    "Bernoulli": lambda: (D.Bernoulli(probs=_p(N) * 0.5, var=["x"]),
                          {"x": torch.rand(B, N).round()}),
    "FactorizedBernoulli": lambda: (D.FactorizedBernoulli(probs=_p(N) * 0.5, var=["x"]),
                                    {"x": torch.rand(B, N).round()}),
    "RelaxedBernoulli": lambda: (D.RelaxedBernoulli(probs=_p(N) * 0.5, var=["x"]),
                                 {"x": torch.rand(B, N).round()}),
    "Categorical": lambda: (D.Categorical(probs=_probs(N), var=["x"]), {"x": _one_hot()}),
    "RelaxedCategorical": lambda: (D.RelaxedCategorical(probs=_probs(N), var=["x"]),
                                   {"x": _one_hot()}),
    "Multinomial": lambda: (D.Multinomial(total_count=1, probs=_probs(N), var=["x"]),
                            {"x": _one_hot()}),
}


def _prior(name="p_{prior}"):
    return D.Normal(loc=_p(N), scale=1.0, var=["z"], name=name)


def _x():
    return torch.randn(B, N)


#: The other public distributions and the combinators.
def _data_distribution():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return D.DataDistribution(["x"])


OTHER_CASES = {
    "lifted StudentT": lambda: (StudentT(df=_p(N) + 2, loc=_p(N), scale=_p(N), var=["x"]),
                                {"x": torch.randn(B, N)}),
    "conditional Normal with a network": lambda: (CondNormal(),
                                                  {"x": _x(), "z": torch.randn(B, N)}),
    "joint q(z|x) p(x)": lambda: (
        CondNormal() * D.Normal(loc=_p(N), scale=1.0, var=["x"]),
        {"x": _x(), "z": torch.randn(B, N)}),
    "replace_var": lambda: (CondNormal().replace_var(x="y"),
                            {"y": _x(), "z": torch.randn(B, N)}),
    "marginalize_var": lambda: (
        (CondNormal() * D.Normal(loc=_p(N), scale=1.0, var=["x"])).marginalize_var("z"),
        None),
    "Deterministic": lambda: (Double(), None),
    "EmpiricalDistribution": lambda: (D.EmpiricalDistribution(["x"]), None),
    "DataDistribution (deprecated spelling)": lambda: (_data_distribution(), None),
    "CustomProb": lambda: (D.CustomProb(standard_normal_log_prob, var=["x"]),
                           {"x": torch.randn(B, N)}),
    "TransformedDistribution": lambda: (
        D.TransformedDistribution(_prior(), _coupling(), var=["x"]),
        {"x": torch.randn(B, N)}),
    "InverseTransformedDistribution": lambda: (
        D.InverseTransformedDistribution(D.Normal(loc=_p(N), scale=1.0, var=["x"]),
                                         _coupling(), var=["z"]),
        {"z": torch.randn(B, N)}),
    "MixtureModel": lambda: (_mixture(), {"x": torch.randn(B, N)}),
    "PosteriorMixtureModel": lambda: (D.PosteriorMixtureModel(_mixture()),
                                      {"x": torch.randn(B, N), "c": _one_hot(2)}),
    "MixtureOfNormal": lambda: (D.MixtureOfNormal(_experts()),
                                {"x": _x(), "y": _x(), "z": torch.randn(B, N)}),
    "ElementWiseProductOfNormal": lambda: (
        D.ElementWiseProductOfNormal(Expert(), name="q"),
        {"y": torch.tensor([[2.0, 0.0, 4.0]] * B), "z": torch.randn(B, 1)}),
    "ProductOfNormal": lambda: (D.ProductOfNormal([CondNormal("q_1"), CondNormal("q_2")]),
                                {"x": _x(), "z": torch.randn(B, N)}),
    "AutoregressiveBernoulli": lambda: (
        D.AutoregressiveBernoulli(dim=N, hidden=4, cond_var=["z"], cond_dim=N),
        {"x": torch.bernoulli(torch.full((B, N), 0.5)), "z": torch.randn(B, N)}),
    "AutoregressiveCategorical": lambda: (
        D.AutoregressiveCategorical(dim=N, num_categories=3, hidden=4, cond_var=["z"],
                                    cond_dim=N),
        {"x": torch.randint(0, 3, (B, N)).float(), "z": torch.randn(B, N)}),
    "PixelCNN": lambda: (
        D.PixelCNN(2, 2, num_categories=3, channels=4, layers=1, kernel_size=3,
                   cond_var=["z"], cond_dim=N),
        {"x": torch.randint(0, 3, (B, 2, 2)).float(), "z": torch.randn(B, N)}),
}
