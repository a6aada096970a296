"""An expectation over ``n`` draws scores its ``b``-row inputs without repeating them
(:mod:`pixyz_pyro.dist.repeats`): the same numbers and gradients as folding the inputs
``n`` times, the same checks and errors, ``q``'s forward once, and no copy of the data."""
import functools
import math
import warnings

import _vae_world as world
import pytest
import torch
from torch import nn

from pixyz_pyro.dist import Normal
from pixyz_pyro.dist import repeats as repeats_module
from pixyz_pyro.dist import shapes as shapes_module
from pixyz_pyro.errors import ShapeError
from pixyz_pyro.loss import (
    ELBO,
    IWAE,
    Expectation,
    KullbackLeibler,
    LogProb,
    Parameter,
    VRBound,
)
from pixyz_pyro.loss import evaluate as evaluate_module
from pixyz_pyro.loss.evaluate import lazy_body
from pixyz_pyro.model import Model

B, X, Z, Y = 5, 6, 3, 2


Inference = functools.partial(world.Inference, X, Z)
Decoder = functools.partial(world.Decoder, Z, X)


class GaussianDecoder(Normal):
    """p(x|z, y): a label beside the latent, and a fixed scale."""

    def __init__(self):
        super().__init__(var=["x"], cond_var=["z", "y"], scale=torch.tensor(0.5), name="p")
        self.fc = nn.Linear(Z + Y, X)

    def forward(self, z, y):
        return {"loc": self.fc(torch.cat([z, y], -1))}


def prior():
    return world.prior(Z)


def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.rand(B, X, generator=g).round(),
            "y": torch.randn(B, Y, generator=g)}


@pytest.fixture
def folded(monkeypatch):
    """``folded(True)``: evaluate with the inputs folded eagerly, as without repeats."""
    def use(eager: bool):
        if eager:
            monkeypatch.setattr(evaluate_module, "_repeats", lambda *a: None)
        else:
            monkeypatch.undo()
    return use


@pytest.fixture
def copies(monkeypatch):
    """The tensors whose rows are repeated (copied) by ``fold`` or by a ``Repeats``."""
    seen = []
    original = shapes_module.repeat_rows

    def spy(t, n):
        seen.append(t)
        return original(t, n)
    for module in (shapes_module, repeats_module):
        monkeypatch.setattr(module, "repeat_rows", spy)
    return seen


def _value_and_grads(loss, modules, values, seed=1):
    torch.manual_seed(seed)
    for m in modules:
        m.zero_grad(set_to_none=True)
    v = loss.eval(values)
    v.backward()
    return v.detach(), [p.grad.clone() for m in modules for p in m.parameters()]


def _losses(q, p, pz):
    return {
        "elbo": (-ELBO(p * pz, q, sample_shape=4)).mean(),
        "written": -Expectation(q, LogProb(p) + LogProb(pz) - LogProb(q),
                                sample_shape=(2, 3)).mean(),
        "likelihood": (KullbackLeibler(q, pz) - Expectation(q, LogProb(p),
                                                            sample_shape=3)).mean(),
        "scaled": Expectation(q, 0.5 * LogProb(p) - LogProb(q) / 2, sample_shape=2).sum(),
    }


@pytest.mark.parametrize("which", ["elbo", "written", "likelihood", "scaled"])
@pytest.mark.parametrize("decoder", [Decoder, GaussianDecoder])
def test_the_same_numbers_and_gradients_as_folding_the_inputs(folded, copies, which,
                                                              decoder):
    torch.manual_seed(0)
    q, p, pz = Inference(), decoder(), prior()
    loss = _losses(q, p, pz)[which]
    values = data()
    lazy = _value_and_grads(loss, [q, p], values)
    assert all(t is not values["x"] for t in copies)  # the data was not repeated
    folded(True)
    eager = _value_and_grads(loss, [q, p], data())
    assert torch.equal(lazy[0], eager[0])
    for a, b in zip(lazy[1], eager[1]):
        assert torch.equal(a, b)


