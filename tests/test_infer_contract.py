"""The executor contract: with the same random draws, the direct executor (``loss.eval``,
``Model.train``) and Pyro (``to_pyro`` + a stock ELBO) give the same value and the same
gradient of every parameter, to a relative 1e-5.

"The same draws" means: seed, then evaluate.  Each side draws ``z ~ q(z|x)`` exactly once
with one ``rsample`` of the same shape, and nothing else consumes the generator (Pyro
runs the guide first and replays ``z`` in the model; the direct executor samples inside
the one ``Expectation``; analytic KL terms draw nothing).
"""
import copy

import pyro
import pytest
import torch
from _infer_models import K, X, m2, max_rel_grads, params_of, rel_diff, vae, value_and_grads
from pyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO, TraceMeanField_ELBO

from pixyz_pyro.infer import to_pyro
from pixyz_pyro.loss import ELBO, Expectation, KullbackLeibler, LogProb, Prob
from pixyz_pyro.model import Model

TOL = 1e-5


def _data(b=5):
    return torch.rand(b, X)


def _agree(direct, pyro_fn, params, seed=1):
    torch.manual_seed(seed)
    a, ga = value_and_grads(direct(), params)
    torch.manual_seed(seed)
    b, gb = value_and_grads(pyro_fn(), params)
    assert rel_diff(a, b) < TOL, (float(a), float(b))
    assert max_rel_grads(ga, gb) < TOL
    return a, b


def test_elbo_equals_trace_elbo():
    q, p, prior = vae()
    x = _data()
    model, guide = to_pyro(p * prior, observed=["x"]), to_pyro(q)
    a, b = _agree(lambda: ELBO(p * prior, q).sum().eval({"x": x}),
                  lambda: -Trace_ELBO().differentiable_loss(model, guide, x=x),
                  params_of(q, p))
    assert float(a) < 0  # a log-likelihood bound of binary-ish data: a real number


def test_analytic_kl_loss_equals_trace_mean_field_elbo():
    q, p, prior = vae()
    x = _data()
    loss = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).sum()
    model, guide = to_pyro(p * prior, observed=["x"]), to_pyro(q)
    _agree(lambda: loss.eval({"x": x}),
           lambda: TraceMeanField_ELBO().differentiable_loss(model, guide, x=x),
           params_of(q, p))


def test_multi_sample_elbo_equals_vectorised_particles():
    # sample_shape=[S] folds the S draws into the batch, S outermost: one rsample of
    # S * B rows, in the order of Pyro's (S, B) particle plate.
    q, p, prior = vae()
    x = _data()
    model, guide = to_pyro(p * prior, observed=["x"]), to_pyro(q)
    elbo = Trace_ELBO(num_particles=4, vectorize_particles=True, max_plate_nesting=1)
    _agree(lambda: ELBO(p * prior, q, sample_shape=[4]).sum().eval({"x": x}),
           lambda: -elbo.differentiable_loss(model, guide, x=x), params_of(q, p))


def test_analytic_kl_differs_from_the_single_sample_elbo():
    # The two contracts above are not the same number: the analytic KL removes the
    # Monte Carlo noise of log q - log p(z), so the test really tells them apart.
    q, p, prior = vae()
    x = _data()
    torch.manual_seed(1)
    mf = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).sum().eval({"x": x})
    torch.manual_seed(1)
    mc = -ELBO(p * prior, q).sum().eval({"x": x})
    assert rel_diff(mf, mc) > 1e-3


def test_m2_enumerated_equals_trace_enum_elbo_and_the_sum_over_classes():
    """Unlabelled M2 bound with y summed out exactly:

    .. math::
        \\sum_y q(y|x) \\left(\\mathbb{E}_{q(z|x,y)}[\\log p(x,z,y) - \\log q(z|x,y)]
        - \\log q(y|x)\\right)
    """
    qz, qy, p, pz, py = m2()
    x = _data()
    b = x.shape[0]
    model = to_pyro(p * pz * py, observed=["x"])
    guide = to_pyro(qz * qy, enumerate=["y"])
    # The explicit sum over classes, with pixyz_pyro losses, vectorised over the K
    # classes so that z is drawn with one rsample of shape (K, B, Z), as Pyro does.
    term = Prob(qy) * (ELBO(p * pz * py, qz) - LogProb(qy))
    xs = x.repeat(K, 1)
    ys = torch.eye(K).repeat_interleave(b, 0)

    def explicit():
        return -term.eval({"x": xs, "y": ys}).reshape(K, b).sum()

    def enumerated():
        return TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(model, guide, x=x)

    _agree(explicit, enumerated, params_of(qz, qy, p))


def test_enumerated_guide_puts_y_on_its_own_dim():
    qz, qy, _, _, _ = m2()
    x = _data()
    guide = to_pyro(qz * qy, enumerate=["y"])
    tr = pyro.poutine.trace(pyro.poutine.enum(guide, first_available_dim=-2)).get_trace(x=x)
    assert tr.nodes["y"]["value"].shape == (K, 1, K)
    assert tr.nodes["y"]["infer"]["enumerate"] == "parallel"
    assert tr.nodes["z"]["fn"].batch_shape == (K, 5)
    assert tr.nodes["z"]["fn"].event_shape == (2,)


@pytest.mark.parametrize("kind", ["mean_field", "elbo"])
def test_model_train_and_svi_step_give_the_same_parameters(kind):
    """20 steps of ``Model.train`` and of Pyro's ``SVI.step`` from the same networks, the
    same seed and the same optimizer give the same parameters.

    The loss is summed over the batch because Pyro's ELBOs sum over the plate.  Both
    sides use ``pyro.optim.Adam``: ``Model`` unwraps it into one torch Adam over all
    parameters, SVI keeps one per tensor; Adam is elementwise, so the updates agree.
    """
    q, p, prior = vae()
    q2, p2 = copy.deepcopy(q), copy.deepcopy(p)
    init = [t.detach().clone() for t in params_of(q, p)]
    x = _data(8)
    if kind == "mean_field":
        loss = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).sum()
        elbo = TraceMeanField_ELBO()
    else:
        loss = -ELBO(p * prior, q).sum()
        elbo = Trace_ELBO()
    model = Model(loss, distributions=[p, q], optimizer=pyro.optim.Adam({"lr": 0.01}))
    svi = SVI(to_pyro(p2 * prior, observed=["x"]), to_pyro(q2),
              pyro.optim.Adam({"lr": 0.01}), loss=elbo)
    torch.manual_seed(3)
    ours = [float(model.train({"x": x})) for _ in range(20)]
    torch.manual_seed(3)
    theirs = [svi.step(x=x) for _ in range(20)]
    assert rel_diff(torch.tensor(ours), torch.tensor(theirs)) < TOL
    for a, b in zip(params_of(q, p), params_of(q2, p2)):
        assert rel_diff(a, b) < TOL
    moved = max(rel_diff(a, b) for a, b in zip(params_of(q, p), init))
    assert moved > 1e-3  # training changed the parameters
