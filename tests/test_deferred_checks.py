"""``Model(check_every=N)``: the step guard's verdict stays on the device, a refused step
is skipped there by the fused optimizer's ``found_inf``, and the pending verdicts are read
once, at the start of the N-th call.  Every test compares with ``check_every=1`` on the
same batches and seeds: a refused step must change nothing, bit for bit, and be reported
as the eager guard reports it."""
import contextlib
import re
import traceback
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import pixyz_pyro
from pixyz_pyro.dist import Bernoulli, Deterministic, Normal
from pixyz_pyro.dist.validation import SupportWarning
from pixyz_pyro.errors import ModelError, NonFiniteError, SupportError
from pixyz_pyro.loss import Expectation, KullbackLeibler, LogProb
from pixyz_pyro.model import GAN, Model
from pixyz_pyro.model.compile import SUMMED, finite_check, finite_parts, part_owners

X, Z, B = 6, 2, 8


class Q(Normal):
    def __init__(self, batchnorm=False):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.fc = nn.Linear(X, 2 * Z)
        self.bn = nn.BatchNorm1d(X) if batchnorm else nn.Identity()

    def forward(self, x):
        loc, s = self.fc(self.bn(x)).chunk(2, -1)
        return {"loc": loc, "scale": F.softplus(s) + 0.1}


class P(Bernoulli):
    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.fc = nn.Linear(Z, X)

    def forward(self, z):
        return {"probs": torch.sigmoid(self.fc(z))}


def make(batchnorm=False, fused=True, **kwargs):
    torch.manual_seed(0)
    q, p = Q(batchnorm), P()
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[Z], name="p_{prior}")
    loss = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean()
    return Model(loss, distributions=[q, p],
                 optimizer_params={"lr": 0.01, "fused": fused}, **kwargs)


def batches(n=8, bad=(), value=float("nan")):
    """``n`` binary batches; those numbered in ``bad`` have ``value`` in one entry."""
    g = torch.Generator().manual_seed(1)
    xs = [(torch.rand(B, X, generator=g) > 0.5).float() for _ in range(n)]
    for i in (bad,) if isinstance(bad, int) else bad:
        xs[i] = xs[i].clone()
        xs[i][0, 0] = value
    return xs


def train(model, xs, catch=()):
    """One call per batch, each with its own seed; errors of the types ``catch`` are
    collected (with the call's index) instead of raised."""
    errors = []
    for i, x in enumerate(xs):
        torch.manual_seed(100 + i)
        try:
            model.train({"x": x})
        except catch as e:
            errors.append((i, e))
    return errors


def state(model):
    """Every parameter, buffer and optimizer-state tensor of ``model``."""
    out = [t.detach().clone() for d in model.distributions for t in d.state_dict().values()]
    for s in model.optimizer.state.values():
        out += [v.clone() for v in s.values() if isinstance(v, torch.Tensor)]
    return out


