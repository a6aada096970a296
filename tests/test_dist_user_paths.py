"""The Distribution API review's defects, each with the behaviour that proves its fix.

Values are checked against closed forms (a Normal's and a Bernoulli's log-density) and
errors by their type and message.
"""
import math

import pytest
import torch
from torch import nn

from pixyz_pyro.dist import Bernoulli, Categorical, Normal, ProductOfNormal
from pixyz_pyro.dist.shapes import __doc__ as SHAPES_DOC
from pixyz_pyro.errors import ParameterError, ShapeError, SupportError
from pixyz_pyro.utils import lru_cache_for_sample_dict

LOG_2PI = math.log(2 * math.pi)


def normal_lp(x, loc, scale):
    """:math:`\\sum_j \\log \\mathcal{N}(x_j; \\mu_j, \\sigma_j)` over the last dim."""
    return (-0.5 * ((x - loc) / scale) ** 2 - torch.log(scale) - 0.5 * LOG_2PI).sum(-1)


# --- 1. lru_cache_for_sample_dict and inference tensors -----------------------------------


class _Net(Normal):
    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], features_shape=[2])
        self.fc = nn.Linear(2, 2)
        self.calls = 0

    def forward(self, z):
        self.calls += 1
        return {"loc": self.fc(z), "scale": torch.ones_like(z)}


class _Cached(_Net):
    @lru_cache_for_sample_dict()
    def get_params(self, params_dict=None, **kwargs):
        return super().get_params(params_dict, **kwargs)


def _pair():
    torch.manual_seed(0)
    plain, cached = _Net(), _Cached()
    cached.load_state_dict(plain.state_dict())
    return plain, cached


def _expected(p, x, z):
    with torch.no_grad():
        return normal_lp(x, p.fc(z), torch.ones_like(z))


def test_memo_under_inference_mode_equals_the_closed_form():
    plain, cached = _pair()
    z, x = torch.randn(3, 2), torch.randn(3, 2)
    want = _expected(plain, x, z)
    with torch.inference_mode():
        got = cached.get_log_prob({"x": x, "z": z})
        again = cached.get_log_prob({"x": x, "z": z})
        evaluated = cached.log_prob().eval({"x": x, "z": z})
        base = plain.get_log_prob({"x": x, "z": z})
    for t in (got, again, evaluated, base):
        torch.testing.assert_close(t, want)


def test_memo_under_no_grad_with_inference_inputs():
    plain, cached = _pair()
    with torch.inference_mode():  # a batch made under inference_mode
        z, x = torch.randn(3, 2), torch.randn(3, 2)
    want = _expected(plain, x.clone(), z.clone())
    with torch.no_grad():
        torch.testing.assert_close(cached.get_log_prob({"x": x, "z": z}), want)
        torch.testing.assert_close(cached.log_prob().eval({"x": x, "z": z}), want)
        assert cached.sample({"z": z})["x"].shape == (3, 2)


def test_inference_tensor_changed_in_place_is_never_stale():
    _, cached = _pair()
    with torch.inference_mode():
        z = torch.zeros(3, 2)
        first = cached.get_params({"z": z})["loc"].clone()
        z += 1.0  # no version counter records this
        second = cached.get_params({"z": z})["loc"]
        torch.testing.assert_close(second, cached.fc(torch.ones(3, 2)))
    assert not torch.equal(first, second)


def test_memo_still_memoises_ordinary_tensors():
    _, cached = _pair()
    z = torch.randn(3, 2)
    a = cached.get_params({"z": z})
    assert cached.get_params({"z": z}) is a and cached.calls == 1


# --- 2. a parameter and its alternative given together --------------------------------------

_BOTH = "either `probs` or `logits`, but not both"


@pytest.mark.parametrize("cls,probs", [(Bernoulli, [0.9]), (Categorical, [0.9, 0.1])])
def test_constant_probs_and_logits_raise_at_construction(cls, probs):
    with pytest.raises(ParameterError) as e:
        cls(probs=torch.tensor(probs), logits=torch.zeros(len(probs)), var=["y"])
    msg = str(e.value)
    assert msg.startswith("p(y): ") and cls.family.name in msg and _BOTH in msg
    assert "probs (a constant) and logits (a constant)" in msg


