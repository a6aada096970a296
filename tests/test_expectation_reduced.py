"""An expectation over ``sample_shape`` draws whose body reduces the batch (``.sum()``,
``.mean()``, any function of them) is the mean over the draws of the reduced body, as
Pixyz evaluates it: never the reduction over every draw at once."""
import math

import torch

from pixyz_pyro.dist import Normal
from pixyz_pyro.loss import Expectation, LogProb
from pixyz_pyro.loss.evaluate import mixes_rows

X = {"x": torch.zeros(4, 1)}


def _pair():
    q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
    p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"], name="p")
    return q, p


def _eval(loss, seed=0, **kw):
    torch.manual_seed(seed)
    return loss.eval(X, **kw)


def test_sum_body_is_averaged_over_draws_not_summed():
    q, p = _pair()
    for s in (1, 3, 50):
        per_row = _eval(Expectation(q, LogProb(p), sample_shape=[s])).sum()
        summed = _eval(Expectation(q, LogProb(p).sum(), sample_shape=[s]))
        meaned = _eval(Expectation(q, LogProb(p).mean(), sample_shape=[s]))
        assert summed.dim() == 0
        torch.testing.assert_close(summed, per_row, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(meaned * 4, per_row, rtol=1e-5, atol=1e-5)


def test_sum_body_matches_the_closed_form():
    # z ~ N(x, 1), log N(x; z, 1) = -log(2 pi)/2 - (x - z)^2/2: E = -log(2 pi)/2 - 1/2 per row
    q, p = _pair()
    value = _eval(Expectation(q, LogProb(p).sum(), sample_shape=[4000]))
    exact = 4 * (-0.5 * math.log(2 * math.pi) - 0.5)
    assert abs(float(value) - exact) < 0.15  # sd of the estimate: sqrt(4 * 0.5 / 4000)


def test_nonlinear_function_of_a_reduction_is_taken_per_draw():
    # E_q[|sum_i log p(x_i|z_i)|] on the very draws the evaluation returns
    q, p = _pair()
    value, samples = _eval(Expectation(q, LogProb(p).sum().abs(), sample_shape=[6]),
                           return_dict=True)
    z = samples["z"]  # (6, 4, 1): draw-major
    assert z.shape == (6, 4, 1)
    log_p = torch.distributions.Normal(z, 1.).log_prob(X["x"]).sum(-1)  # (6, 4)
    torch.testing.assert_close(value, log_p.sum(-1).abs().mean(), rtol=1e-5, atol=1e-5)


def test_row_wise_bodies_keep_the_folded_path():
    q, p = _pair()
    assert not mixes_rows(LogProb(p) - LogProb(q))
    assert mixes_rows(LogProb(p).sum())
    assert mixes_rows(2 * LogProb(p).mean() + LogProb(q))


def test_same_value_on_first_and_later_calls_and_under_no_grad():
    q, p = _pair()
    loss = Expectation(q, LogProb(p).sum(), sample_shape=[5])
    with torch.no_grad():
        first = _eval(loss, seed=3)
    second = _eval(loss, seed=3)
    torch.testing.assert_close(first, second.detach())
