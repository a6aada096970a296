"""Property tests of loss identities that ``test_loss_algebra.py`` does not cover.

* field laws on values: commutativity, associativity, distributivity, ``(a / k) k = a``
  and ``a - a = 0``;
* ``detach`` keeps the value and drops the gradient;
* an expectation is linear in its integrand (on the same draws);
* :math:`D_{KL}[p \\| p] = 0 \\le D_{KL}[p \\| q]` for every family with an analytic KL;
* the evidence decomposes exactly, draw by draw, for a conjugate Gaussian model:

  .. math::

      \\log p(x) = \\underbrace{\\log p(x, z) - \\log q(z|x)}_{\\text{ELBO integrand}}
      + \\underbrace{\\log q(z|x) - \\log p(z|x)}_{\\text{KL integrand}}

  with :math:`p(z) = N(0, s_0^2)`, :math:`p(x|z) = N(z, s^2)`, so that
  :math:`p(x) = N(0, s_0^2 + s^2)` and :math:`p(z|x)` is Gaussian in closed form.
"""
import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pixyz_pyro.dist import Bernoulli, Beta, Categorical, Dirichlet, Gamma, Laplace, Normal
from pixyz_pyro.loss import ELBO, Expectation, KullbackLeibler, LogProb

EXAMPLES = settings(max_examples=20)

_P = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"])
_Q = Normal(loc="x", scale=2.0, var=["z"], cond_var=["x"], name="q")
_R = Normal(loc=0.5, scale=0.7, var=["x"], features_shape=[3], name="r")
LEAVES = [LogProb(_P), LogProb(_Q), LogProb(_R), LogProb(_P).mean(), LogProb(_R).sum()]
DATA = {"x": torch.tensor([[0.3, -1.0, 2.0], [1.0, 0.5, -0.2]]),
        "z": torch.tensor([[0.0, 1.0, -1.0], [2.0, 0.0, 0.1]])}
leaves = st.sampled_from(LEAVES)
numbers = st.sampled_from([0.5, 2.0, 3.0, -1.5])


def same(a, b):
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), (a, b)


@EXAMPLES
@given(leaves, leaves, leaves, numbers)
def test_field_laws_hold_on_values(a, b, c, k):
    ev = lambda loss: loss.eval(DATA)  # noqa: E731
    same(ev(a + b), ev(b + a))
    same(ev((a + b) + c), ev(a + (b + c)))
    same(ev(k * (a + b)), ev(k * a + k * b))
    same(ev((a / k) * k), ev(a))
    same(ev(a - a), torch.zeros_like(torch.as_tensor(ev(a))))


@EXAMPLES
@given(st.floats(-2, 2), st.floats(0.2, 3))
def test_detach_keeps_the_value_and_drops_the_gradient(loc, scale):
    w = torch.nn.Parameter(torch.tensor([loc]))
    p = Normal(loc=w, scale=scale, var=["x"])
    x = {"x": torch.tensor([[0.5], [-1.0]])}
    loss = -LogProb(p).mean()
    same(loss.detach().eval(x), loss.eval(x))
    assert not loss.detach().eval(x).requires_grad
    (g,) = torch.autograd.grad(loss.eval(x) + 0 * loss.detach().eval(x), [w])
    (h,) = torch.autograd.grad(loss.eval(x), [w])
    same(g, h)


@EXAMPLES
@given(st.floats(-2, 2), st.floats(0.2, 2), st.integers(1, 16))
def test_expectation_is_linear_on_the_same_draws(shift, scale, n):
    q = Normal(loc="x", scale=scale, var=["z"], cond_var=["x"], name="q")
    p = Normal(loc="z", scale=1.0, var=["y"], cond_var=["z"])
    r = Normal(loc=shift, scale=1.0, var=["z"], name="r")
    data = {"x": torch.randn(4, 2), "y": torch.randn(4, 2)}
    a, b = LogProb(p), 3.0 * LogProb(r)
    torch.manual_seed(1)
    both = Expectation(q, a + b, sample_shape=[n]).eval(data)
    torch.manual_seed(1)
    first = Expectation(q, a, sample_shape=[n]).eval(data)
    torch.manual_seed(1)
    second = Expectation(q, b, sample_shape=[n]).eval(data)
    same(both, first + second)


def _params():
    """Parameter strategies of the families with an analytic KL."""
    pos = st.floats(0.3, 4.0)
    vec = lambda s, n=3: st.lists(s, min_size=n, max_size=n).map(torch.tensor)  # noqa: E731
    simplex = vec(st.floats(0.05, 1.0), 4).map(lambda w: w / w.sum())
    loc_scale = st.fixed_dictionaries({"loc": vec(st.floats(-3, 3)), "scale": vec(pos)})
    return {
        Normal: loc_scale,
        Laplace: loc_scale,
        Beta: st.fixed_dictionaries({"concentration1": vec(pos), "concentration0": vec(pos)}),
        Gamma: st.fixed_dictionaries({"concentration": vec(pos), "rate": vec(pos)}),
        Dirichlet: st.fixed_dictionaries({"concentration": vec(pos, 4)}),
        Bernoulli: st.fixed_dictionaries({"probs": vec(st.floats(0.05, 0.95))}),
        Categorical: st.fixed_dictionaries({"probs": simplex}),
    }


PARAMS = _params()


@EXAMPLES
@given(st.data(), st.sampled_from(sorted(PARAMS, key=lambda f: f.__name__)))
def test_kl_of_a_family_with_itself_is_zero_and_otherwise_positive(data, family):
    params, other = data.draw(PARAMS[family]), data.draw(PARAMS[family])
    p = family(var=["x"], name="p", **params)
    p2 = family(var=["x"], name="p", **params)
    q = family(var=["x"], name="q", **other)
    same(KullbackLeibler(p, p2).eval(), torch.zeros(1))
    assert float(KullbackLeibler(p, q).eval()) >= -1e-5


@EXAMPLES
@given(st.floats(-3, 3), st.floats(0.3, 3), st.floats(0.3, 3), st.floats(0.2, 2))
def test_the_evidence_decomposes_draw_by_draw(x, s0, s, t):
    prior = Normal(loc=0.0, scale=s0, var=["z"], name="p_{prior}")
    lik = Normal(loc="z", scale=s, var=["x"], cond_var=["z"])
    q = Normal(loc="x", scale=t, var=["z"], cond_var=["x"], name="q")  # any q will do
    k = s0 ** 2 / (s0 ** 2 + s ** 2)  # the exact posterior N(k x, k s^2)
    post = Normal(loc=k * x, scale=math.sqrt(k) * s, var=["z"], cond_var=["x"], name="r")
    data = {"x": torch.tensor([[x]])}
    torch.manual_seed(2)
    elbo = ELBO(lik * prior, q, sample_shape=[5]).eval(data)
    torch.manual_seed(2)
    kl = KullbackLeibler(q, post, analytical=False, sample_shape=[5]).eval(data)
    var = s0 ** 2 + s ** 2
    log_evidence = -0.5 * math.log(2 * math.pi * var) - x ** 2 / (2 * var)
    same(elbo + kl, torch.tensor([log_evidence]))