def test_bound_probs_and_constant_logits_raise_at_construction():
    with pytest.raises(ParameterError, match='probs \\(bound to "y"\\) and logits '
                                             '\\(a constant\\)'):
        Bernoulli(probs="y", logits=torch.zeros(1), var=["x"], cond_var=["y"])


class _ConstProbsForwardLogits(Bernoulli):
    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], probs=torch.tensor([0.9]))

    def forward(self, z):
        return {"logits": z}


class _ForwardBoth(Bernoulli):
    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], features_shape=[1])

    def forward(self, z):
        return {"probs": torch.full_like(z, 0.9), "logits": torch.zeros_like(z)}


class _CachedForwardBoth(_ForwardBoth):
    @lru_cache_for_sample_dict()
    def get_params(self, params_dict=None, **kwargs):
        return super().get_params(params_dict, **kwargs)


@pytest.mark.parametrize("cls,sources", [
    (_ConstProbsForwardLogits, "probs (a constant) and logits (returned by forward)"),
    (_ForwardBoth, "probs (returned by forward) and logits (returned by forward)"),
    (_CachedForwardBoth, "probs (returned by forward) and logits (returned by forward)"),
])
def test_probs_and_logits_at_call_time_raise_on_every_call(cls, sources):
    p = cls()
    x, z = torch.ones(2, 1), torch.zeros(2, 1)
    calls = [lambda: p.get_log_prob({"x": x, "z": z}), lambda: p.sample({"z": z}),
             lambda: p.log_prob().eval({"x": x, "z": z}), lambda: p.get_params({"z": z})]
    for _ in range(2):  # the second time too: nothing was remembered as passed
        for call in calls:
            with pytest.raises(ParameterError) as e:
                call()
            msg = str(e.value)
            assert msg.startswith("p(x|z): a Bernoulli takes " + _BOTH), msg
            assert sources in msg


def test_probs_and_logits_in_a_series_of_calls_within_one_evaluation():
    # the second factor call of an evaluation looks its metadata up in ctx.checked: the
    # names forward returned are part of that key, so a call that adds logits is checked
    class Flip(Bernoulli):
        def __init__(self):
            super().__init__(var=["x"], cond_var=["z"], features_shape=[1])

        def forward(self, z):
            out = {"probs": torch.sigmoid(z)}
            if bool((z > 0).any()):
                out["logits"] = z
            return out

    p = Flip()
    joint = p.replace_var(x="x1", z="z1") * p.replace_var(x="x2", z="z2")
    good, bad = torch.zeros(2, 1), torch.ones(2, 1)
    x = torch.ones(2, 1)
    lp = joint.get_log_prob({"x1": x, "z1": good, "x2": x, "z2": good})
    torch.testing.assert_close(lp, torch.full((2,), 2 * math.log(0.5)))
    with pytest.raises(ParameterError, match="p\\(x_\\{2\\}\\|z_\\{2\\}\\): a Bernoulli"):
        joint.get_log_prob({"x1": x, "z1": good, "x2": x, "z2": bad})


def test_one_of_probs_or_logits_keeps_its_closed_form():
    x = torch.tensor([[1.0], [0.0]])
    for p in (Bernoulli(probs=torch.tensor([0.9]), var=["x"]),
              Bernoulli(logits=torch.tensor([math.log(9.0)]), var=["x"])):
        torch.testing.assert_close(p.get_log_prob({"x": x}),
                                   torch.tensor([math.log(0.9), math.log(0.1)]))


# --- 3. a joint's log-density without summing the features ----------------------------------


def test_joint_unsummed_with_different_features_raises():
    px = Normal(loc=1., scale=1., var=["x"], features_shape=[1])
    pz = Normal(loc=0., scale=1., var=["z"], features_shape=[2])
    values = {"x": torch.zeros(2, 1), "z": torch.zeros(2, 2)}
    for call in (lambda: (px * pz).get_log_prob(values, sum_features=False),
                 lambda: (px * pz).log_prob(sum_features=False).eval(values)):
        with pytest.raises(ShapeError) as e:
            call()
        msg = str(e.value)
        assert "p(x): (2, 1)" in msg and "p(z): (2, 2)" in msg
        assert "sum_features=True" in msg and "each factor's log_prob" in msg
    # summed, it is the closed form: log N(0; 1, 1) + 2 log N(0; 0, 1)
    want = -0.5 - 1.5 * LOG_2PI
    torch.testing.assert_close((px * pz).get_log_prob(values), torch.full((2,), want))


