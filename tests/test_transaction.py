"""Model.train is a transaction: a failure or an interrupt at any stage before the
commit leaves every parameter, buffer, optimizer state and counter bit-identical; the
commit itself is never left half applied."""
import signal

import pytest
import torch
import torch.nn.functional as F
from _state_snapshot import assert_identical, take
from torch import nn

import pixyz_pyro.model.model as model_module
from pixyz_pyro.dist import Bernoulli, InverseTransformedDistribution, Normal
from pixyz_pyro.errors import ModelError, NonFiniteError
from pixyz_pyro.flows import ActNorm2d, FlowList
from pixyz_pyro.loss import Expectation, KullbackLeibler, LogProb
from pixyz_pyro.model import Model

X, Z = 6, 2


class Encoder(Normal):
    def __init__(self):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.fc = nn.Linear(X, 8)
        self.bn = nn.BatchNorm1d(8)
        self.out = nn.Linear(8, 2 * Z)
        self.fail = None

    def forward(self, x):
        h = F.relu(self.bn(self.fc(x)))
        if self.fail is not None:
            raise self.fail
        loc, s = self.out(h).chunk(2, -1)
        return {"loc": loc, "scale": F.softplus(s) + 0.1}


class Decoder(Bernoulli):
    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.fc = nn.Linear(Z, X)

    def forward(self, z):
        return {"probs": torch.sigmoid(self.fc(z))}


class Side(Normal):
    """Used by the loss, not listed in the Model: its BatchNorm is guarded too."""

    def __init__(self):
        super().__init__(var=["s"], cond_var=["x"], name="r")
        self.bn = nn.BatchNorm1d(X)

    def forward(self, x):
        return {"loc": self.bn(x)[:, :1], "scale": torch.ones(len(x), 1)}


def world():
    torch.manual_seed(0)
    q, p, side = Encoder(), Decoder(), Side()
    prior = Normal(loc=0., scale=1., var=["z"], features_shape=[Z], name="p_{prior}")
    loss = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))
            - LogProb(side)).mean()
    model = Model(loss, distributions=[q, p], clip_grad_norm=10.0)
    x = torch.rand(16, X)
    data = {"x": x, "s": torch.zeros(16, 1)}
    for _ in range(2):
        model.train(data)
    return model, q, p, side, data


def test_a_refused_step_changes_nothing_in_any_module_the_loss_reaches():
    model, q, p, side, data = world()
    before = take(model, side)
    bad = dict(data, x=data["x"].clone())
    bad["x"][0, 0] = float("nan")
    with pytest.raises(NonFiniteError):
        model.train(bad)
    assert_identical(before, take(model, side))


def test_test_changes_no_module_state():
    model, q, p, side, data = world()
    before = take(model, side)
    side.train()
    model.test(data)
    assert side.training  # an unlisted module keeps its mode
    assert_identical(before, take(model, side))


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


STAGES = ["forward", "backward", "clip", "read"]


