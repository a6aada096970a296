"""The hot path's closed forms (``dist/family.py``) give Pyro's numbers.

The direct executor scores, samples and takes KLs of Normal and Bernoulli factors
straight from their parameters; these tests pin each formula to the ``pyro.distributions``
method it stands for, and check the memo that keeps ``forward`` to one call.
"""
import math

import pyro.distributions as pd
import pytest
import torch
from torch.distributions import kl_divergence

from pixyz_pyro.dist import Bernoulli, Normal
from pixyz_pyro.dist.context import Context
from pixyz_pyro.dist.family import (
    _bernoulli_log_prob,
    _bernoulli_nll,
    _kl_normal_normal,
    _normal_log_prob,
    _normal_nll,
    _normal_rsample,
    closed_kl,
)
from pixyz_pyro.dist.fused import FUSED_MIN
from pixyz_pyro.loss import KullbackLeibler


def normal_params(shape=(5, 3)):
    return {"loc": torch.randn(shape), "scale": torch.rand(shape) + 0.1}


def test_normal_log_prob_gives_pyros_values_and_gradients():
    torch.manual_seed(0)
    params = {k: v.requires_grad_() for k, v in normal_params().items()}
    x = torch.randn(5, 3, requires_grad=True)
    ours = _normal_log_prob(params, x)
    theirs = pd.Normal(params["loc"], params["scale"]).log_prob(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    leaves = [x, params["loc"], params["scale"]]
    for a, b in zip(torch.autograd.grad(ours.sum(), leaves),
                    torch.autograd.grad(theirs.sum(), leaves)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_normal_log_prob_broadcasts_like_pyro():
    params = {"loc": torch.zeros(1, 3), "scale": torch.ones(1, 3)}
    x = torch.randn(4, 3)
    ours = _normal_log_prob(params, x)
    assert ours.shape == (4, 3)
    torch.testing.assert_close(ours, pd.Normal(params["loc"], params["scale"]).log_prob(x),
                               rtol=1e-6, atol=1e-6)


def test_normal_log_prob_is_as_close_to_float64_as_pyros():
    g = torch.Generator().manual_seed(2)
    x, loc = torch.randn(4096, 8, generator=g), torch.randn(4096, 8, generator=g)
    scale = torch.rand(1, 8, generator=g) + 0.05
    exact = pd.Normal(loc.double(), scale.double()).log_prob(x.double()).sum(1)
    ours = _normal_log_prob({"loc": loc, "scale": scale}, x).double().sum(1)
    theirs = pd.Normal(loc, scale).log_prob(x).double().sum(1)
    err_ours = ((ours - exact).abs() / exact.abs()).max()
    err_theirs = ((theirs - exact).abs() / exact.abs()).max()
    assert err_ours <= 1.5 * err_theirs and err_ours < 1e-5


def test_normal_log_prob_keeps_pyros_infinities_and_nans():
    params = {"loc": torch.tensor([0.0, 0.0, float("nan"), 0.0, 0.0]),
              "scale": torch.tensor([0.0, float("inf"), 1.0, 1.0, 1.0])}
    x = torch.tensor([1.0, 1.0, 1.0, float("inf"), float("nan")])
    ours = _normal_log_prob(params, x)
    theirs = pd.Normal(params["loc"], params["scale"], validate_args=False).log_prob(x)
    assert torch.equal(torch.isnan(ours), torch.isnan(theirs))
    assert torch.equal(torch.isneginf(ours), torch.isneginf(theirs))


def test_normal_rsample_draws_pyros_numbers():
    params = normal_params()
    torch.manual_seed(3)
    ours = _normal_rsample(params, (2,))
    torch.manual_seed(3)
    theirs = pd.Normal(params["loc"], params["scale"]).rsample((2,))
    assert torch.equal(ours, theirs) and ours.shape == (2, 5, 3)


@pytest.mark.parametrize("layout", ["contiguous", "chunked", "channels_last", "float64",
                                    "broadcast"])
def test_normal_rsample_without_a_sample_shape_draws_pyros_numbers(layout):
    """One draw per row (a series' step) takes ``randn_like``: the same numbers as Pyro's
    ``rsample()`` whatever the layout of ``loc`` (a chunk of a network's output, a
    channels-last image) and dtype, and the shape-based draw where the scale broadcasts."""
    g = torch.Generator().manual_seed(0)
    if layout == "chunked":
        loc = torch.randn(6, 8, generator=g).chunk(2, -1)[0]
    elif layout == "channels_last":
        loc = torch.randn(2, 3, 4, 5, generator=g).to(memory_format=torch.channels_last)
    else:
        loc = torch.randn(6, 4, generator=g, dtype=torch.float64 if layout == "float64"
                          else torch.float32)
    scale = torch.rand(loc.shape[-1] if layout == "broadcast" else loc.shape, generator=g,
                       dtype=loc.dtype) + 0.1
    torch.manual_seed(5)
    ours = _normal_rsample({"loc": loc, "scale": scale}, ())
    torch.manual_seed(5)
    theirs = pd.Normal(loc, scale).rsample()
    assert torch.equal(ours, theirs) and ours.dtype == loc.dtype


def _torch_kl(p, q):
    return kl_divergence(pd.Normal(p["loc"], p["scale"], validate_args=False),
                         pd.Normal(q["loc"], q["scale"], validate_args=False))


def test_kl_normal_normal_gives_torchs_values_and_gradients():
    torch.manual_seed(0)
    p = {k: v.requires_grad_() for k, v in normal_params((5, 3)).items()}
    q = {"loc": torch.randn(1, 3, requires_grad=True),
         "scale": (torch.rand(1, 3) + 0.5).requires_grad_()}
    ours, theirs = _kl_normal_normal(p, q), _torch_kl(p, q)
    assert ours.shape == theirs.shape == (5, 3)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    leaves = [p["loc"], p["scale"], q["loc"], q["scale"]]
    g_ours = torch.autograd.grad(ours.sum(), leaves)
    g_theirs = torch.autograd.grad(theirs.sum(), leaves)
    for a, b in zip(g_ours, g_theirs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_kl_normal_normal_is_closer_to_the_exact_value_than_torchs():
    # near-equal Normals, where the KL is small and its terms cancel
    g = torch.Generator().manual_seed(1)
    p = {"loc": 0.1 * torch.randn(4096, 8, generator=g),
         "scale": (1 + 0.05 * torch.randn(4096, 8, generator=g)).abs()}
    q = {"loc": torch.zeros(1, 8), "scale": torch.ones(1, 8)}
    exact = _torch_kl({k: v.double() for k, v in p.items()},
                      {k: v.double() for k, v in q.items()}).sum(1)
    err_ours = ((_kl_normal_normal(p, q).double().sum(1) - exact).abs() / exact).max()
    err_torch = ((_torch_kl(p, q).double().sum(1) - exact).abs() / exact).max()
    assert err_ours < err_torch / 2
    assert err_ours < 2e-6


def test_kl_normal_normal_keeps_torchs_infinities_and_nans():
    p = {"loc": torch.tensor([0.0, 0.0, float("nan"), 0.0]),
         "scale": torch.tensor([0.0, float("inf"), 1.0, 1.0])}
    q = {"loc": torch.zeros(4), "scale": torch.tensor([1.0, 1.0, 1.0, 0.0])}
    ours, theirs = _kl_normal_normal(p, q), _torch_kl(p, q)
    assert torch.equal(torch.isnan(ours), torch.isnan(theirs))
    assert torch.equal(torch.isposinf(ours), torch.isposinf(theirs))
    assert ours.dtype == theirs.dtype


def test_kl_normal_normal_keeps_the_dtype():
    p = {k: v.double() for k, v in normal_params().items()}
    q = {"loc": torch.zeros(1, 3, dtype=torch.float64),
         "scale": torch.ones(1, 3, dtype=torch.float64)}
    out = _kl_normal_normal(p, q)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, _torch_kl(p, q), rtol=1e-12, atol=1e-12)


@pytest.fixture(params=["eager", "compiling"])
def bernoulli_form(request, monkeypatch):
    """Both forms of the Bernoulli closed form: the eager kernels, and the elementwise form
    taken while ``torch.compile`` traces (made visible here without compiling)."""
    if request.param == "compiling":
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    return request.param


def test_bernoulli_log_prob_equals_pyros_values_including_saturation(bernoulli_form):
    probs = torch.rand(50, 30)
    probs[0, :4] = torch.tensor([0.0, 1.0, 1e-9, 1 - 1e-9])
    x = torch.rand(50, 30)
    x[0, :4] = torch.tensor([1.0, 0.0, 1.0, 0.0])
    ours = _bernoulli_log_prob({"probs": probs}, x)
    theirs = pd.Bernoulli(probs=probs, validate_args=False).log_prob(x)
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert float(ours[0, 0]) == pytest.approx(math.log(torch.finfo().eps), abs=1e-4)  # p=0, x=1
    assert float(ours.sum()) == pytest.approx(float(theirs.sum()), rel=1e-6)


def test_bernoulli_gradient_is_pyros_including_saturation(bernoulli_form):
    probs = torch.rand(20, 6) * 0.98 + 0.01
    probs[0, :2] = torch.tensor([0.0, 1.0])
    x = (torch.rand(20, 6) > 0.5).float()
    x[0, :2] = torch.tensor([1.0, 0.0])
    ours_p, theirs_p = probs.clone().requires_grad_(), probs.clone().requires_grad_()
    _bernoulli_log_prob({"probs": ours_p}, x).sum().backward()
    pd.Bernoulli(probs=theirs_p, validate_args=False).log_prob(x).sum().backward()
    assert torch.allclose(ours_p.grad, theirs_p.grad, rtol=1e-4, atol=1e-6)
    assert ours_p.grad[0, :2].tolist() == [0.0, 0.0]  # the clamp stops it, as in Pyro


def test_bernoulli_nan_probabilities_give_nan_not_an_error(bernoulli_form):
    probs = torch.full((3, 2), 0.5)
    probs[0, 0] = float("nan")
    lp = _bernoulli_log_prob({"probs": probs}, torch.ones(3, 2))
    assert torch.isnan(lp[0, 0]) and torch.isfinite(lp[1:]).all()


def test_the_compiling_form_is_the_eager_value_to_rounding(monkeypatch):
    """Grey levels and saturated probabilities, in float64: the two forms agree to 1e-12
    in value and gradient."""
    probs = torch.rand(40, 20, dtype=torch.float64)
    probs[0, :4] = torch.tensor([0.0, 1.0, 1e-20, 1 - 1e-17], dtype=torch.float64)
    x = torch.rand(40, 20, dtype=torch.float64)
    eager_p, compiling_p = probs.clone().requires_grad_(), probs.clone().requires_grad_()
    eager = _bernoulli_log_prob({"probs": eager_p}, x)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    compiling = _bernoulli_log_prob({"probs": compiling_p}, x)
    torch.testing.assert_close(compiling, eager, rtol=1e-12, atol=1e-12)
    eager.sum().backward()
    compiling.sum().backward()
    torch.testing.assert_close(compiling_p.grad, eager_p.grad, rtol=1e-10, atol=1e-12)


def test_bernoulli_from_logits_is_pyros():
    logits, x = torch.randn(4, 3), torch.rand(4, 3)
    assert torch.equal(_bernoulli_log_prob({"logits": logits}, x),
                       pd.Bernoulli(logits=logits, validate_args=False).log_prob(x))


@pytest.mark.parametrize("case", ["normal", "normal, broadcast scale", "bernoulli probs",
                                  "bernoulli probs, saturated", "bernoulli logits"])
def test_the_nll_is_minus_the_log_prob_bit_for_bit_in_value_and_gradient(case):
    """The numerics table's ``nll`` moves the sign inwards: the same bits as
    ``-log_prob``, and the same gradients, with one kernel fewer."""
    torch.manual_seed(0)
    if case.startswith("normal"):
        shape = (1, 3) if "broadcast" in case else (6, 3)
        params = {"loc": torch.randn(6, 3), "scale": torch.rand(shape) + 0.1}
        x, nll, lp = torch.randn(6, 3), _normal_nll, _normal_log_prob
    else:
        key = "logits" if "logits" in case else "probs"
        t = torch.randn(6, 3) if key == "logits" else torch.rand(6, 3)
        if "saturated" in case:
            t[0, :2] = torch.tensor([0.0, 1.0])
        params, x = {key: t}, (torch.rand(6, 3) > 0.5).float()
        nll, lp = _bernoulli_nll, _bernoulli_log_prob
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    twins = {k: v.clone().requires_grad_() for k, v in params.items()}
    a, b = nll(leaves, x), -lp(twins, x)
    assert torch.equal(a, b)
    a.sum().backward()
    b.sum().backward()
    assert all(torch.equal(leaves[k].grad, twins[k].grad) for k in params)


def test_the_nll_leaves_fused_and_compiled_scores_to_the_log_prob(monkeypatch):
    """Where the score is one fused node (a batch of images) the nll declines (the caller
    negates the log-prob), and so it does under ``torch.compile``."""
    n = FUSED_MIN // 4 + 1
    big = {"loc": torch.zeros(4, n), "scale": torch.ones(4, n)}
    assert _normal_nll(big, torch.zeros(4, n)) is None
    assert _bernoulli_nll({"probs": torch.full((4, n), 0.5)}, torch.ones(4, n)) is None
    assert _normal_nll({"loc": 0.0, "scale": torch.ones(1)}, torch.zeros(1)) is None
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert _bernoulli_nll({"probs": torch.full((2, 3), 0.5)}, torch.ones(2, 3)) is None


def test_non_tensor_parameters_fall_back():
    assert _normal_log_prob({"loc": 0.0, "scale": torch.ones(1)}, torch.zeros(1)) is None
    assert _normal_rsample({"loc": torch.zeros(1), "scale": 1.0}, ()) is None
    assert _bernoulli_log_prob({}, torch.zeros(1)) is None


def test_families_carry_their_closed_forms():
    assert Normal.family.numerics.log_prob is _normal_log_prob
    assert Normal.family.numerics.rsample is _normal_rsample
    assert Bernoulli.family.numerics.log_prob is _bernoulli_log_prob
    assert Bernoulli.family.numerics.rsample is None  # not reparameterisable
    assert Normal.family.numerics.nll is _normal_nll
    assert Bernoulli.family.numerics.nll is _bernoulli_nll
    # the class declares what it uses; a subclass that overrides pyro_dist uses none
    assert Normal._numerics is Normal.family.numerics

    class Custom(Normal):
        def pyro_dist(self, values, ctx=None):
            return super().pyro_dist(values, ctx)

    assert Custom._numerics.log_prob is None and Custom._numerics.rsample is None
    assert closed_kl(Normal.family, Normal.family) is _kl_normal_normal
    assert closed_kl(Normal.family, Bernoulli.family) is None


def test_executor_kl_and_log_prob_match_the_pyro_objects():
    q = Normal(loc="x", scale=torch.tensor(0.5), var=["z"], cond_var=["x"], name="q")
    prior = Normal(loc=torch.tensor(0.0), scale=torch.tensor(1.0), var=["z"],
                   features_shape=[3], name="p")
    x = torch.randn(4, 3)
    kl = KullbackLeibler(q, prior)
    first, second = kl.eval({"x": x}), kl.eval({"x": x})  # pyro objects, then closed form
    expected = kl_divergence(pd.Normal(x, 0.5), pd.Normal(0.0, 1.0)).sum(-1)
    assert torch.equal(first, second) and torch.allclose(second, expected)
    z = torch.randn(4, 3)
    lp = [q.get_log_prob({"z": z, "x": x}) for _ in range(2)]
    assert torch.equal(lp[0], lp[1])
    assert torch.allclose(lp[1], pd.Normal(x, 0.5).log_prob(z).sum(-1))


def test_memo_runs_forward_once_per_input_identity():
    calls = []

    class Q(Normal):
        def __init__(self):
            super().__init__(var=["z"], cond_var=["x"], name="q")

        def forward(self, x):
            calls.append(1)
            return {"loc": x, "scale": torch.ones_like(x)}

    q, ctx = Q(), Context()
    x, y = torch.zeros(2, 1), torch.zeros(2, 1)
    a = q._params({"x": x}, ctx)
    assert q._params({"x": x}, ctx) is a and len(calls) == 1
    assert ctx.recall(q, (x,)) is a  # the eager lookup and Context.recall share one key
    q._params({"x": y}, ctx)  # equal values, another tensor: another call
    assert len(calls) == 2
    traced = Context()
    traced.traced = True  # as under torch.compile: compared with ``is``
    b = q._params({"x": x}, traced)
    assert q._params({"x": x}, traced) is b and len(calls) == 3


def test_memo_keys_every_input_of_a_factor_by_identity():
    calls = []

    class Q(Normal):
        def __init__(self):
            super().__init__(var=["z"], cond_var=["x", "h"], name="q")

        def forward(self, h, x):  # another order than cond_var: inputs are by name
            calls.append(1)
            return {"loc": x - h, "scale": torch.ones_like(x)}

    q, ctx = Q(), Context()
    x, h = torch.ones(2, 1), torch.zeros(2, 1)
    a = q._params({"x": x, "h": h, "other": x}, ctx)
    assert torch.equal(a["loc"], x) and len(calls) == 1
    assert q._params({"h": h, "x": x}, ctx) is a and len(calls) == 1
    assert ctx.recall(q, (x, h)) is a
    ctx.remember(q, (h, x), {"loc": h, "scale": x})  # what Context.remember stores...
    assert q._params({"x": h, "h": x}, ctx)["loc"] is h and len(calls) == 1  # ...is read
    b = q._params({"x": x, "h": h.clone()}, ctx)  # one input another tensor: computed
    assert b is not a and len(calls) == 2