def test_joint_unsummed_with_equal_features_adds_elementwise():
    px = Normal(loc=1., scale=1., var=["x"], features_shape=[2])
    pz = Normal(loc=0., scale=2., var=["z"], features_shape=[2])
    x, z = torch.zeros(3, 2), torch.ones(3, 2)
    want = (-0.5 - 0.5 * LOG_2PI) + (-0.125 - math.log(2.0) - 0.5 * LOG_2PI)
    got = (px * pz).get_log_prob({"x": x, "z": z}, sum_features=False)
    torch.testing.assert_close(got, torch.full((3, 2), want))
    got = (px * pz).log_prob(sum_features=False).eval({"x": x, "z": z})
    torch.testing.assert_close(got, torch.full((3, 2), want))


# --- 4. errors after replace_var name the user's variables -----------------------------------


def _renamed():
    return Normal(loc="a", scale="s", var=["b"], cond_var=["a", "s"], name="f").replace_var(
        a="x0", b="x1", s="sigma")


def test_replace_var_shape_error_uses_outer_names():
    r = _renamed()
    with pytest.raises(ShapeError) as e:
        r.get_log_prob({"x0": torch.zeros(3, 2), "sigma": torch.ones(3, 2),
                        "x1": torch.zeros(3, 3)})
    msg = str(e.value)
    assert msg.startswith(r.prob_text + ': "x1" has shape (3, 3)'), msg
    assert '"b"' not in msg and "f(b|" not in msg


def test_replace_var_support_error_uses_outer_names():
    r = _renamed()
    with pytest.raises(SupportError) as e:
        r.get_log_prob({"x0": torch.zeros(3, 2), "sigma": -torch.ones(3, 2),
                        "x1": torch.zeros(3, 2)})
    assert str(e.value).startswith(r.prob_text + ": parameter scale is outside")


def test_replace_var_dtype_and_value_support_errors_use_outer_names():
    c = Categorical(probs=torch.tensor([.5, .5]), var=["y"]).replace_var(y="label")
    with pytest.raises(SupportError, match='^p\\(label\\): "label" must be one-hot'):
        c.get_log_prob({"label": torch.tensor([[0.5, 0.5]])})
    n = Normal(loc=0., scale=1., var=["b"]).replace_var(b="x1")
    with pytest.raises(SupportError, match='^p\\(x_\\{1\\}\\): "x1" has dtype torch.int64'):
        n.get_log_prob({"x1": torch.zeros(2, 1, dtype=torch.long)})


def test_one_factor_under_two_renamings_names_each_call():
    class F(Normal):
        def __init__(self):
            super().__init__(var=["b"], cond_var=["a"], name="f", features_shape=[2])

        def forward(self, a):
            return {"loc": torch.zeros_like(a), "scale": a}

    f = F()
    chain = f.replace_var(a="x0", b="x1") * f.replace_var(a="x1", b="x2")
    pos, neg = torch.ones(3, 2), -torch.ones(3, 2)
    with pytest.raises(SupportError, match="^f\\(x_\\{2\\}\\|x_\\{1\\}\\): parameter scale"):
        chain.get_log_prob({"x0": pos, "x1": neg, "x2": pos})
    with pytest.raises(SupportError, match="^f\\(x_\\{1\\}\\|x_\\{0\\}\\): parameter scale"):
        chain.get_log_prob({"x0": neg, "x1": pos, "x2": pos})
    with pytest.raises(SupportError, match="^f\\(x_\\{2\\}\\|x_\\{1\\}\\): parameter scale"):
        chain.log_prob().eval({"x0": pos, "x1": neg, "x2": pos})
    # and the valid chain is the closed form
    lp = chain.get_log_prob({"x0": pos, "x1": pos, "x2": pos})
    want = 2 * normal_lp(pos, torch.zeros(3, 2), pos)
    torch.testing.assert_close(lp, want)


