"""An IAF posterior scores its own draws from their forward pass.

``TransformedDistribution(q0, IAF(...))`` draws ``z = f(z0, x)`` in one pass; scoring a
given ``z`` inverts the flow (one pass per feature).  Within one evaluation, the draw's
``(z0, log|det|)`` stays in the evaluation's context, so an ELBO's
:math:`\\mathbb{E}_q[\\log q(z|x)]` (or an IWAE's weights) needs no inversion.  The values
and gradients are the inverted path's, on the same draws, to a relative 1e-5."""
import pytest
import torch
from torch import nn

from pixyz_pyro.dist import Bernoulli, Normal, TransformedDistribution
from pixyz_pyro.flows import IAF, BatchNorm1d, FlowList, Reverse
from pixyz_pyro.loss import ELBO, IWAE, Expectation, LogProb

X_DIM, Z_DIM, TOL = 6, 3, 1e-5


class _Enc(Normal):
    def __init__(self):
        super().__init__(var=["z0"], cond_var=["x"], name="q_0")
        self.net = nn.Linear(X_DIM, 2 * Z_DIM)

    def forward(self, x):
        loc, s = self.net(x).chunk(2, -1)
        return {"loc": loc, "scale": nn.functional.softplus(s) + 1e-3}


class _Dec(Bernoulli):
    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.net = nn.Sequential(nn.Linear(Z_DIM, 16), nn.Tanh(), nn.Linear(16, X_DIM))

    def forward(self, z):
        return {"probs": torch.sigmoid(self.net(z))}


def _models(batchnorm=False):
    torch.manual_seed(0)
    flows = [IAF(Z_DIM, [16], cond_features=X_DIM), Reverse(Z_DIM),
             IAF(Z_DIM, [16], cond_features=X_DIM)] + ([BatchNorm1d(Z_DIM)] if batchnorm else [])
    q = TransformedDistribution(_Enc(), FlowList(flows), var=["z"], name="q",
                                flow_cond_var="x")
    prior = Normal(loc=torch.zeros(Z_DIM), scale=torch.ones(Z_DIM), var=["z"],
                   name="p_{prior}")
    return q, _Dec() * prior, (torch.rand(7, X_DIM) < 0.5).float()


@pytest.fixture
def inversions(monkeypatch):
    """Counts the flow inversions of a posterior: ``count(q)`` patches its flow."""
    calls = []

    def count(q):
        real = q.flow.inverse_and_logdet
        monkeypatch.setattr(q.flow, "inverse_and_logdet",
                            lambda *a, **k: (calls.append(1), real(*a, **k))[1])
        return calls
    return count


def _params(q, p):
    return [t for d in (q, p) for t in d.parameters() if t.requires_grad]


def _value_and_grads(fn, params, seed=3):
    torch.manual_seed(seed)
    value = fn()
    grads = torch.autograd.grad(value, params, allow_unused=True)
    return value.detach(), [torch.zeros_like(t) if g is None else g
                            for t, g in zip(params, grads)]


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def _inverted_elbo(q, p, x):
    """The same draw, scored in separate evaluations: ``q.get_log_prob`` inverts."""
    draw = q.sample({"x": x}, reparam=True)
    return -(p.get_log_prob(draw) - q.get_log_prob(draw)).mean()


def test_the_elbo_scores_its_draws_without_inverting_and_equals_the_inverted_path(
        inversions):
    q, p, x = _models()
    calls = inversions(q)
    params = _params(q, p)
    a, ga = _value_and_grads(lambda: (-ELBO(p, q)).mean().eval({"x": x}), params)
    assert calls == []  # no inversion: the draw's own forward pass
    b, gb = _value_and_grads(lambda: _inverted_elbo(q, p, x), params)
    assert len(calls) == 1  # the separate get_log_prob inverted the flow
    assert _rel(a, b) < TOL
    assert max(_rel(u, v) for u, v in zip(ga, gb)) < TOL
    assert any(float(g.abs().max()) > 0 for g in ga[:len(list(q.parameters()))])


def test_iwae_weights_of_an_iaf_posterior_need_no_inversion(inversions):
    q, p, x = _models()
    calls = inversions(q)
    k = 4
    params = _params(q, p)
    a, ga = _value_and_grads(lambda: IWAE(p, q, k=k).sum().eval({"x": x}), params)
    assert calls == []

    def inverted():
        folded = x.repeat(k, 1)  # draw-major, as the bound folds its k draws
        draw = q.sample({"x": folded}, reparam=True)
        lw = (p.get_log_prob(draw) - q.get_log_prob(draw)).reshape(k, -1)
        return (torch.logsumexp(lw, 0) - torch.log(torch.tensor(float(k)))).sum()

    b, gb = _value_and_grads(inverted, params)
    assert _rel(a, b) < TOL
    assert max(_rel(u, v) for u, v in zip(ga, gb)) < TOL


def test_a_value_that_is_not_this_evaluations_draw_is_inverted(inversions):
    q, p, x = _models()
    calls = inversions(q)
    draw = q.sample({"x": x})
    given = LogProb(q).eval({"x": x, "z": draw["z"]})
    assert len(calls) == 1
    torch.manual_seed(5)
    drawn = Expectation(q, LogProb(q)).eval({"x": x})
    assert len(calls) == 1 and drawn.shape == given.shape


def test_a_flow_whose_forward_pass_has_effects_still_inverts(inversions):
    """Batch normalisation keeps running statistics from its forward pass: a density there
    keeps the inversion it always had."""
    q, p, x = _models(batchnorm=True)
    q.eval()
    calls = inversions(q)
    with torch.no_grad():
        (-ELBO(p, q)).mean().eval({"x": x})
    assert len(calls) == 1


def test_pyros_trace_elbo_on_an_iaf_guide_needs_no_inversion_and_equals_the_elbo(
        inversions):
    """``to_pyro(q)``'s flow site scores the draw it gave from its forward pass too."""
    import pyro
    from pyro.infer import Trace_ELBO

    from pixyz_pyro.infer import to_pyro

    q, p, x = _models()
    calls = inversions(q)
    params = _params(q, p)
    model, guide = to_pyro(p, observed=["x"]), to_pyro(q)
    try:
        a, ga = _value_and_grads(lambda: Trace_ELBO().differentiable_loss(model, guide, x=x)
                                 / len(x), params)
    finally:
        pyro.clear_param_store()
    assert calls == []
    b, gb = _value_and_grads(lambda: (-ELBO(p, q)).mean().eval({"x": x}), params)
    assert _rel(a, b) < TOL
    assert max(_rel(u, v) for u, v in zip(ga, gb)) < TOL