def same(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


@contextlib.contextmanager
def host_reads():
    """The host reads of tensors made inside the block (``item``, ``tolist``, ``bool``,
    ``float``, ``int``, ``numpy``), each with the line that made it."""
    names = ["item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy"]
    original = {n: getattr(torch.Tensor, n) for n in names}
    reads = []

    def counted(name):
        def read(self, *args, **kwargs):
            reads.append((name, traceback.format_stack(limit=3)[0].strip()))
            return original[name](self, *args, **kwargs)
        return read
    for n in names:
        setattr(torch.Tensor, n, counted(n))
    try:
        yield reads
    finally:
        for n in names:
            setattr(torch.Tensor, n, original[n])


def test_a_refused_step_is_skipped_on_the_device_as_the_eager_guard_skips_it():
    deferred = make(check_every=4, skip_nonfinite=True)
    eager = make(skip_nonfinite=True)
    xs = batches(bad=(3, 6))
    train(deferred, xs)
    train(eager, xs)
    assert deferred.skipped_steps == 1  # read at the start of call 5; 5-7 are pending
    deferred.sync()
    assert (deferred.step_count, deferred.skipped_steps) == (6, 2)
    assert (eager.step_count, eager.skipped_steps) == (6, 2)
    assert same(state(deferred), state(eager))  # parameters and Adam's state, bit for bit


def test_a_refused_step_is_raised_at_the_next_read_before_that_call_changes_anything():
    model = make(check_every=4)
    xs = batches(bad=3)
    train(model, xs[:5])  # the first step reads; steps 1-4 are pending
    before = state(model)
    torch.manual_seed(105)
    with pytest.raises(NonFiniteError) as info:
        model.train({"x": xs[5]})
    text = str(info.value)
    assert text.startswith("non-finite step 3: the loss mean")
    for part in ("Non-finite terms: D_{KL}", "Non-finite gradients: q(z|x) (fc.weight, "
                 "fc.bias)", "Inputs with NaN or inf: ['x']", "(check_every=4: the step "
                 "after 3 accepted steps was skipped on the device and changed nothing"):
        assert part in text
    assert same(before, state(model))  # the raising call changed nothing
    assert model.step_count == 4  # steps 0, 1, 2 and 4
    eager = make()
    errors = train(eager, xs[:5], catch=NonFiniteError)
    assert [i for i, _ in errors] == [3]
    assert same(state(eager), state(model))
    torch.manual_seed(105)
    assert torch.isfinite(model.train({"x": xs[5]}))  # reported once; training goes on


def test_the_steps_between_reads_read_nothing_from_the_device():
    model = make(check_every=4)
    xs = batches()
    train(model, xs[:1])
    with host_reads() as reads:
        train(model, xs[1:5])
    assert reads == []
    with host_reads() as reads:
        model.train({"x": xs[5]})
    assert [name for name, _ in reads] == ["tolist"]  # one read of four verdicts
    eager = make()
    train(eager, xs[:1])
    with host_reads() as reads:
        train(eager, xs[1:5])
    assert len(reads) == 4  # check_every=1: one read per step


def test_a_value_outside_its_support_is_a_support_error_at_the_read():
    xs = batches(bad=2, value=3.0)
    with pixyz_pyro.validation("strict"):
        model = make(check_every=4)
        errors = train(model, xs[:6], catch=SupportError)
        eager = make()
        eager_errors = train(eager, xs[:6], catch=SupportError)
    assert [i for i, _ in errors] == [5] and [i for i, _ in eager_errors] == [2]
    text = str(errors[0][1])
    assert text.startswith(str(eager_errors[0][1]))  # the eager message, then where
    assert 'p(x|z): "x"' in text and "(check_every=4: the step after 2 accepted" in text
    assert model.step_count == 4  # the reading call ran nothing: once more
    with pixyz_pyro.validation("strict"):
        torch.manual_seed(105)
        model.train({"x": xs[5]})
    assert model.step_count == eager.step_count == 5
    assert same(state(model), state(eager))


def test_a_lenient_support_check_warns_at_the_read_and_the_step_is_applied():
    xs = batches(bad=2, value=3.0)
    model, eager = make(check_every=4), make()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        train(model, xs[:5])
        assert not any(issubclass(w.category, SupportWarning) for w in seen)
        model.sync()
    assert any(issubclass(w.category, SupportWarning) and 'p(x|z): "x"' in str(w.message)
               for w in seen)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SupportWarning)
        train(eager, xs[:5])
    assert model.step_count == eager.step_count == 5
    assert same(state(model), state(eager))


def test_running_statistics_of_a_refused_step_are_put_back_on_the_device():
    deferred = make(batchnorm=True, check_every=3, skip_nonfinite=True)
    eager = make(batchnorm=True, skip_nonfinite=True)
    xs = batches(bad=2)
    train(deferred, xs)
    train(eager, xs)
    deferred.sync()
    bn = deferred.distributions[0].bn
    assert torch.isfinite(bn.running_mean).all()
    assert int(bn.num_batches_tracked) == 7
    assert same(state(deferred), state(eager))


def test_save_and_fit_read_the_pending_steps(tmp_path):
    model = make(check_every=8, skip_nonfinite=True)
    xs = batches(bad=3)
    train(model, xs[:6])
    path = str(tmp_path / "model.pt")
    model.save(path)
    assert model.skipped_steps == 1 and torch.load(path)["skipped_steps"] == 1
    fitted = make(check_every=8, skip_nonfinite=True)
    fitted.fit([{"x": x} for x in xs[:6]], epochs=1, progress=False)
    assert (fitted.step_count, fitted.skipped_steps) == (5, 1)


