"""Pixyz's ``utils`` settings and decorator: the API exists (the decorator's memo is
tested in test_pixyz_compat_cache.py)."""
import pytest

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


def test_lru_cache_for_sample_dict_keeps_the_method_s_name():
    class Enc(Normal):
        @utils.lru_cache_for_sample_dict()
        def get_params(self, params_dict=None, **kwargs):
            """Docs."""
            return super().get_params(params_dict, **kwargs)

    assert Enc.get_params.__name__ == "get_params" and Enc.get_params.__doc__ == "Docs."
    # the memo itself: tests/test_pixyz_compat_cache.py