def test_the_monte_carlo_log_likelihood_against_its_formula():
    """:math:`\\frac1n\\sum_s \\log \\mathrm{Bern}(x | \\pi(z_s))` on the same draws."""
    torch.manual_seed(0)
    q, p = Inference(), Decoder()
    values = data()
    n = 7
    torch.manual_seed(3)
    got = Expectation(q, LogProb(p), sample_shape=n).eval(values)
    _, _, z = _draws(q, values, n, seed=3)
    probs = torch.sigmoid(p.fc(z))
    x = values["x"]
    want = (x * probs.log() + (1 - x) * (1 - probs).log()).sum(-1).mean(0)
    assert got.shape == (B,)
    assert torch.allclose(got, want, atol=1e-5)


def _draws(q, values, n, seed):
    """q's mean, scale and n reparameterised draws after ``seed``, as the executor draws
    them: one ``randn(n, B, Z)``."""
    torch.manual_seed(seed)
    params = q.get_params({"x": values["x"]})
    loc, scale = params["loc"], params["scale"]
    return loc, scale, loc + scale * torch.randn(n, B, Z)


def normal(v, m, s):
    """:math:`\\log \\mathcal{N}(v | m, s)`, summed over the features."""
    return (-((v - m) / s) ** 2 / 2 - torch.log(torch.as_tensor(s))
            - 0.5 * math.log(2 * math.pi)).sum(-1)


def test_the_elbo_against_its_formula_with_a_gaussian_likelihood():
    torch.manual_seed(0)
    q, p, pz = Inference(), GaussianDecoder(), prior()
    values, n = data(), 5
    torch.manual_seed(4)
    got = ELBO(p * pz, q, sample_shape=n).eval(values)
    loc, scale, z = _draws(q, values, n, seed=4)
    mean = p.fc(torch.cat([z, values["y"].expand(n, B, Y)], -1))
    want = (normal(values["x"], mean, 0.5) + normal(z, 0.0, 1.0)
            - normal(z, loc, scale)).mean(0)
    assert torch.allclose(got, want, atol=1e-5)


def test_the_data_is_never_repeated_and_q_runs_once(copies):
    """The scored images are expanded views: ``repeat_rows`` (the copy) is never given
    them, and ``q``'s forward runs once (its folded parameters are found in the memo)."""
    torch.manual_seed(0)
    q, p, pz = Inference(), Decoder(), prior()
    values = data()
    (-ELBO(p * pz, q, sample_shape=8)).mean().eval(values)
    assert all(t is not values["x"] for t in copies)
    assert q.calls == 1


def test_a_second_input_is_folded_once_where_a_network_reads_it(copies):
    torch.manual_seed(0)
    q, p = Inference(), GaussianDecoder()
    values = data()
    Expectation(q, LogProb(p) + LogProb(p) - LogProb(q), sample_shape=3).eval(values)
    assert sum(t is values["y"] for t in copies) == 1  # for p's network, once
    assert all(t is not values["x"] for t in copies)


def test_bodies_that_read_values_otherwise_fold():
    q, p, pz = Inference(), Decoder(), prior()
    assert lazy_body(LogProb(p) - LogProb(q))
    assert lazy_body(LogProb(p * pz).mean())
    assert not lazy_body(KullbackLeibler(q, pz))
    assert not lazy_body(LogProb(p) + Parameter("c"))
    assert not lazy_body(LogProb(p.replace_var(x="w")))
    assert not lazy_body(Expectation(q, LogProb(p)))


@pytest.mark.parametrize("body", ["parameter", "kl", "renamed"])
def test_a_folding_body_gives_the_same_numbers(folded, body):
    torch.manual_seed(0)
    q, p, pz = Inference(), Decoder(), prior()
    values = data()
    f = {"parameter": LogProb(p) + Parameter("c"),
         "kl": LogProb(p) - KullbackLeibler(q, pz),
         "renamed": LogProb(p.replace_var(x="w")) - LogProb(q)}[body]
    values = {**values, "w": values["x"], "c": torch.randn(B)}
    loss = Expectation(q, f, sample_shape=3).mean()
    torch.manual_seed(2)
    got = loss.eval(values)
    folded(True)
    torch.manual_seed(2)
    assert torch.equal(got, loss.eval(values))


def _outcome(loss, values):
    torch.manual_seed(7)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            v = loss.eval(values)
        return "ok", v.detach(), [str(w.message) for w in caught]
    except Exception as e:  # noqa: BLE001 - compared between the two paths
        return type(e).__name__, str(e), None


