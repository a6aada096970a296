"""The formula rewrites: each keeps the value (exactly, or in expectation against a closed
form) with no more variance, prints as the rewritten formula, and is idempotent."""
import math

import torch

from pixyz_pyro.dist import Laplace, Normal
from pixyz_pyro.loss import (
    REINFORCE,
    Expectation,
    IterativeLoss,
    KullbackLeibler,
    LogProb,
)
from pixyz_pyro.loss.latex import loss_text
from pixyz_pyro.loss.rewrite import rewrite


def models():
    q = Normal(loc="x", scale=0.5, var=["z"], cond_var=["x"], name="q")
    prior = Normal(loc=0., scale=1., var=["z"], name="p_{prior}")
    p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"], name="p")
    return q, prior, p


def kl_closed(x):
    # KL(N(x, 0.25) || N(0, 1)) = log(1/0.5) + (0.25 + x^2)/2 - 1/2
    return math.log(2.0) + (0.25 + x ** 2) / 2 - 0.5


def test_monte_carlo_kl_becomes_the_analytic_kl():
    q, prior, _ = models()
    mc = Expectation(q, LogProb(q) - LogProb(prior))
    new = rewrite(mc)
    assert isinstance(new, KullbackLeibler)
    assert str(new) == "D_{KL} \\left[q(z|x)||p_{prior}(z) \\right]"
    x = torch.tensor([[-1.0], [0.5]])
    exact = torch.tensor([kl_closed(-1.0), kl_closed(0.5)])
    assert torch.allclose(new.eval({"x": x}), exact, atol=1e-6)
    # The original in expectation: the mean of many one-draw estimates, within 4 SE.
    torch.manual_seed(0)
    draws = torch.stack([mc.eval({"x": x}) for _ in range(2000)])
    se = draws.std(0) / math.sqrt(len(draws))
    assert ((draws.mean(0) - exact).abs() < 4 * se).all()
    # ... and the variance: the rewritten value is the same number on every call.
    torch.manual_seed(1)
    again = torch.stack([new.eval({"x": x}) for _ in range(5)])
    assert float(again.std(0).max()) == 0.0 < float(draws.var(0).min())


def test_vae_loss_rewrites_to_the_hand_written_analytic_loss():
    q, prior, p = models()
    loss = (Expectation(q, LogProb(q) - LogProb(prior)) - Expectation(q, LogProb(p))).mean()
    hand = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean()
    assert str(loss.rewritten()) == str(hand)
    assert str(loss) != str(hand)  # the original is unchanged
    x = torch.randn(4, 1)
    torch.manual_seed(3)
    a = loss.rewritten().eval({"x": x})
    torch.manual_seed(3)
    b = hand.eval({"x": x})
    assert torch.equal(a, b)


def test_an_expectation_of_what_does_not_depend_on_the_draw_loses_its_sampling():
    q, prior, p = models()
    data = Normal(loc=0., scale=1., var=["x"], name="d")
    e = Expectation(q, LogProb(data), sample_shape=[10])
    new = rewrite(e)
    assert type(new) is LogProb and str(new) == "\\log d(x)"
    x = torch.randn(3, 1)
    assert torch.allclose(e.eval({"x": x}), new.eval({"x": x}), atol=1e-6)
    # A stochastic body averaged over 10 draws keeps them (fewer would raise the variance).
    inner = Expectation(prior, LogProb(p))
    assert rewrite(Expectation(q, inner, sample_shape=[10])).f is inner
    # ... and one draw of it is the same estimator without the outer draw.
    assert rewrite(Expectation(q, inner)) is inner


def test_constant_factors_come_out_of_expectations_with_the_same_value():
    q, prior, p = models()
    e = Expectation(q, 2 * LogProb(p))
    new = rewrite(e)
    assert str(new) == "2 \\mathbb{E}_{q(z|x)} \\left[\\log p(x|z) \\right]"
    assert type(new).__name__ == "MulLoss"
    assert str(rewrite(Expectation(q, -LogProb(p) / 4))) == str(
        -Expectation(q, LogProb(p)) / 4)
    x = torch.randn(3, 1)
    for original in (e, Expectation(q, -LogProb(p) / 4), Expectation(q, LogProb(p) * 0.5)):
        torch.manual_seed(7)
        a = original.eval({"x": x})
        torch.manual_seed(7)
        b = rewrite(original).eval({"x": x})
        assert torch.allclose(a, b, atol=1e-6)


def test_rewriting_is_idempotent_and_keeps_shared_nodes_shared():
    q, prior, p = models()
    e = Expectation(q, LogProb(q) - LogProb(prior))
    loss = (3 * e - Expectation(q, 0.5 * LogProb(p)) + e).mean()
    once = rewrite(loss)
    assert rewrite(once) is once
    assert loss_text(rewrite(once)) == loss_text(once)
    diff = rewrite(e - e)
    assert diff.a is diff.b
    assert float(diff.eval({"x": torch.randn(2, 1)}).abs().max()) == 0.0


def test_what_is_left_alone():
    q, prior, p = models()
    lap = Laplace(loc=0., scale=1., var=["z"], name="r")
    joint = p * prior
    x = torch.randn(2, 1)
    kept = [
        Expectation(q, LogProb(q) - LogProb(joint)),          # a joint: no closed KL
        REINFORCE(q, LogProb(p)),                             # its body is its gradient
        IterativeLoss(Expectation(q, LogProb(q) - LogProb(prior)), max_iter=2,
                      series_var=["x"]),                      # draws feed the next step
        Expectation(q, LogProb(q) - LogProb(q)),              # not a divergence
    ]
    for loss in kept:
        assert rewrite(loss) is loss, loss
    # torch registers KL(Normal || Laplace) in closed form: then it is analytic too.
    new = rewrite(Expectation(q, LogProb(q) - LogProb(lap)))
    assert isinstance(new, KullbackLeibler)
    exact = torch.distributions.kl_divergence(torch.distributions.Normal(x, 0.5),
                                              torch.distributions.Laplace(0., 1.))[:, 0]
    assert torch.allclose(new.eval({"x": x}), exact, atol=1e-6)


def test_gradients_of_the_rewritten_loss_equal_the_analytic_ones():
    q = Normal(loc="x", scale=torch.nn.Parameter(torch.tensor([0.7])), var=["z"],
               cond_var=["x"], name="q")
    _, prior, p = models()
    loss = Expectation(q, LogProb(q) - LogProb(prior)).mean().rewritten()
    (g,) = torch.autograd.grad(loss.eval({"x": torch.zeros(3, 1)}), [q.scale])
    s = 0.7  # d/ds [-log s + s^2/2] = -1/s + s
    assert torch.allclose(g, torch.tensor([-1 / s + s]), atol=1e-6)


def test_model_trains_the_rewritten_loss_when_asked():
    import torch as _t

    from pixyz_pyro.dist import Normal as _N
    from pixyz_pyro.loss import Expectation as _E
    from pixyz_pyro.loss import KullbackLeibler as _KL
    from pixyz_pyro.loss import LogProb as _LP
    from pixyz_pyro.model import Model as _M

    q = _N(loc=_t.nn.Parameter(_t.ones(2)), scale=1., var=["z"], name="q")
    prior = _N(loc=0., scale=1., var=["z"], features_shape=[2])
    mc = _E(q, _LP(q) - _LP(prior)).mean()
    model = _M(mc, distributions=[q], rewrite=True)
    assert isinstance(model._plan.loss.a, _KL)
    value = model.train({})
    assert _t.allclose(value, _t.tensor(1.0))  # 2 * (1/2), with no sampling noise
