"""The step plan of an ``IterativeLoss`` (:mod:`pixyz_pyro.loss.series`): the same values,
samples and gradients as the interpreter on the same draws, the same errors at any step,
and every node kind it does not plan run through the interpreter inside it."""
import functools
import re

import pytest
import torch
import torch.nn.functional as F
from _series_world import Emission, Inference
from torch import nn

from pixyz_pyro.dist import Bernoulli, Normal
from pixyz_pyro.dist.context import Context
from pixyz_pyro.errors import ShapeError
from pixyz_pyro.loss import (
    MMD,
    Entropy,
    Expectation,
    IterativeLoss,
    KullbackLeibler,
    LogProb,
    series,
)
from pixyz_pyro.loss.evaluate import run
from pixyz_pyro.model import Model

T, B, X, Z = 5, 4, 3, 2


class Transition(Normal):
    """p(z|z_prev); from call ``wide_from`` on, its parameters have ``2 * Z`` features."""

    def __init__(self):
        super().__init__(var=["z"], cond_var=["z_prev"], name="p")
        self.fc = nn.Linear(Z, 2 * Z)
        self.calls, self.wide_from = 0, None

    def forward(self, z_prev):
        self.calls += 1
        loc, s = self.fc(z_prev).chunk(2, -1)
        scale = F.softplus(s) + 0.1
        if self.wide_from is not None and self.calls >= self.wide_from:
            loc, scale = torch.cat([loc, loc], -1), torch.cat([scale, scale], -1)
        return {"loc": loc, "scale": scale}


def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"x": (torch.rand(T, B, X, generator=g) > 0.5).float(),
            "z_prev": torch.zeros(B, Z)}


@pytest.fixture
def dists():
    torch.manual_seed(0)
    return Inference(X, Z), Transition(), Emission(X, Z)


def steps(q, p, e):
    """Step bodies: planned nodes, nodes that fall back, and mixtures of both."""
    kl, rec = KullbackLeibler(q, p), Expectation(q, LogProb(e))
    return {
        "dmm": kl - rec,
        "weighted": 0.5 * kl - rec + (-kl) * 0.25,
        "shared": (kl - rec) - (kl - rec) + kl,  # a node that occurs twice
        "monte carlo KL": KullbackLeibler(q, p, analytical=False) - rec,
        "two draws": kl - Expectation(q, LogProb(e), sample_shape=(2,)),
        "entropy": -Entropy(q) - rec,
        "mmd": MMD(q, p, kernel="gaussian") - rec,
        "batch mean inside": (kl - rec).mean(),
    }


def interpreted(monkeypatch):
    """Run every step body through the interpreter's ``run``, as before the plan."""
    monkeypatch.setattr(series, "step_plan", lambda node, ctx: functools.partial(run, node))


def series_of(body, update=True):
    return IterativeLoss(body, max_iter=T, series_var=["x"],
                         update_value={"z": "z_prev"} if update else None)


@pytest.mark.parametrize("name", list(steps(*[Normal(var=["z"])] * 2, Bernoulli(var=["x"]))))
def test_the_plan_gives_the_interpreters_values_samples_and_gradients(name, dists,
                                                                      monkeypatch):
    q, p, e = dists
    loss = series_of(steps(q, p, e)[name], update=name != "two draws")  # (2, B, Z) draws
    params = [t for d in dists for t in d.parameters()]
    out = []
    for planned in (True, False):
        if not planned:
            interpreted(monkeypatch)
        torch.manual_seed(7)
        ctx = Context()
        value, new = run(loss, data(), ctx)
        grads = torch.autograd.grad(value.sum(), params, allow_unused=True)
        out.append((value, new, grads, len(ctx.flags)))
    (v1, n1, g1, f1), (v2, n2, g2, f2) = out
    assert torch.equal(v1, v2)
    assert n1.keys() == n2.keys() and all(torch.equal(n1[k], n2[k]) for k in n1)
    assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(g1, g2))
    assert f1 == f2 > 0  # the same support checks, at every step


def test_a_planned_step_is_the_interpreters_step(dists):
    """One step on its own: the plan and ``run`` on the same state and seed."""
    q, p, e = dists
    body = steps(q, p, e)["weighted"]
    state = {"x": data()["x"][0], "z_prev": torch.randn(B, Z)}
    torch.manual_seed(1)
    a, na = series.step_plan(body, Context())(state, Context())
    torch.manual_seed(1)
    b, nb = run(body, state, Context())
    assert torch.equal(a, b) and torch.equal(na["z"], nb["z"])


def test_nodes_without_a_plan_run_through_the_interpreter(dists):
    q, p, e = dists
    for name in ("monte carlo KL", "two draws", "entropy", "mmd"):
        body = steps(q, p, e)[name]
        plan = series.step_plan(body, Context())
        # the root (a difference) is planned; its first operand is not
        assert not isinstance(plan, functools.partial)
    mmd = MMD(q, p, kernel="gaussian")
    plan = series.step_plan(mmd, Context())
    assert isinstance(plan, functools.partial) and plan.func is run


def test_shared_nodes_and_recorded_terms_go_through_run(dists):
    q, p, e = dists
    kl = KullbackLeibler(q, p)
    ctx = Context()
    ctx.shared = {id(kl): []}
    plan = series.step_plan(kl, ctx)
    assert isinstance(plan, functools.partial) and plan.func is run
    ctx = Context(record_terms=True)
    ctx.terms = {id(kl): None}
    assert series.step_plan(kl, ctx).func is run