def test_load_reports_a_pending_refused_step_as_a_warning_and_loads(tmp_path):
    """The checkpoint replaces the state a pending refused step refers to: load reads the
    verdicts, warns with the report, and restores the checkpoint's counters."""
    model = make(check_every=8)
    xs = batches(bad=4)
    train(model, xs[:3])
    path = str(tmp_path / "model.pt")
    model.save(path)
    saved = state(model)
    train(model, xs[3:6])  # step 4 refused, not read yet
    with pytest.warns(RuntimeWarning, match=r"non-finite step 4: .* The checkpoint "):
        model.load(path)
    assert same(state(model), saved) and model.step_count == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.load(path)  # nothing pending: no warning


@pytest.mark.parametrize("kwargs,text", [
    ({"check_every": 0}, "check_every must be a positive int"),
    ({"check_every": True}, "check_every must be a positive int"),
    ({"check_every": 2.0}, "check_every must be a positive int"),
    ({"check_every": 4, "fused": False}, "needs an optimizer that takes torch.amp's "
                                         "found_inf: a fused one"),
])
def test_check_every_arguments_are_checked_at_construction(kwargs, text):
    with pytest.raises(ModelError, match=re.escape(text)):
        make(**kwargs)


@pytest.mark.slow
def test_a_compiled_model_skips_on_the_device_as_the_eager_guard_skips():
    """``compile=True`` with ``check_every``: the compiled loss hands over its strict and
    lenient witnesses apart, the compiled fused step honours ``found_inf``, and the state
    is the one a compiled ``check_every=1`` model reaches by skipping the same step."""
    xs = batches(bad=(4,))
    with torch._inductor.config.patch(fallback_random=True):
        deferred = make(check_every=3, skip_nonfinite=True, compile=True)
        eager = make(skip_nonfinite=True, compile=True)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", RuntimeWarning)
            train(deferred, xs)
            train(eager, xs)
    assert not [str(w.message) for w in seen if "compile" in str(w.message)]
    assert deferred._compiled.failed is None
    deferred.sync()
    assert (deferred.step_count, deferred.skipped_steps) == (7, 1) == \
        (eager.step_count, eager.skipped_steps)
    assert same(state(deferred), state(eager))


def test_under_cuda_graph_modes_a_pending_step_keeps_copies(monkeypatch):
    """``compile="reduce-overhead"``: a replay overwrites the graph's outputs, so a pending
    step keeps copies of its flagged tensors and term values, and its report is made from
    them (``torch.compile`` is the identity here: the copies, not the graphs, are tested)."""
    monkeypatch.setattr(torch, "compile", lambda f, **kw: f)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: None)
    xs = batches(bad=3, value=3.0)
    with pixyz_pyro.validation("strict"):
        model = make(check_every=4, compile="reduce-overhead")
        flagged = []
        run_loss = model._run_loss

        def spy(plan, values, ctx):
            out = run_loss(plan, values, ctx)
            flagged.append([f.tensor for f in ctx.flags])
            return out
        monkeypatch.setattr(model, "_run_loss", spy)
        train(model, xs[:5])
        assert model._compiled is not None and model._compiled.cudagraphs
        pending = model._deferred.pending
        assert len(pending) == 4
        for p, originals in zip(pending, flagged[1:]):
            kept = [f.tensor for f in [*p.strict_flags, *p.lenient_flags]]
            assert len(kept) == len(originals) > 0
            assert all(a is not b and a.data_ptr() != b.data_ptr() and torch.equal(a, b)
                       for a, b in zip(kept, originals))
        with pytest.raises(SupportError, match=r'p\(x\|z\): "x" must lie in \[0, 1\]; got '
                                               r"values in \[0, 3\].*check_every=4"):
            model.sync()
    assert model.step_count == 4


class Generator(Deterministic):
    def __init__(self):
        super().__init__(var=["y"], cond_var=["z"], name="g")
        self.net = nn.Linear(Z, X)
        self.poison = False  # NaN gradients into the generator's step

        def hook(grad):
            return grad * float("nan") if self.poison else grad
        self.net.weight.register_hook(hook)

    def forward(self, z):
        return {"y": self.net(z)}


class Discriminator(Deterministic):
    def __init__(self):
        super().__init__(var=["t"], cond_var=["y"], name="d")
        self.net = nn.Linear(X, 1)
        self.poison_next = False  # NaN gradients into the next backward pass only

        def hook(grad):
            if self.poison_next:
                self.poison_next = False
                return grad * float("nan")
            return grad
        self.net.weight.register_hook(hook)

    def forward(self, y):
        return {"t": torch.sigmoid(self.net(y))}