@pytest.mark.parametrize("case", ["out of support", "wrong features", "integer data",
                                  "nan data"])
def test_bad_data_is_reported_as_when_folded(folded, case):
    """Every call, first or warm, on both paths: the same error or warning."""
    torch.manual_seed(0)
    q, p, pz = Inference(), Decoder(), prior()
    loss = (-ELBO(p * pz, q, sample_shape=3)).mean()
    good, bad = data(), data()
    if case == "wrong features":
        p = world.Decoder(Z, X - 1)
        loss = (-ELBO(p * pz, q, sample_shape=3)).mean()
    bad_x = {"out of support": bad["x"] + 2.0, "wrong features": bad["x"],
             "integer data": bad["x"].long(), "nan data": bad["x"] * math.nan}[case]
    bad = {**bad, "x": bad_x}
    results = []
    for eager in (False, True):
        folded(eager)
        first = _outcome(loss, bad)
        _outcome(loss, good)  # a warm call in between
        results.append((first, _outcome(loss, bad)))
    (lazy_first, lazy_warm), (eager_first, eager_warm) = results
    for a, b in ((lazy_first, eager_first), (lazy_warm, eager_warm), (lazy_first, lazy_warm)):
        assert a[0] == b[0]
        if a[0] != "ok":
            assert a[1] == b[1]
        else:
            assert a[2] == b[2]
            assert torch.equal(a[1], b[1]) or (a[1].isnan().all() and b[1].isnan().all())
    if case == "wrong features":
        assert lazy_first[0] == ShapeError.__name__ and '"x" has shape (15, 6)' in lazy_first[1]


def test_training_under_no_grad_first_then_with_grad(folded):
    """A first call under ``no_grad`` and then ``Model.train``: the same losses as the
    folded path."""
    losses = []
    for eager in (False, True):
        folded(eager)
        torch.manual_seed(0)
        q, p, pz = Inference(), Decoder(), prior()
        model = Model((-ELBO(p * pz, q, sample_shape=4)).mean(), distributions=[q, p],
                      optimizer=torch.optim.Adam, optimizer_params={"lr": 1e-2})
        torch.manual_seed(5)
        with torch.no_grad():
            first = model.test(data())
        steps = [model.train(data(i)) for i in range(3)]
        losses.append(torch.stack([torch.as_tensor(first), *map(torch.as_tensor, steps)]))
    assert torch.equal(losses[0], losses[1])


@pytest.mark.parametrize("estimator", ["reparam", "stl", "dreg"])
@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_multi_sample_bounds_score_the_data_unrepeated(folded, copies, estimator, alpha):
    """``VRBound`` / ``IWAE`` over k draws: the same numbers and gradients as folding the
    data k times, which is never copied; ``q``'s forward runs once."""
    torch.manual_seed(0)
    q, p, pz = Inference(), Decoder(), prior()
    loss = -VRBound(p * pz, q, k=6, alpha=alpha, estimator=estimator).mean()
    values = data()
    lazy = _value_and_grads(loss, [q, p], values)
    assert all(t is not values["x"] for t in copies)
    assert q.calls == 1
    folded(True)
    eager = _value_and_grads(loss, [q, p], values)
    assert torch.equal(lazy[0], eager[0])
    for a, b in zip(lazy[1], eager[1]):
        assert torch.equal(a, b)


def test_the_iwae_bound_against_its_formula():
    """:math:`\\log \\frac1k \\sum_i p(x, z_i) / q(z_i|x)` on the same draws."""
    torch.manual_seed(0)
    q, p, pz = Inference(), Decoder(), prior()
    values, k = data(), 5
    torch.manual_seed(9)
    got = IWAE(p * pz, q, k=k).eval(values)
    loc, scale, z = _draws(q, values, k, seed=9)
    probs, x = torch.sigmoid(p.fc(z)), values["x"]
    log_px = (x * probs.log() + (1 - x) * (1 - probs).log()).sum(-1)
    want = torch.logsumexp(log_px + normal(z, 0.0, 1.0) - normal(z, loc, scale), 0) \
        - math.log(k)
    assert torch.allclose(got, want, atol=1e-5)