@pytest.mark.parametrize("stage", STAGES)
def test_an_interrupt_before_the_commit_changes_nothing(stage, monkeypatch):
    model, q, p, side, data = world()
    before = take(model, side)
    if stage == "forward":
        q.fail = KeyboardInterrupt()
    elif stage == "backward":
        q.out.weight.register_hook(_interrupt)
    elif stage == "clip":
        monkeypatch.setattr(model_module.nn.utils, "clip_grad_norm_", _interrupt)
    else:
        monkeypatch.setattr(model_module, "finite_check", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        model.train(data)
    assert_identical(before, take(model, side))
    assert all(t.grad is None for t in model._params)
    q.fail = None
    monkeypatch.undo()
    if stage == "backward":
        q.out.weight._backward_hooks.clear()
    model.train(data)  # and the model trains on
    assert model.step_count == 3


def test_a_re_entrant_train_is_refused():
    model, q, p, side, data = world()
    inner = []

    class Reentrant(nn.Module):
        def forward(self, h):
            if not inner:
                inner.append(True)
                with pytest.raises(ModelError, match="called again while a step"):
                    model.train(data)
            return h

    q.bn = nn.Sequential(q.bn, Reentrant())
    before = model.step_count
    model.train(data)
    assert inner and model.step_count == before + 1


def test_actnorm_initialises_on_the_first_accepted_batch():
    flow = FlowList([ActNorm2d(2)])
    prior = Normal(loc=torch.zeros(2, 2, 2), scale=1., var=["z"], features_shape=[2, 2, 2])
    p = InverseTransformedDistribution(prior, flow, var=["x"])
    model = Model(-LogProb(p).mean(), distributions=[p])
    bad = torch.randn(4, 2, 2, 2)
    bad[0, 0, 0, 0] = float("inf")
    with pytest.raises(NonFiniteError):
        model.train({"x": bad})
    assert not flow[0].inited
    good = 5 + torch.randn(4, 2, 2, 2)
    model.train({"x": good})
    assert flow[0].inited
    bias = -good.mean(dim=(0, 2, 3))
    assert torch.allclose(flow[0].pyro_transform.bias.detach().flatten(), bias, atol=1e-2)


def test_a_gan_commits_both_steps_or_neither():
    from pixyz_pyro.dist import Deterministic
    from pixyz_pyro.model import GAN

    class Gen(Deterministic):
        def __init__(self):
            super().__init__(var=["x"], cond_var=["z"], name="p")
            self.fc = nn.Linear(Z, X)

        def forward(self, z):
            return {"x": torch.sigmoid(self.fc(z))}

    class Disc(Deterministic):
        def __init__(self):
            super().__init__(var=["t"], cond_var=["x"], name="d")
            self.fc = nn.Linear(X, 1)

        def forward(self, x):
            return {"t": torch.sigmoid(self.fc(x))}

    torch.manual_seed(0)
    prior = Normal(loc=0., scale=1., var=["z"], features_shape=[Z])
    gen, disc = Gen(), Disc()
    model = GAN((gen * prior).marginalize_var("z"), disc, skip_nonfinite=True)
    x = torch.rand(8, X)
    model.train({"x": x})
    before = take(model)
    fail = []

    def poisoned(grad):  # the generator's gradient only: the discriminator's step is fine
        if fail:
            return torch.full_like(grad, float("nan"))
        return grad

    gen.fc.weight.register_hook(poisoned)
    fail.append(True)
    model.train({"x": x})  # refused (skipped): the discriminator's step is undone too
    assert model.skipped_steps == 1
    after = take(model)
    after["counter skipped_steps"] = before["counter skipped_steps"]
    assert_identical(before, after)


def test_a_deferred_interrupt_goes_to_the_handler_in_place_after_the_block():
    """During the commit a Ctrl-C waits; at its end the handler in place gets it: a
    user's handler is called once, an ignored SIGINT stays ignored."""
    from pixyz_pyro.model.guard import deferred_interrupt
    calls = []
    previous = signal.signal(signal.SIGINT, lambda *args: calls.append(args[0]))
    try:
        with deferred_interrupt():
            signal.raise_signal(signal.SIGINT)
            inside = list(calls)
        after = list(calls)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with deferred_interrupt():
            signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert inside == [] and after == [signal.SIGINT]


@pytest.mark.parametrize("kind", ["python function", "default_int_handler", "SIG_IGN",
                                  "SIG_DFL"])
def test_a_deferred_interrupt_puts_back_the_handler_it_found(kind):
    """Whatever handler was in place, the same one is in place after the block (the swap
    bypasses signal.signal's enum wrapper), and a Ctrl-C inside goes where it would have:
    to the function, as a KeyboardInterrupt for Python's and the default handler, nowhere
    when ignored."""
    from pixyz_pyro.model.guard import deferred_interrupt
    calls = []
    handler = {"python function": lambda *args: calls.append(args[0]),
               "default_int_handler": signal.default_int_handler,
               "SIG_IGN": signal.SIG_IGN, "SIG_DFL": signal.SIG_DFL}[kind]
    inherited = signal.signal(signal.SIGINT, handler)
    try:
        with deferred_interrupt():
            assert signal.getsignal(signal.SIGINT) is not handler
        assert signal.getsignal(signal.SIGINT) == handler
        raised = False
        try:
            with deferred_interrupt():
                signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            raised = True
        assert signal.getsignal(signal.SIGINT) == handler
    finally:
        signal.signal(signal.SIGINT, inherited)
    assert raised == (kind in ("default_int_handler", "SIG_DFL"))
    assert calls == ([signal.SIGINT] if kind == "python function" else [])


@pytest.mark.parametrize("where", ["main thread", "another thread"])
def test_an_interrupt_during_the_optimizer_step_is_deferred_to_its_end(where):
    """Ctrl-C while the parameters are updated: the commit goes through whole, then the
    KeyboardInterrupt.  The OS may hand the signal to any thread (a progress bar's, a
    loader's); Python then runs the handler in the main thread at once, so blocking the
    signal there would not defer it."""
    import threading
    model, q, p, side, data = world()
    step = model.optimizer.step

    def ctrl_c():
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    def interrupted_step(*args, **kwargs):
        if where == "main thread":
            signal.raise_signal(signal.SIGINT)
        else:  # delivered to a worker thread, which blocks nothing
            worker = threading.Thread(target=ctrl_c)
            worker.start()
            worker.join()
        return step(*args, **kwargs)

    model.optimizer.step = interrupted_step
    w = q.out.weight.detach().clone()
    # Python's own handler, whatever the process inherited (a shell's background job
    # starts with SIGINT ignored, and an ignored SIGINT stays ignored: the test above)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            model.train(data)
    finally:
        signal.signal(signal.SIGINT, inherited)
    # the commit went through whole: parameters and the counter agree
    assert model.step_count == 3 and not torch.equal(w, q.out.weight)