def test_the_kl_shape_check_runs_again_when_the_shapes_change(dists):
    """The KL's check is skipped only for shapes that passed in this evaluation: a step
    whose transition has other features is a ShapeError, on every evaluation."""
    q, p, e = dists
    loss = series_of(KullbackLeibler(q, p) - Expectation(q, LogProb(e))).mean()
    with torch.no_grad():
        assert torch.isfinite(loss.eval(data()))
        for _ in range(2):
            p.calls, p.wide_from = 0, 3
            with pytest.raises(ShapeError, match=re.escape(
                    "q(z|x,z_{prev}) gave z with features (2,), p(z|z_{prev}) expects (4,)")):
                loss.eval(data())


def test_a_model_trains_the_same_with_and_without_the_plan(dists, monkeypatch):
    """Three training steps from the same weights and seed: the same losses and weights."""
    results = []
    for planned in (True, False):
        torch.manual_seed(0)
        q, p, e = Inference(X, Z), Transition(), Emission(X, Z)
        loss = series_of(KullbackLeibler(q, p) - Expectation(q, LogProb(e))).mean()
        model = Model(loss, distributions=[q, p, e], optimizer=torch.optim.Adam,
                      optimizer_params={"lr": 1e-2})
        if not planned:
            interpreted(monkeypatch)
        torch.manual_seed(5)
        values = [model.train(data(s)) for s in range(3)]
        results.append((values, [t.detach().clone() for d in (q, p, e) for t in d.parameters()]))
    (v1, w1), (v2, w2) = results
    assert all(torch.equal(a, b) for a, b in zip(v1, v2))
    assert all(torch.equal(a, b) for a, b in zip(w1, w2))


def test_a_mask_and_a_step_index_through_the_plan():
    """``slice_step`` gives the step index ``t``; a mask weights the steps."""
    p = Normal(loc="h_prev", scale=1., var=["x"], cond_var=["h_prev"])
    loss = IterativeLoss(LogProb(p), max_iter=3, series_var=["x"])
    x, h = torch.randn(3, 2, 1), torch.zeros(2, 1)
    mask = torch.tensor([[1., 0.], [1., 1.], [0., 1.]])
    lp = torch.distributions.Normal(0., 1.).log_prob(x).sum(-1)  # (3, 2)
    assert torch.allclose(loss.eval({"x": x, "h_prev": h}), lp.sum(0))
    assert torch.allclose(loss.eval({"x": x, "h_prev": h}, mask=mask), (lp * mask).sum(0))


def _graph_ops(t):
    seen, stack, names = set(), [t.grad_fn], []
    while stack:
        f = stack.pop()
        if f is None or f in seen:
            continue
        seen.add(f)
        names.append(type(f).__name__)
        stack.extend(g for g, _ in f.next_functions)
    return names


@pytest.mark.parametrize("body", ["kl - E[log p]", "-E[log p] + kl"])
def test_a_subtracted_log_likelihood_is_added_as_its_nll(body, dists, monkeypatch):
    """``a - E[log p(x|z)]`` and ``-E[log p] + a`` run as ``a + E[-log p]``: no negation
    node in the graph, and the interpreter's value and gradients bit for bit."""
    q, p, e = dists
    kl, rec = KullbackLeibler(q, p), Expectation(q, LogProb(e))
    loss = series_of(kl - rec if body.startswith("kl") else -rec + kl)
    torch.manual_seed(2)
    planned = run(loss, data(), Context())[0]
    assert "NegBackward0" not in _graph_ops(planned)
    interpreted(monkeypatch)
    torch.manual_seed(2)
    reference = run(loss, data(), Context())[0]
    assert "NegBackward0" in _graph_ops(reference)
    assert torch.equal(planned, reference)
    params = [t for d in dists for t in d.parameters()]
    ga = torch.autograd.grad(planned.sum(), params)
    gb = torch.autograd.grad(reference.sum(), params)
    assert all(torch.equal(a, b) for a, b in zip(ga, gb))


def test_a_normal_likelihood_is_folded_too(monkeypatch):
    """A Gaussian emission: ``kl - E[log N(x|mu, 1)]`` computed as ``kl + nll``, with the
    interpreter's bits."""
    torch.manual_seed(0)
    q = Inference(X, Z)

    class GaussEmission(Normal):
        def __init__(self):
            super().__init__(var=["x"], cond_var=["z"], name="p", scale=1.0,
                             features_shape=[X])
            self.fc = nn.Linear(Z, X)

        def forward(self, z):
            return {"loc": self.fc(z)}

    e, prior = GaussEmission(), Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[Z])
    loss = series_of(KullbackLeibler(q, prior) - Expectation(q, LogProb(e)))
    x = {"x": torch.randn(T, B, X), "z_prev": torch.zeros(B, Z)}
    torch.manual_seed(4)
    a = run(loss, x, Context())[0]
    interpreted(monkeypatch)
    torch.manual_seed(4)
    b = run(loss, x, Context())[0]
    ops_a, ops_b = _graph_ops(a), _graph_ops(b)
    assert ops_a[:2] == ["AddBackward0", "AddBackward0"]  # the sum of steps, then kl + nll
    assert ops_b[:2] == ["AddBackward0", "SubBackward0"]  # kl - log p
    assert torch.equal(a, b)
