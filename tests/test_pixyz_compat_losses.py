"""MMD on a batch of one and against marginalized data, as Pixyz's examples use it."""
import math

import torch

from pixyz_pyro.dist import Deterministic, EmpiricalDistribution, Normal
from pixyz_pyro.loss import MMD


class Shift(Deterministic):
    def __init__(self, by, name):
        super().__init__(var=["z"], cond_var=["x"], name=name)
        self.by = by

    def forward(self, x):
        return {"z": x + self.by}


def test_mmd_of_one_sample_is_the_v_statistic():
    # k(x,x) + k(y,y) - 2 k(x,y) with y = x + 1 in 4 features: 2 - 2 exp(-4 / 2)
    value = MMD(Shift(0., "p"), Shift(1., "q")).eval({"x": torch.randn(1, 4)})
    torch.testing.assert_close(value, torch.tensor(2 - 2 * math.exp(-2.0)))


def test_mmd_of_a_batch_is_unbiased():
    x = torch.tensor([[0.], [1.]])
    value = MMD(Shift(0., "p"), Shift(0., "q"), kernel="inv-multiquadratic").eval({"x": x})
    # both sides equal: off-diagonal terms cancel exactly against the cross term's
    # off-diagonal half, leaving 2 k(0,1) - (2/4)(2 k(0,0) + 2 k(0,1)) = k(0,1) - k(0,0)
    k01, k00 = 2 / (1 + 2), 1.0
    torch.testing.assert_close(value, torch.tensor(k01 - k00))


def test_mmd_reads_data_through_a_marginalized_empirical_distribution():
    q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
    prior = Normal(loc=torch.zeros(3), scale=torch.ones(3), var=["z"], name="p_{prior}")
    q_mg = (q * EmpiricalDistribution(["x"])).marginalize_var("x")
    assert q_mg.input_var == ["x"] and q_mg.var == ["z"] and q_mg.cond_var == []
    x = torch.randn(5, 3)
    torch.manual_seed(0)
    a = MMD(q_mg, prior).eval({"x": x})
    torch.manual_seed(0)
    b = MMD(q, prior).eval({"x": x})
    torch.testing.assert_close(a, b)