def make_gan(**kwargs):
    torch.manual_seed(0)
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[Z], name="p_z")
    gen = Generator()
    model = GAN((gen * prior).marginalize_var("z"), Discriminator(),
                optimizer_params={"lr": 0.01, "fused": True},
                d_optimizer_params={"lr": 0.01, "fused": True}, **kwargs)
    return model, gen


def gan_state(model):
    return state(model) + [t.detach().clone() for t in model.discriminator.state_dict().values()] \
        + [v.clone() for s in model.d_optimizer.state.values() for v in s.values()
           if isinstance(v, torch.Tensor)]


def train_gan(model, gen, ys, poison=()):
    for i, y in enumerate(ys):
        gen.poison = i in poison
        torch.manual_seed(100 + i)
        model.train({"y": y})
    gen.poison = False


def test_a_gan_generator_step_refused_puts_the_discriminator_back_as_the_eager_gan_does():
    ys = [torch.randn(B, X, generator=torch.Generator().manual_seed(i)) for i in range(7)]
    deferred, g1 = make_gan(check_every=3, skip_nonfinite=True)
    eager, g2 = make_gan(skip_nonfinite=True)
    train_gan(deferred, g1, ys, poison=(2,))
    train_gan(eager, g2, ys, poison=(2,))
    deferred.sync()
    assert (deferred.step_count, deferred.skipped_steps) == (6, 1) == \
        (eager.step_count, eager.skipped_steps)
    assert same(gan_state(deferred), gan_state(eager))  # both nets and both optimizers


@pytest.mark.parametrize("where", ["data", "gradient"])
def test_a_gan_discriminator_step_refused_changes_nothing_and_is_reported_as_such(where):
    """A NaN in the data (both sides' losses go NaN) or only in the discriminator step's
    gradients (the generator's own step is finite, and is refused with it)."""
    ys = [torch.randn(B, X, generator=torch.Generator().manual_seed(i)) for i in range(5)]
    if where == "data":
        ys[2] = ys[2].clone()
        ys[2][0, 0] = float("nan")
    model, gen = make_gan(check_every=4)
    train_gan(model, gen, ys[:2])
    before = gan_state(model)
    model.discriminator.poison_next = where == "gradient"
    train_gan(model, gen, ys[2:3])
    assert not model.discriminator.poison_next  # it hit the discriminator's step
    assert same(before, gan_state(model))  # neither step changed anything
    train_gan(model, gen, ys[3:5])
    value = "nan" if where == "data" else r"[0-9.]+"
    with pytest.raises(NonFiniteError, match=r"non-finite discriminator loss or gradient "
                                             rf"at step 2: .* is {value}; the "
                                             r"discriminator's and the generator's steps "
                                             r"were refused \(check_every=4"):
        model.sync()
    assert model.step_count == 4


def test_a_gan_with_check_every_needs_a_fused_discriminator_optimizer():
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[Z], name="p_z")
    with pytest.raises(ModelError, match=r"its optimizer must be a fused one as well, e\.g\. "
                                         r"d_optimizer_params="):
        GAN((Generator() * prior).marginalize_var("z"), Discriminator(), check_every=2,
            optimizer_params={"fused": True})


@pytest.mark.parametrize("seed", range(6))
def test_the_parts_name_the_gradient_that_is_not_finite(seed):
    """Property: for gradients of random sizes (some above SUMMED) with one NaN, in one
    group or in random groups, the one entry of ``finite_parts`` that is not finite is the
    one ``part_owners`` gives it; the parts sum to ``finite_check``."""
    g = torch.Generator().manual_seed(seed)
    sizes = [int(s) for s in torch.randint(1, 3 * SUMMED, (5,), generator=g)]
    grads = [torch.randn(n, generator=g) for n in sizes]
    value = torch.tensor(0.5)
    assert torch.equal(finite_parts(value, grads).sum(), finite_check(value, grads))
    k = int(torch.randint(0, 5, (), generator=g))
    grads[k][0] = float("nan")
    for groups in (None, [int(i) for i in torch.randint(0, 3, (5,), generator=g)]):
        parts = finite_parts(value, grads, groups=groups)
        owners = part_owners(grads, groups)
        assert len(parts) == 1 + len(owners)
        bad = [i for i, finite in enumerate(torch.isfinite(parts).tolist()) if not finite]
        assert len(bad) == 1 and k in owners[bad[0] - 1]
        if groups is not None:  # a group holds the small gradients of one group number
            assert all(len({groups[i] for i in o}) == 1 for o in owners)
