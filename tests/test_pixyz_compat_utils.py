"""Pixyz's ``utils`` settings and decorator: the API exists, and nothing hides a cache."""
import pytest
import torch

from pixyz_pyro import utils
from pixyz_pyro.dist import Normal


def test_set_epsilon_is_read_back(monkeypatch):
    monkeypatch.setattr(utils, "_EPSILON", 1e-7)
    utils.set_epsilon(1e-5)
    assert utils.epsilon() == 1e-5 and utils.get_epsilon() == 1e-5
    assert utils._EPSILON == 1e-5


def test_cache_maxsize_is_read_back(monkeypatch):
    monkeypatch.setattr(utils, "_CACHE_MAXSIZE", 20)
    utils.set_cache_maxsize(3)
    assert utils.cache_maxsize() == 3


@pytest.mark.parametrize("bad", [-1, 2.5, "10", True])
def test_cache_maxsize_rejects_non_counts(bad):
    with pytest.raises(ValueError, match="set_cache_maxsize expects a non-negative int"):
        utils.set_cache_maxsize(bad)


def test_lru_cache_for_sample_dict_is_a_pass_through():
    calls = []

    class Enc(Normal):
        def __init__(self):
            super().__init__(var=["z"], cond_var=["x"])

        def forward(self, x):
            calls.append(1)
            return {"loc": x, "scale": torch.ones_like(x)}

        @utils.lru_cache_for_sample_dict()
        def get_params(self, params_dict=None, **kwargs):
            return super().get_params(params_dict, **kwargs)

    q = Enc()
    x = torch.zeros(2, 3)
    first = q.get_params({"x": x})
    q.get_params({"x": x})
    # No cache across calls: the network runs each time.
    assert len(calls) == 2
    assert torch.equal(first["loc"], x)
    assert Enc.get_params.__name__ == "get_params"