def test_nested_renamings_compose():
    p = Normal(loc="a", scale=1., var=["b"], cond_var=["a"], features_shape=[2], name="f")
    r = p.replace_var(b="c").replace_var(c="d", a="e")
    with pytest.raises(ShapeError, match='^f\\(d\\|e\\): "d" has shape \\(3, 3\\)'):
        r.get_log_prob({"e": torch.zeros(3, 2), "d": torch.zeros(3, 3)})


# --- 5. a batch mismatch is reported as one ----------------------------------------------------


def test_batch_mismatch_names_both_batches_and_the_input():
    p = Normal(loc="y", scale=1., var=["x"], cond_var=["y"], features_shape=[2])
    with pytest.raises(ShapeError) as e:
        p.get_log_prob({"x": torch.zeros(4, 2), "y": torch.zeros(3, 2)})
    msg = str(e.value)
    assert msg.startswith('p(x|y): "x" has batch 4 (shape (4, 2)), but the parameters have '
                          'batch 3 (from "y"; shape (3, 2)); the features (2,) agree'), msg
    assert "its features must be" not in msg


def test_batch_mismatch_after_replace_var_names_the_outer_input():
    p = Normal(loc="y", scale=1., var=["x"], cond_var=["y"], features_shape=[2])
    r = p.replace_var(x="obs", y="cond")
    with pytest.raises(ShapeError, match='"obs" has batch 4 .* batch 3 \\(from "cond"'):
        r.get_log_prob({"obs": torch.zeros(4, 2), "cond": torch.zeros(3, 2)})


def test_features_mismatch_is_still_reported_as_features():
    p = Normal(loc="y", scale=1., var=["x"], cond_var=["y"], features_shape=[2])
    with pytest.raises(ShapeError, match="its features must be \\(2,\\)"):
        p.get_log_prob({"x": torch.zeros(3, 3), "y": torch.zeros(3, 2)})


# --- 6. experts of different batches -------------------------------------------------------------


def _poe():
    e1 = Normal(loc="a", scale=2., var=["z"], cond_var=["a"], features_shape=[2], name="e1")
    e2 = Normal(loc="b", scale=.5, var=["z"], cond_var=["b"], features_shape=[2], name="e2")
    return ProductOfNormal([e1, e2], name="q")


def test_poe_experts_of_different_batches_raise_a_shape_error():
    q = _poe()
    for call in (lambda: q.sample({"a": torch.zeros(3, 2), "b": torch.zeros(4, 2)}),
                 lambda: q.get_params({"a": torch.zeros(3, 2), "b": torch.zeros(4, 2)})):
        with pytest.raises(ShapeError) as e:
            call()
        msg = str(e.value)
        assert msg.startswith("q(z|a,b): the experts' parameters do not broadcast"), msg
        assert "e_{1}(z|a): batch 3" in msg and "e_{2}(z|b): batch 4" in msg
        assert "same batch" in msg


def test_poe_of_equal_batches_is_the_closed_form():
    q = _poe()
    a, b = torch.ones(3, 2), -torch.ones(3, 2)
    params = q.get_params({"a": a, "b": b})
    prec = 1.0 + 0.25 + 4.0  # prior + 1 / 2^2 + 1 / 0.5^2
    torch.testing.assert_close(params["loc"], torch.full((3, 2), (0.25 - 4.0) / prec))
    torch.testing.assert_close(params["scale"], torch.full((3, 2), prec ** -0.5))


# --- 7. the documented shape of a summed log-density ---------------------------------------------


def test_shapes_doc_states_what_sum_features_returns():
    q = Normal(loc=0., scale=1., var=["x"], features_shape=[2])
    x = torch.zeros(5, 3, 2)
    assert q.get_log_prob({"x": x}).shape == (5,)
    assert q.get_log_prob({"x": x}, feature_dims=[-1]).shape == (5, 3)
    assert "sums every dimension but the first" in " ".join(SHAPES_DOC.split())
    assert "returns ``sample_shape + batch_shape``" not in SHAPES_DOC
