"""``utils.lru_cache_for_sample_dict``: a user-requested, bounded memo of a method (Pixyz
applies it to ``get_params``), whose results never go stale."""
import copy
import gc
import pickle
import weakref
from unittest import mock

import pytest
import torch
from torch import nn

import pixyz_pyro
from pixyz_pyro.dist import Normal
from pixyz_pyro.loss import Expectation, KullbackLeibler, LogProb
from pixyz_pyro.model import Model
from pixyz_pyro.utils import cache_maxsize, lru_cache_for_sample_dict


class Encoder(Normal):
    """q(z|x) = N(W x + b, 1), counting its forward calls; get_params memoised."""

    def __init__(self):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.fc = nn.Linear(2, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return {"loc": self.fc(x), "scale": torch.ones_like(x)}

    @lru_cache_for_sample_dict()
    def get_params(self, params_dict=None, **kwargs):
        return super().get_params(params_dict, **kwargs)


class Plain(Encoder):
    """The same network without the memo (get_params is the library's)."""

    get_params = Normal.get_params


def test_the_default_size_is_pixyz_s():
    assert cache_maxsize() == 20


def test_a_hit_returns_the_same_object_without_running_forward():
    q, x = Encoder(), torch.randn(3, 2)
    a = q.get_params({"x": x})
    b = q.get_params({"x": x})
    assert b is a and q.calls == 1
    assert torch.allclose(a["loc"], q.fc(x))
    # sampling and scoring compute the parameters through get_params, so they hit too
    q.sample({"x": x})
    lp = q.get_log_prob({"x": x, "z": torch.zeros(3, 2)})
    assert q.calls == 1
    by_hand = (-(q.fc(x)) ** 2 / 2 - 0.5 * torch.log(torch.tensor(2 * torch.pi))).sum(-1)
    assert torch.allclose(lp, by_hand)
    # an equal but different tensor is another input
    q.get_params({"x": x.clone()})
    assert q.calls == 2


def test_a_miss_after_an_in_place_change_of_an_input():
    q, x = Encoder(), torch.randn(3, 2)
    a = q.get_params({"x": x})
    x.add_(1.0)
    b = q.get_params({"x": x})
    assert b is not a and q.calls == 2
    assert torch.allclose(b["loc"], q.fc(x))


def test_a_miss_after_an_optimizer_step():
    q, x = Encoder(), torch.randn(3, 2)
    opt = torch.optim.SGD(q.parameters(), lr=0.5)
    a = q.get_params({"x": x})
    a["loc"].sum().backward()
    opt.step()
    b = q.get_params({"x": x})
    assert b is not a and q.calls == 2
    assert torch.allclose(b["loc"], q.fc(x)) and not torch.allclose(a["loc"], b["loc"])


def test_a_miss_after_load_state_dict_to_and_data_assignment():
    q, x = Encoder(), torch.randn(3, 2)
    q.get_params({"x": x})
    q.load_state_dict(Encoder().state_dict())
    assert torch.allclose(q.get_params({"x": x})["loc"], q.fc(x)) and q.calls == 2
    q.fc.bias.data = torch.full((2,), 3.0)  # no version change: the storage changes
    assert torch.allclose(q.get_params({"x": x})["loc"], q.fc(x)) and q.calls == 3
    q.double()  # Module.to keeps the Parameter objects and their versions
    out = q.get_params({"x": x.double()})
    assert out["loc"].dtype == torch.float64 and q.calls == 4


def test_a_miss_after_switching_grad_mode_or_training_mode():
    q, x = Encoder(), torch.randn(3, 2)
    a = q.get_params({"x": x})
    with torch.no_grad():
        b = q.get_params({"x": x})
        assert q.get_params({"x": x}) is b
    assert b is not a and not b["loc"].requires_grad and a["loc"].requires_grad
    assert q.get_params({"x": x}) is a and q.calls == 2
    q.eval()
    c = q.get_params({"x": x})
    assert c is not a and q.calls == 3
    q.train()
    assert q.get_params({"x": x}) is a
    with pixyz_pyro.validation("off"):
        assert q.get_params({"x": x}) is not a
    assert q.calls == 4


def test_a_changed_result_is_not_returned():
    q, x = Encoder(), torch.randn(3, 2)
    a = q.get_params({"x": x})
    with torch.no_grad():
        a["loc"].zero_()  # the caller changed the memoised tensor
    b = q.get_params({"x": x})
    assert b is not a and torch.allclose(b["loc"], q.fc(x))


def test_non_tensor_arguments_are_part_of_the_key():
    class Scaled(Normal):
        def __init__(self):
            super().__init__(var=["z"], cond_var=["x"], name="q")
            self.calls = 0

        def forward(self, x):
            return {"loc": x, "scale": torch.ones_like(x)}

        @lru_cache_for_sample_dict()
        def get_params(self, params_dict=None, factor=1.0, **kwargs):
            self.calls += 1
            out = super().get_params(params_dict)
            scale = sum(factor) if isinstance(factor, set) else factor
            return {"loc": scale * out["loc"], "scale": out["scale"]}

    p, x = Scaled(), torch.ones(2, 1)
    assert torch.equal(p.get_params({"x": x}, factor=2.0)["loc"], 2 * x)
    assert torch.equal(p.get_params({"x": x}, factor=3.0)["loc"], 3 * x)
    assert torch.equal(p.get_params({"x": x}, factor=2.0)["loc"], 2 * x)
    assert p.calls == 2
    # 2 and 2.0 are different arguments; an unhashable one is not memoised
    p.get_params({"x": x}, factor=2)
    assert p.calls == 3
    for _ in range(2):
        p.get_params({"x": x}, factor={2.0})  # a set
    assert p.calls == 5


def test_eviction_at_maxsize_least_recently_used_first():
    with mock.patch("pixyz_pyro.utils._CACHE_MAXSIZE", 2):
        class Small(Encoder):
            @lru_cache_for_sample_dict()
            def get_params(self, params_dict=None, **kwargs):
                return Normal.get_params(self, params_dict, **kwargs)
    q = Small()
    x1, x2, x3 = (torch.randn(1, 2) for _ in range(3))
    a1 = q.get_params({"x": x1})
    q.get_params({"x": x2})
    assert q.get_params({"x": x1}) is a1  # x1 used last: x2 is the oldest now
    q.get_params({"x": x3})  # evicts x2
    assert q.calls == 3
    assert q.get_params({"x": x1}) is a1 and q.calls == 3
    q.get_params({"x": x2})
    assert q.calls == 4


def test_maxsize_zero_memoises_nothing():
    with mock.patch("pixyz_pyro.utils._CACHE_MAXSIZE", 0):
        class NoMemo(Encoder):
            @lru_cache_for_sample_dict()
            def get_params(self, params_dict=None, **kwargs):
                return Normal.get_params(self, params_dict, **kwargs)
    q, x = NoMemo(), torch.randn(1, 2)
    assert q.get_params({"x": x}) is not q.get_params({"x": x}) and q.calls == 2


def test_the_memo_is_per_instance_and_not_an_attribute():
    q1, q2, x = Encoder(), Encoder(), torch.randn(2, 2)
    before = sorted(vars(q1)), list(q1.state_dict())
    a = q1.get_params({"x": x})
    assert q2.get_params({"x": x}) is not a and (q1.calls, q2.calls) == (1, 1)
    assert sorted(vars(q1)) == before[0] and list(q1.state_dict()) == before[1]
    clone = pickle.loads(pickle.dumps(q1))
    twin = copy.deepcopy(q1)
    assert clone.get_params({"x": x}) is not a and twin.get_params({"x": x}) is not a
    assert torch.allclose(twin.get_params({"x": x})["loc"], a["loc"])


def test_an_instance_is_freed_with_its_memo():
    q, x = Encoder(), torch.randn(2, 2)
    q.get_params({"x": x})
    ref = weakref.ref(q)
    del q
    gc.collect()
    assert ref() is None


def test_backpropagating_twice_through_one_memoised_result_needs_retain_graph():
    q, x = Encoder(), torch.randn(2, 2)
    q.get_params({"x": x})["loc"].sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        q.get_params({"x": x})["loc"].sum().backward()
    q2 = Encoder()
    q2.get_params({"x": x})["loc"].sum().backward(retain_graph=True)
    q2.get_params({"x": x})["loc"].sum().backward()
    assert torch.allclose(q2.fc.bias.grad, torch.full((2,), 4.0))  # 2 rows, twice


def test_training_with_a_memoised_encoder_equals_training_without():
    def run(cls):
        torch.manual_seed(0)
        q = cls()
        p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"], name="p")
        prior = Normal(loc=torch.zeros(2), scale=1., var=["z"], name="p_{prior}")
        loss = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean()
        model = Model(loss, distributions=[q], optimizer=torch.optim.SGD,
                      optimizer_params={"lr": 0.1})
        x = torch.randn(8, 2)
        values = [model.train({"x": x}) for _ in range(3)]
        return values, q.fc.weight.detach().clone(), q.calls

    memo, plain = run(Encoder), run(Plain)
    assert all(torch.equal(a, b) for a, b in zip(memo[0], plain[0]))
    assert torch.equal(memo[1], plain[1])
    assert memo[2] == plain[2] == 3  # one forward per step: each step changes the weights


def test_sampling_and_scoring_use_a_subclass_s_get_params():
    # as in Pixyz, get_params is where the parameters come from (decorated or not)
    class Shifted(Normal):
        def __init__(self):
            super().__init__(var=["z"], cond_var=["x"], name="q")

        def forward(self, x):
            return {"loc": x, "scale": torch.full_like(x, 1e-3)}

        def get_params(self, params_dict=None, **kwargs):
            out = super().get_params(params_dict, **kwargs)
            return {"loc": out["loc"] + 10.0, "scale": out["scale"]}

    q, x = Shifted(), torch.zeros(4, 1)
    z = q.sample({"x": x})["z"]
    lp = q.get_log_prob({"x": x, "z": torch.full((4, 1), 10.0)})
    assert torch.allclose(z, torch.full((4, 1), 10.0), atol=0.02)
    log_density = -0.5 * torch.log(torch.tensor(2 * torch.pi)) - torch.log(torch.tensor(1e-3))
    assert torch.allclose(lp, torch.full((4,), float(log_density)))
