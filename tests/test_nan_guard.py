"""The NaN/Inf guard of ``Model.train``.

A step whose loss or gradient is not finite is refused: parameters, buffers (running
statistics included) and optimizer state stay bit-identical, and the error names the
term of the loss that went non-finite.  ``skip_nonfinite=True`` skips and counts such
steps.  On the normal path the guard reads one value per step and nothing else.
"""
import collections

import pytest
import torch
from _errors_world import World, assert_same, snapshot
from torch import nn

from pixyz_pyro.dist import Normal
from pixyz_pyro.errors import NonFiniteError
from pixyz_pyro.loss import KullbackLeibler, LogProb
from pixyz_pyro.model import Model


class Shift(Normal):
    """p(y|x) = N(y; sqrt(w) x + b, 1): the gradient in ``w`` is infinite at w = 0."""

    def __init__(self, w=1.0):
        super().__init__(var=["y"], cond_var=["x"], name="p")
        self.w = nn.Parameter(torch.tensor(w))
        self.b = nn.Parameter(torch.zeros(4))

    def forward(self, x):
        return {"loc": torch.sqrt(self.w) * x + self.b, "scale": torch.ones_like(x)}


def two_terms(world, **kwargs):
    """KL over q(z|x) plus -log p(y|x): two terms that read different inputs."""
    p = Shift()
    loss = KullbackLeibler(world.q, world.prior).mean() - LogProb(p).mean()
    model = Model(loss, distributions=[world.q, p], optimizer_params={"lr": 1e-2}, **kwargs)
    return model, p


def test_the_term_that_went_nonfinite_is_named():
    w = World(warm=False)
    model, _ = two_terms(w)
    y = torch.zeros(8, 4)
    model.train({"x": w.x, "y": y})
    before = snapshot([model])
    y[3, 1] = float("inf")
    with pytest.raises(NonFiniteError) as info:
        model.train({"x": w.x, "y": y})
    message = str(info.value)
    assert "non-finite step 1: the loss" in message and "is inf" in message
    assert "Non-finite terms: \\log p(y|x)." in message
    assert "D_{KL}" not in message.split("Non-finite terms:")[1]
    assert "Inputs with NaN or inf: ['y']." in message
    assert_same(before, snapshot([model]))


@pytest.mark.parametrize("check_every", [1, 3])
def test_same_named_distributions_are_told_apart_as_the_loss_prints_them(check_every):
    """Two distributions that print alike, p(x) and p(x): the loss prints them
    p^{(1)}(x) and p^{(2)}(x), and the message of a refused step names the one whose term
    and gradient went non-finite the same way (with check_every too)."""
    a = Normal(loc=nn.Parameter(torch.zeros(1)), scale=1.0, var=["x"], name="p")
    b = Normal(loc=nn.Parameter(torch.zeros(1)), scale=1.0, var=["x"], name="p")
    loss = (-LogProb(a) - LogProb(b)).mean()
    assert "p^{(1)}(x)" in loss.loss_text and "p^{(2)}(x)" in loss.loss_text
    model = Model(loss, distributions=[a, b], check_every=check_every,
                  optimizer_params={"lr": 0.1, "fused": True})
    x = torch.zeros(4, 1)
    model.train({"x": x})
    with torch.no_grad():
        b.loc.fill_(float("inf"))
    with pytest.raises(NonFiniteError) as info:
        for _ in range(check_every + 1):
            model.train({"x": x})
    message = str(info.value)
    assert "Non-finite terms: \\log p^{(2)}(x)." in message
    assert "Non-finite gradients: p^{(2)}(x) (loc)." in message


def test_a_nonfinite_gradient_of_a_finite_loss_is_refused():
    w = World(warm=False)
    model, p = two_terms(w)
    with torch.no_grad():
        p.w.zero_()  # d sqrt(w) / dw = inf at w = 0; the loss itself is finite
    before = snapshot([model])
    with pytest.raises(NonFiniteError) as info:
        model.train({"x": w.x, "y": torch.ones(8, 4)})
    message = str(info.value)
    assert "the loss is finite" in message and "but a gradient is not" in message
    assert "Non-finite terms: none." in message
    assert "Non-finite gradients: p(y|x) (w)." in message
    assert_same(before, snapshot([model]))
    assert all(q.grad is None for q in model._params)


