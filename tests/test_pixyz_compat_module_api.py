"""The nn.Module side of losses (loss/module_api.py), on dummies and on real loss nodes
with the mixin applied."""
import pytest
import torch
from torch import nn

from pixyz_pyro.dist import Deterministic, EmpiricalDistribution, Normal
from pixyz_pyro.loss import AdversarialJensenShannon, KullbackLeibler, LogProb
from pixyz_pyro.loss.module_api import ModuleAPI, held_modules


class Enc(Normal):
    def __init__(self):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.net = nn.Linear(3, 2)

    def forward(self, x):
        return {"loc": self.net(x), "scale": torch.ones(x.shape[0], 2)}


class Dec(Normal):
    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.net = nn.Linear(2, 3)

    def forward(self, z):
        return {"loc": self.net(z), "scale": torch.ones(z.shape[0], 3)}


class Leaf(ModuleAPI):
    children = ()

    def __init__(self, *dists):
        self.dists = dists

    def distributions(self):
        return list(self.dists)


class Pair(ModuleAPI):
    def __init__(self, a, b, extra=None):
        self.a, self.b, self.extra = a, b, extra

    @property
    def children(self):
        return (self.a, self.b)

    def distributions(self):
        return self.a.distributions() + self.b.distributions()


# the mixin on real (frozen) loss nodes (last in the bases: this also holds once Loss
# derives from it)
class KL(KullbackLeibler, ModuleAPI):
    pass


class AJS(AdversarialJensenShannon, ModuleAPI):
    pass


def test_modules_are_found_once_and_in_order():
    q, p = Enc(), Dec()
    disc = nn.Linear(3, 1)
    loss = Pair(Leaf(q), Leaf(p, q), extra=disc)
    assert held_modules(loss) == [disc, q, p] or held_modules(loss) == [q, p, disc]
    assert set(map(id, loss.modules())) == {id(q), id(p), id(disc)}
    params = list(loss.parameters())
    assert len(params) == 6 and len({id(w) for w in params}) == 6


def test_a_factor_inside_a_listed_joint_is_not_listed_again():
    p = Dec()
    joint = p * Normal(loc=0., scale=1., var=["z"], features_shape=[2])
    loss = Pair(Leaf(joint), Leaf(p))
    assert held_modules(loss) == [joint]
    assert len(list(loss.parameters())) == 2


def test_to_moves_and_casts_every_held_module():
    q, p = Enc(), Dec()
    loss = Pair(Leaf(q), Leaf(p))
    assert loss.to(torch.float64) is loss
    assert all(w.dtype == torch.float64 for w in list(q.parameters()) + list(p.parameters()))
    loss.to("cpu")
    assert all(w.device.type == "cpu" for w in loss.parameters())


def test_train_sets_modes_and_eval_is_not_overridden():
    q = Enc()
    loss = KL(q, Normal(loc=0., scale=1., var=["z"], features_shape=[2]))
    assert loss.train(False) is loss and not q.training and not loss.training
    loss.train()
    assert q.training and loss.training
    # Loss.eval is the evaluation of the loss (Pixyz's meaning), not nn.Module.eval
    x = torch.zeros(4, 3)
    assert loss.eval({"x": x}).shape == (4,)
    with pytest.raises(ValueError, match="train\\(mode\\) takes a bool"):
        loss.train("yes")


def test_discriminator_parameters_come_with_the_adversarial_loss():
    g = Normal(loc=0., scale=1., var=["x"], features_shape=[3])
    d = Deterministic(var=["t"], cond_var=["x"], name="d")
    d.net = nn.Linear(3, 1)
    loss = AJS(EmpiricalDistribution(["x"]), g, d)
    assert set(map(id, loss.parameters())) == set(map(id, d.parameters()))


def test_state_dict_round_trip():
    q = Enc()
    loss = KL(q, Normal(loc=0., scale=1., var=["z"], features_shape=[2]))
    sd = loss.state_dict()
    assert list(sd)[:2] == ["0.net.weight", "0.net.bias"]
    q2 = Enc()
    loss2 = KL(q2, Normal(loc=0., scale=1., var=["z"], features_shape=[2]))
    res = loss2.load_state_dict(sd)
    assert not res.missing_keys and not res.unexpected_keys
    assert torch.equal(q2.net.weight, q.net.weight)
    with pytest.raises(KeyError, match="keys \\['net.weight'\\] match none of the loss's"):
        loss2.load_state_dict({"net.weight": q.net.weight})


def test_zero_grad_and_requires_grad():
    q = Enc()
    loss = Leaf(q)
    LogProb(q).eval({"x": torch.ones(2, 3), "z": torch.ones(2, 2)}).sum().backward()
    assert q.net.weight.grad is not None
    loss.zero_grad()
    assert q.net.weight.grad is None
    loss.requires_grad_(False)
    assert not any(w.requires_grad for w in q.parameters())


def test_the_mixin_sets_no_attribute_on_frozen_nodes():
    q = Enc()
    loss = KL(q, Normal(loc=0., scale=1., var=["z"], features_shape=[2]))
    before = dict(vars(loss))
    loss.to(torch.float32).train().state_dict()
    list(loss.parameters())
    assert vars(loss).keys() == before.keys()
