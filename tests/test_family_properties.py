"""Property tests on every family: samples agree with ``log_prob``.

For parameters drawn by hypothesis, the mean log-density of many samples must match
its expectation:

.. math::

    \\frac{1}{N} \\sum_{n=1}^N \\log p(x_n) \\approx \\mathbb{E}_p[\\log p(x)] = -H[p],
    \\quad x_n \\sim p

within four standard errors.  A sampler and a density that disagree (a wrong
parameterisation, a wrong support, a swapped parameter) miss it by far more.

* The relaxed families draw relaxed samples and score with the hard distribution (as in
  Pixyz).  Hardening their samples -- :math:`x > 1/2` for the binary Concrete, the argmax
  for the Gumbel-softmax -- gives exact draws of the hard distribution at any
  temperature, so the hardened samples must match :math:`-H` of the hard distribution.
* ``FactorizedBernoulli`` scores only the non-zero elements, so its expectation is
  :math:`\\sum_i \\pi_i \\log \\pi_i` rather than :math:`-H`.
"""
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from pixyz_pyro.dist import (
    FAMILIES,
    Bernoulli,
    Beta,
    Categorical,
    Dirichlet,
    FactorizedBernoulli,
    Gamma,
    Laplace,
    Multinomial,
    Normal,
    RelaxedBernoulli,
    RelaxedCategorical,
)

N = 4000
EXAMPLES = settings(max_examples=12)

reals = st.floats(-3.0, 3.0)
positives = st.floats(0.3, 4.0)
unit = st.floats(0.05, 0.95)
temperatures = st.floats(0.1, 2.0)


def vec(strategy, n=3):
    return st.lists(strategy, min_size=n, max_size=n).map(torch.tensor)


def simplex(n=3):
    return vec(st.floats(0.05, 1.0), n).map(lambda w: w / w.sum())


def check(p, harden=None, expected=None):
    """Mean log-density of N samples against its expectation (default ``-H[p]``)."""
    torch.manual_seed(0)
    x = p.sample(batch_n=N)["x"]
    if harden is not None:
        x = harden(x)
    lp = p.get_log_prob({"x": x})
    assert lp.shape == (N,) and torch.isfinite(lp).all()
    target = -p.get_entropy() if expected is None else expected
    tolerance = 4 * lp.std() / N ** 0.5 + 1e-4
    assert abs(float(lp.mean() - target.sum())) <= float(tolerance), (
        float(lp.mean()), float(target.sum()), float(tolerance))


def test_every_family_has_a_property_test():
    tested = {Normal, Laplace, Beta, Gamma, Dirichlet, Bernoulli, FactorizedBernoulli,
              RelaxedBernoulli, Categorical, RelaxedCategorical, Multinomial}
    assert set(FAMILIES) == tested


@EXAMPLES
@given(vec(reals), vec(positives))
def test_normal(loc, scale):
    check(Normal(loc=loc, scale=scale, var=["x"]))


@EXAMPLES
@given(vec(reals), vec(positives))
def test_laplace(loc, scale):
    check(Laplace(loc=loc, scale=scale, var=["x"]))


@EXAMPLES
@given(vec(positives), vec(positives))
def test_beta(a, b):
    check(Beta(concentration1=a, concentration0=b, var=["x"]))


@EXAMPLES
@given(vec(positives), vec(positives))
def test_gamma(concentration, rate):
    check(Gamma(concentration=concentration, rate=rate, var=["x"]))


@EXAMPLES
@given(vec(positives, 4))
def test_dirichlet(concentration):
    check(Dirichlet(concentration=concentration, var=["x"]))


@EXAMPLES
@given(vec(unit))
def test_bernoulli(probs):
    check(Bernoulli(probs=probs, var=["x"]))


@EXAMPLES
@given(vec(unit))
def test_factorized_bernoulli_scores_the_ones(probs):
    check(FactorizedBernoulli(probs=probs, var=["x"]),
          expected=(probs * probs.log()).sum())


@EXAMPLES
@given(vec(unit), temperatures)
def test_relaxed_bernoulli_hardened(probs, temperature):
    p = RelaxedBernoulli(probs=probs, temperature=temperature, var=["x"])
    check(p, harden=lambda x: (x > 0.5).float())


@EXAMPLES
@given(simplex(4))
def test_categorical(probs):
    check(Categorical(probs=probs, var=["x"]))


@EXAMPLES
@given(simplex(4), temperatures)
def test_relaxed_categorical_hardened(probs, temperature):
    p = RelaxedCategorical(probs=probs, temperature=temperature, var=["x"])
    check(p, harden=lambda x: F.one_hot(x.argmax(-1), 4).float())


@EXAMPLES
@given(st.integers(1, 4), simplex(3))
def test_multinomial(total_count, probs):
    check(Multinomial(total_count=total_count, probs=probs, var=["x"]))