def test_running_statistics_are_restored():
    """The encoder's BatchNorm sees the NaN batch; its running stats must not."""
    w = World(warm=True)
    bn = w.q.net[1]
    mean, var, n = bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked)
    x = w.x.clone()
    x[:, 0] = float("nan")
    with pytest.raises(NonFiniteError):
        w.model.train({"x": x})
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
    assert int(bn.num_batches_tracked) == n


def test_skip_nonfinite_skips_counts_and_changes_nothing():
    """good, bad, good with skipping == good, good: bit for bit."""
    def run(with_bad):
        w = World(warm=False)
        model = Model(w.loss, distributions=[w.p, w.q], optimizer_params={"lr": 1e-2},
                      skip_nonfinite=True)
        bad = w.x.clone()
        bad[0, 0] = float("nan")
        batches = [w.x, bad, w.x] if with_bad else [w.x, w.x]
        values = []
        for i, x in enumerate(batches):
            torch.manual_seed(100 + (i if not with_bad or i == 0 else i - 1))
            values.append(model.train({"x": x}))
        return model, values

    skipping, values = run(True)
    straight, _ = run(False)
    assert skipping.skipped_steps == 1 and skipping.step_count == 2
    assert straight.skipped_steps == 0 and straight.step_count == 2
    assert torch.isnan(values[1])  # the refused step still reports its value
    assert_same(snapshot([skipping])[0]["distributions"],
                snapshot([straight])[0]["distributions"])
    assert_same(snapshot([skipping])[0]["optimizer"]["state"],
                snapshot([straight])[0]["optimizer"]["state"])


class _SyncCounter:
    """Count the Python-level host reads of tensors (``item``, ``bool``, ``float``...)."""

    NAMES = ("item", "__bool__", "__float__", "__int__", "__index__", "tolist", "numpy")

    def __init__(self, monkeypatch):
        self.counts = collections.Counter()
        for name in self.NAMES:
            original = getattr(torch.Tensor, name)

            def counted(t, *args, _original=original, _name=name, **kwargs):
                self.counts[_name] += 1
                return _original(t, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, counted)


def test_the_normal_path_reads_one_value_per_step(monkeypatch):
    """The guard adds no host sync: after the first (validating) step, a step reads the
    one value ``train`` returns, once.  SGD, because Adam reads its own step counter."""
    w = World(warm=False)
    model = Model(w.loss, distributions=[w.p, w.q], optimizer=torch.optim.SGD,
                  optimizer_params={"lr": 1e-2}, clip_grad_norm=10.0)
    model.train({"x": w.x})
    counter = _SyncCounter(monkeypatch)
    for _ in range(3):
        model.train({"x": w.x})
    assert counter.counts == {"item": 3}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_a_step_syncs_once_and_a_refused_one_changes_nothing():
    """On CUDA the host syncs are real: ``set_sync_debug_mode("warn")`` reports each one.
    A normal step of a model with BatchNorm (its running statistics are copied on the
    device every step) syncs once; a NaN batch is refused with the state intact."""
    import warnings

    w = World(warm=False)
    for d in (w.p, w.q, w.prior):
        d.to("cuda")
    x = w.x.cuda()
    w.model.train({"x": x})
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            torch.cuda.set_sync_debug_mode("warn")  # itself warns: a prototype feature
            for _ in range(3):
                w.model.train({"x": x})
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [r for r in record if "called a synchronizing" in str(r.message)]
    assert len(syncs) == 3, [str(r.message) for r in syncs]
    before = snapshot([w.model])
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="Inputs with NaN or inf: \\['x'\\]"):
        w.model.train({"x": bad})
    assert_same(before, snapshot([w.model]))
