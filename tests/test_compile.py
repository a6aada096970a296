"""``Model(..., compile=True)``: compiled and eager steps agree; failures fall back.

Most tests pass a stand-in for ``torch.compile`` (the identity, or one that raises), so
that the wiring is checked in milliseconds; one slow test compiles for real.
"""
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from pixyz_pyro.dist import Bernoulli, Normal
from pixyz_pyro.errors import InputError, ModelError, NonFiniteError
from pixyz_pyro.loss import Expectation, IterativeLoss, KullbackLeibler, LogProb
from pixyz_pyro.loss.evaluate import run
from pixyz_pyro.loss.execute import prepare
from pixyz_pyro.loss.plan import compile_plan
from pixyz_pyro.model import Model
from pixyz_pyro.model import compile as compile_mod

X, Z, H = 6, 2, 8


class Q(Normal):
    def __init__(self, x_dim=X):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.fc = nn.Linear(x_dim, H)
        self.loc = nn.Linear(H, Z)
        self.scale = nn.Linear(H, Z)

    def forward(self, x):
        h = F.relu(self.fc(x))
        return {"loc": self.loc(h), "scale": F.softplus(self.scale(h))}


class P(Bernoulli):
    def __init__(self, x_dim=X):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.fc = nn.Linear(Z, x_dim)

    def forward(self, z):
        return {"probs": torch.sigmoid(self.fc(z))}


def make_model(compile) -> Model:
    torch.manual_seed(0)
    q, p = Q(), P()
    prior = Normal(loc=torch.tensor(0.0), scale=torch.tensor(1.0), var=["z"],
                   features_shape=[Z], name="p_{prior}")
    loss = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean()
    return Model(loss, distributions=[p, q], optimizer_params={"lr": 1e-2}, compile=compile)


def train(model: Model, steps: int = 4):
    data = torch.rand(steps, 5, X, generator=torch.Generator().manual_seed(1)).round()
    torch.manual_seed(2)
    return [model.train({"x": x}).item() for x in data]


def params(model: Model):
    return torch.cat([p.detach().flatten() for p in model._params])


def test_identity_compiler_matches_eager_exactly(monkeypatch):
    """With ``torch.compile`` replaced by the identity, the compiled code path (loss and
    optimizer step through CompiledStep) gives eager's numbers."""
    eager = make_model(False)
    expected = train(eager)
    monkeypatch.setattr(torch, "compile", lambda f, **kw: f)
    model = make_model(True)
    assert train(model) == expected
    assert model._compiled is not None and model._compiled.failed is None
    assert model._compiled._warm == {"loss", "optimizer step"}
    assert torch.equal(params(model), params(eager))


def test_the_optimizer_step_is_compiled_without_a_wrapper_frame(monkeypatch):
    """torch.compile receives the optimizer's own ``step`` (a wrapper would be one more
    Dynamo frame, and one more cache lookup per step, in front of the graph break at the
    top of torch's step) and the loss behind a code object of its own."""
    given = []
    monkeypatch.setattr(torch, "compile", lambda f, **kw: given.append(f) or f)
    model = make_model(True)
    train(model)
    assert model._compiled is not None and model._compiled.failed is None
    assert model.optimizer.step in given  # the bound method itself
    losses = [f for f in given if f != model.optimizer.step]
    assert len(losses) == 1 and losses[0].__code__.co_name.startswith("loss_of_model_")


def test_compile_unavailable_warns_once_and_trains_eagerly(monkeypatch):
    expected = train(make_model(False))

    def unavailable(f, **kw):
        raise RuntimeError("torch.compile is not supported here")

    monkeypatch.setattr(torch, "compile", unavailable)
    model = make_model(True)
    with pytest.warns(RuntimeWarning) as record:
        losses = train(model)
    assert losses == expected
    assert len(record) == 1
    assert str(record[0].message).startswith(
        "Model(compile=True): torch.compile failed on the training step (RuntimeError: "
        "torch.compile is not supported here); training continues in eager mode")
    assert model.compile is False and model._compiled is None


def test_compiled_call_failure_is_redone_eagerly_with_one_warning(monkeypatch):
    """A backend that fails when the compiled function first runs (no C++ compiler):
    that step is redone eagerly, one warning, and the rest of training is eager."""
    expected = train(make_model(False), steps=5)

    def failing_backend(f, **kw):
        def compiled(*args, **kwargs):
            raise RuntimeError("BackendCompilerFailed: no working C++ compiler")
        return compiled

    monkeypatch.setattr(torch, "compile", failing_backend)
    model = make_model(True)
    with pytest.warns(RuntimeWarning) as record:
        losses = train(model, steps=5)
    assert losses == expected
    assert len(record) == 1
    assert str(record[0].message) == (
        "Model(compile=True): torch.compile failed on the loss (RuntimeError: "
        "BackendCompilerFailed: no working C++ compiler); training continues in eager "
        "mode, with the same results at eager speed")
    assert model._compiled.failed == "loss"


def test_torchs_compile_notices_do_not_fail_a_strict_warnings_run(monkeypatch):
    """Under ``-W error`` (as here), the notices torch gives while compiling (the TF32 hint,
    an empty CUDA graph) are not taken for compile failures; other warnings still are."""
    expected = train(make_model(False))

    def noisy(note):  # a backend that gives `note` while it compiles: on its first call
        def backend(f, **kw):
            calls = []

            def compiled(*args, **kwargs):
                if not calls:
                    warnings.warn(note, UserWarning, stacklevel=2)
                calls.append(1)
                return f(*args, **kwargs)
            return compiled
        return backend

    for note in ("TensorFloat32 tensor cores for float32 matrix multiplication available "
                 "but not enabled.", "The CUDA Graph is empty. This usually means ..."):
        monkeypatch.setattr(torch, "compile", noisy(note))
        model = make_model(True)
        assert train(model) == expected
        assert model._compiled.failed is None

    monkeypatch.setattr(torch, "compile", noisy("something else"))  # -W error: an error
    with pytest.raises(InputError, match=r"Model\(compile='reduce-overhead'\): torch.compile "
                                         r"failed on the loss \(UserWarning: something else\)"):
        train(make_model("reduce-overhead"))


def test_users_error_is_not_taken_for_a_compile_failure(monkeypatch):
    """If eager mode fails too, the error is the user's: it propagates, no warning."""
    def failing_backend(f, **kw):
        def compiled(*args, **kwargs):
            raise RuntimeError("compiled code failed")
        return compiled

    monkeypatch.setattr(torch, "compile", failing_backend)
    model = make_model(True)
    model.train({"x": torch.rand(5, X).round()})  # the eager warm-up step
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(Exception) as info:
            model.train({"x": torch.rand(5, X + 1).round()})  # wrong feature size
    assert "compiled code failed" not in str(info.value)
    assert "mat1 and mat2 shapes cannot be multiplied" in str(info.value)
    assert model._compiled.failed is None


def test_nonfinite_step_is_refused_through_the_compiled_path(monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda f, **kw: f)
    model = make_model(True)
    model.train({"x": torch.rand(5, X).round()})
    before = params(model)
    bad = torch.rand(5, X).round()
    bad[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="non-finite step"):
        model.train({"x": bad})
    assert torch.equal(params(model), before)


def test_finite_check_propagates_nan_and_inf():
    value = torch.tensor(3.0)
    assert float(compile_mod.finite_check(value, [torch.full((4,), 2.0)])) == 3.0 + 8.0
    assert float(compile_mod.finite_check(value, [])) == 3.0
    assert not torch.isfinite(compile_mod.finite_check(torch.tensor(float("nan")),
                                                       [torch.ones(2)]))
    inf = compile_mod.finite_check(value, [torch.ones(2), torch.tensor([float("inf")])])
    assert not torch.isfinite(inf)


def test_finite_check_sums_large_gradients_without_overflow_of_squares():
    """Gradients enter by their sums (the large ones one by one, the small ones from one
    concatenation): 1e30 everywhere is finite (its squares would overflow float32), NaN,
    inf and inf - inf are not, a float16 gradient is summed in float32 (its sum passes
    float16's 65504), and a complex one enters by its norm."""
    n = compile_mod.SUMMED
    zero = torch.tensor(0.0)
    big = torch.full((n,), 1e30)
    assert torch.isfinite(compile_mod.finite_check(zero, [big]))
    assert float(compile_mod.finite_check(zero, [torch.ones(n), torch.ones(3),
                                                 torch.full((2, 2), -1.0)])) == n + 3 - 4
    for small in ([torch.ones(3), torch.tensor([float("nan")])], [torch.tensor([1e30] * 4)]):
        assert bool(torch.isfinite(compile_mod.finite_check(zero, small))) == \
            bool(torch.isfinite(torch.cat(small)).all())
    for bad in (float("nan"), float("inf")):
        g = torch.ones(n)
        g[-1] = bad
        assert not torch.isfinite(compile_mod.finite_check(zero, [g]))
    both = torch.ones(n)
    both[0], both[1] = float("inf"), float("-inf")
    assert not torch.isfinite(compile_mod.finite_check(zero, [both]))
    half = torch.full((n,), 100.0, dtype=torch.float16)
    assert float(compile_mod.finite_check(zero, [half])) == 100.0 * n
    assert float(compile_mod.finite_check(zero, [half[:4], half[:4]])) == 800.0
    assert float(compile_mod.finite_check(zero, [torch.tensor([3j + 4])])) == 5.0
    assert not torch.isfinite(compile_mod.finite_check(zero, [torch.tensor([complex("nan")])]))


def test_a_compiled_loss_computes_its_support_witnesses_and_still_refuses(monkeypatch):
    """The compiled (non-series) loss leaves the witnesses of its support flags in the
    context, computed with it; a warm step whose data leave [0, 1] is then refused in
    the strict policy with the SupportError, as a first step would be, and changes
    nothing."""
    from pixyz_pyro import validation
    from pixyz_pyro.errors import SupportError
    monkeypatch.setattr(torch, "compile", lambda f, **kw: f)
    model = make_model(True)
    train(model, steps=2)
    assert model._compiled is not None and model._compiled.failed is None
    seen = []
    run_loss = model._run_loss

    def spy(plan, values, ctx):
        out = run_loss(plan, values, ctx)
        seen.append(ctx.witnessed)
        return out

    monkeypatch.setattr(model, "_run_loss", spy)
    model.train({"x": torch.rand(5, X).round()})
    assert seen[-1] is not None and len(seen[-1]) > 0
    before = params(model).clone()
    bad = torch.rand(5, X).round()
    bad[2, 1] = 2.0
    with validation("strict"), pytest.raises(SupportError, match=r'"x" must lie in \[0, 1\]'):
        model.train({"x": bad})
    assert torch.equal(params(model), before)


def test_a_mode_goes_to_torch_compile_and_cuda_graph_steps_are_marked(monkeypatch):
    """``compile="reduce-overhead"``: both pieces are compiled in that mode, every step
    marks a new CUDA-graph step, and the value returned is a copy (the graph's own output
    is overwritten by the next replay) with eager's numbers."""
    expected = train(make_model(False))
    modes, marks = [], []
    monkeypatch.setattr(torch, "compile", lambda f, mode=None: modes.append(mode) or f)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin",
                        lambda: marks.append(1))
    model = make_model("reduce-overhead")
    assert train(model, steps=4) == expected
    assert modes == ["reduce-overhead", "reduce-overhead"]
    assert len(marks) == 3  # the first step is the eager warm-up
    assert model._compiled.cudagraphs


@pytest.mark.parametrize("mode", ["fast", 1, "Reduce-Overhead"])
def test_an_unknown_compile_mode_is_refused_before_anything_is_built(mode):
    with pytest.raises(ModelError, match=r"compile=.*True, False or one of torch.compile's "
                                         r"modes \['default', 'reduce-overhead'"):
        make_model(mode)


def test_every_model_of_a_process_gets_its_loss_and_optimizer_compiled(monkeypatch):
    """Dynamo keeps at most 8 compiled versions per code object and then runs it eagerly,
    silently; the loss of the tenth model of a process still runs compiled, as each model
    compiles a function with a code object of its own, and so does its optimizer step:
    its frames inside torch (shared by every Adam) get room while they compile."""
    runs = []

    def counting_backend(gm, example_inputs):
        def forward(*args):
            runs.append(1)
            return gm.forward(*args)
        return forward

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda f, options=None, **kw: real_compile(
        f, backend=counting_backend, **kw))  # options are Inductor's
    x = torch.rand(5, X).round()
    for _ in range(10):
        model = make_model(True)
        for _ in range(3):  # eager warm-up, then compiled steps
            model.train({"x": x})
        before = len(runs)
        model.train({"x": x})
        assert len(runs) > before  # a compiled graph ran (the loss, at least)
        before = len(runs)
        model._compiled.step()
        assert len(runs) > before  # the optimizer step ran compiled graphs
        assert model._compiled.failed is None


class Q2(Normal):
    """:math:`q(z|x, z_{prev})`: two conditioning variables."""

    def __init__(self):
        super().__init__(var=["z"], cond_var=["x", "z_prev"], name="q")
        self.fc = nn.Linear(X + Z, 2 * Z)

    def forward(self, x, z_prev):
        loc, s = self.fc(torch.cat([x, z_prev], -1)).chunk(2, -1)
        return {"loc": loc, "scale": F.softplus(s) + 0.1}


def test_losses_trace_into_one_graph_without_breaks():
    """Dynamo traces a loss whose distributions have several conditioning variables, and
    an IterativeLoss over time steps (a deep Markov model's), into one graph each: a graph
    break made the compiled DMM step 2-3x slower than eager."""
    q, p = Q2(), P()
    trans = Normal(loc="z_prev", scale=1.0, var=["z"], cond_var=["z_prev"], name="p_t")
    kl = KullbackLeibler(q, trans).mean()
    dmm = IterativeLoss(KullbackLeibler(q, trans) - Expectation(q, LogProb(p)), max_iter=3,
                        series_var=["x"], update_value={"z": "z_prev"}).mean()
    x = torch.rand(3, 5, X).round()
    for loss, values in ((kl, {"x": x[0], "z_prev": torch.zeros(5, Z)}),
                         (dmm, {"x": x, "z_prev": torch.zeros(5, Z)})):
        plan = compile_plan(loss)
        values, ctx = prepare(plan, values, {}, "test")
        # what Model(compile=True) compiles: the evaluation, checks included (the flags'
        # one read happens outside, in the step)
        explained = torch._dynamo.explain(lambda v, loss=loss, ctx=ctx: run(loss, v, ctx))(
            values)
        assert explained.graph_break_count == 0, [b.reason for b in explained.break_reasons]
        assert explained.graph_count == 1


@pytest.mark.slow
@pytest.mark.parametrize("compile", [True, "reduce-overhead"])
def test_compiled_and_eager_give_the_same_losses(compile):
    """A real ``torch.compile`` (Inductor, drawing from eager's generator): the same
    losses and parameters as eager, to float rounding of the fused kernels (on a CPU,
    ``"reduce-overhead"`` has no CUDA graphs to replay and compiles as ``True``)."""
    eager = make_model(False)
    expected = train(eager)
    with torch._inductor.config.patch(fallback_random=True):
        model = make_model(compile)
        losses = train(model)
    assert model._compiled.failed is None
    assert model._compiled._warm == {"loss", "optimizer step"}
    # on a CPU, compile=True builds the loss with Inductor's C++ wrapper (not a fallback)
    assert model._compiled._wrapped == ({"loss"} if compile is True else set())
    assert losses == pytest.approx(expected, rel=1e-5)
    assert torch.allclose(params(model), params(eager), rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_a_series_step_body_compiled_with_the_cpp_wrapper_gives_eagers_losses():
    """A real compile of a series' step body with Inductor's C++ wrapper, which it gets
    when the user sets ``torch._inductor.config.cpp_wrapper`` (compile=True alone keeps
    the Python wrapper there, for the compile time): eager's losses."""
    expected = train_dmm(make_dmm(False))
    with torch._inductor.config.patch(fallback_random=True, cpp_wrapper=True):
        model = make_dmm(True)
        losses = train_dmm(model)
    assert model._compiled.per_step and model._compiled.failed is None
    assert model._compiled._wrapped == set()  # the global setting, not an option
    assert losses == pytest.approx(expected, rel=1e-5)


def _recording(monkeypatch, fails_with_options: bool = False):
    """A stand-in for ``torch.compile`` recording ``(what, options)`` of each call; with
    ``fails_with_options``, what it compiles with options raises when first called."""
    calls = []

    def compile(f, options=None, **kw):
        name = "optimizer step" if hasattr(f, "__self__") else f.__code__.co_name
        calls.append((name.split("_of_model_")[0], options))
        if options and fails_with_options:
            def fails(*args, **kwargs):
                raise RuntimeError("C++ wrapper: cannot build")
            return fails
        return f

    monkeypatch.setattr(torch, "compile", compile)
    return calls


def test_on_a_cpu_the_loss_is_compiled_with_the_cpp_wrapper_and_the_optimizer_without(
        monkeypatch):
    """compile=True on a CPU: the loss goes to torch.compile with
    ``options={"cpp_wrapper": True}``, the optimizer's step and a series' step body
    without options; a mode (which torch.compile does not take with options) goes
    without them."""
    calls = _recording(monkeypatch)
    train(make_model(True))
    assert calls == [("loss", {"cpp_wrapper": True}), ("optimizer step", None)]
    del calls[:]
    train_dmm(make_dmm(True), steps=2)
    assert calls == [("series_step", None), ("optimizer step", None)]
    modes = []
    monkeypatch.setattr(torch, "compile", lambda f, mode=None: modes.append(mode) or f)
    train(make_model("max-autotune-no-cudagraphs"))
    assert modes == ["max-autotune-no-cudagraphs"] * 2
    assert compile_mod.wrapper_options(None, [torch.zeros(1, device="meta")]) is None


def test_a_piece_that_fails_with_the_cpp_wrapper_is_compiled_without_it(monkeypatch):
    """A loss that fails to compile with the C++ wrapper is compiled again without it, on
    the same call: no warning, no eager fallback, eager's numbers."""
    expected = train(make_model(False))
    calls = _recording(monkeypatch, fails_with_options=True)
    model = make_model(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert train(model) == expected
    assert model._compiled.failed is None and model._compiled._wrapped == set()
    assert calls == [("loss", {"cpp_wrapper": True}), ("optimizer step", None),
                     ("loss", None)]


def make_dmm(compile, steps: int = 6) -> Model:
    """A deep Markov model: ``IterativeLoss`` over ``steps`` steps."""
    torch.manual_seed(0)
    q, p = Q2(), P()
    trans = Normal(loc="z_prev", scale=1.0, var=["z"], cond_var=["z_prev"], name="p_t")
    loss = IterativeLoss(KullbackLeibler(q, trans) - Expectation(q, LogProb(p)),
                         max_iter=steps, series_var=["x"], update_value={"z": "z_prev"})
    return Model(loss.mean(), distributions=[q, p], optimizer_params={"lr": 1e-2},
                 compile=compile)


def train_dmm(model: Model, steps: int = 4, x=None):
    g = torch.Generator().manual_seed(1)
    torch.manual_seed(2)
    out = []
    for _ in range(steps):
        xs = torch.rand(6, 5, X, generator=g).round() if x is None else x
        out.append(model.train({"x": xs, "z_prev": torch.zeros(5, Z)}).item())
    return out


def test_a_series_compiles_its_step_body_once(monkeypatch):
    """``compile=True`` on an ``IterativeLoss`` compiles the body of one step, not the
    unrolled steps: Dynamo makes the step's graph once (not one graph T steps long) and
    reuses it at every step and every training step, with eager's numbers."""
    graphs = []

    def counting_backend(gm, example_inputs):
        graphs.append(len(list(gm.graph.nodes)))
        return gm.forward

    expected = train_dmm(make_dmm(False))
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda f, options=None, **kw: real_compile(
        f, backend=counting_backend, **kw))  # options are Inductor's
    model = make_dmm(True)
    losses = train_dmm(model)
    assert model._compiled.per_step and model._compiled.failed is None
    assert model._compiled._warm == {"series step", "optimizer step"}
    assert losses == pytest.approx(expected, rel=1e-6)
    compiled = len(graphs)
    train_dmm(model, steps=2)
    assert len(graphs) == compiled  # nothing is compiled again
    # the step body at most twice: z_prev given at t = 0 (no gradient), drawn later (one);
    # a third time when the interpreter's handler cache grew under the first compiled step
    assert max(graphs.count(n) for n in graphs) <= 2, graphs


def test_a_compiled_series_step_still_checks_supports(monkeypatch):
    """The support flags of each compiled step reach the training step's one read: a warm
    step whose data leave [0, 1] at one time step is refused with the SupportError, in
    the strict policy, and changes nothing."""
    from pixyz_pyro import validation
    from pixyz_pyro.errors import SupportError
    monkeypatch.setattr(torch, "compile", lambda f, **kw: f)
    model = make_dmm(True)
    train_dmm(model, steps=2)
    before = params(model).clone()
    bad = torch.rand(6, 5, X).round()
    bad[3, 0, 0] = 2.0
    with validation("strict"), pytest.raises(SupportError, match=r'"x" must lie in \[0, 1\]'):
        model.train({"x": bad, "z_prev": torch.zeros(5, Z)})
    assert torch.equal(params(model), before)


def test_unroll_series_compiles_the_whole_evaluation(monkeypatch):
    """``unroll_series=True`` keeps the unrolled graph (one compiled evaluation of all the
    steps), with eager's numbers."""
    expected = train_dmm(make_dmm(False))
    monkeypatch.setattr(torch, "compile", lambda f, **kw: f)
    torch.manual_seed(0)
    model = make_dmm(True)
    model = Model(model.loss_cls, distributions=list(model.distributions),
                  optimizer_params={"lr": 1e-2}, compile=True, unroll_series=True)
    losses = train_dmm(model)
    assert not model._compiled.per_step
    assert model._compiled._warm == {"loss", "optimizer step"}
    assert losses == pytest.approx(expected, rel=1e-6)


def test_new_batches_of_images_do_not_compile_the_loss_again(monkeypatch):
    """A batch larger than ``GROUPED`` elements has its support witness reduced on its
    own; that must not key on the tensor's ``id``, which under Dynamo is a guard on the
    very batch: every new batch (a data loader's) would compile the loss again, and after
    eight the loss would run eagerly."""
    from pixyz_pyro.dist.checks import GROUPED
    features = GROUPED // 4 + 1  # a batch of 4 is past GROUPED elements
    compiled = []

    def counting_backend(gm, example_inputs):
        compiled.append(gm)
        return gm.forward

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda f, options=None, **kw: real_compile(
        f, backend=counting_backend, **kw))  # options are Inductor's
    torch.manual_seed(0)
    q, p = Q(features), P(features)
    prior = Normal(loc=torch.tensor(0.0), scale=torch.tensor(1.0), var=["z"],
                   features_shape=[Z], name="p_{prior}")
    model = Model((KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean(),
                  distributions=[p, q], compile=True)
    batches = [torch.rand(4, features).round() for _ in range(6)]  # a new tensor each step
    for x in batches[:3]:
        model.train({"x": x})
    settled = len(compiled)
    for x in batches[3:]:
        model.train({"x": x})
    assert len(compiled) == settled and model._compiled.failed is None


def _tangent_counting(monkeypatch):
    """``torch.compile`` through AOTAutograd without Inductor, recording how many tangents
    (gradients of outputs) each compiled backward takes."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    tangents = []

    def bw(gm, example_inputs):
        tangents.append(sum(1 for n in gm.graph.nodes
                            if n.op == "placeholder" and n.name.startswith("tangents")))
        return make_boxed_func(gm.forward)

    backend = aot_autograd(fw_compiler=lambda gm, example_inputs: make_boxed_func(gm.forward),
                           bw_compiler=bw)
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda f, options=None, **kw: real_compile(
        f, backend=backend, **kw))  # options are Inductor's
    return tangents


@pytest.mark.slow
def test_a_compiled_backward_takes_the_gradient_of_the_loss_alone(monkeypatch):
    """What a compiled piece leaves behind (the memo's parameters, the checked tensors,
    the terms' values, the draws) is not returned with a gradient: the loss's compiled
    backward takes one tangent, the loss's, and a series step's takes two, its value's
    and the draw the next step reads, so no zero-filled buffers are made and added in
    backward.  The numbers stay eager's."""
    expected = train(make_model(False))
    expected_dmm = train_dmm(make_dmm(False))
    tangents = _tangent_counting(monkeypatch)
    model = make_model(True)
    assert train(model) == pytest.approx(expected, rel=1e-6)
    assert model._compiled.failed is None and tangents == [1], tangents
    del tangents[:]
    dmm = make_dmm(True)
    assert train_dmm(dmm) == pytest.approx(expected_dmm, rel=1e-6)
    assert dmm._compiled.per_step and dmm._compiled.failed is None
    assert tangents and max(tangents) == 2, tangents


@pytest.mark.slow
def test_a_traced_step_still_names_what_refused_it(monkeypatch):
    """Through a real trace, a refused step still names the offending term (from the
    terms' values, kept as copies) and the value outside its support with its range (from
    the checked tensors' copies), and changes nothing."""
    from pixyz_pyro import validation
    from pixyz_pyro.errors import SupportError
    _tangent_counting(monkeypatch)
    model = make_model(True)
    train(model, steps=2)
    before = params(model).clone()
    bad = torch.rand(5, X).round()
    bad[2, 1] = 2.0
    with validation("strict"), pytest.raises(
            SupportError, match=r'"x" must lie in \[0, 1\]; got values in \[0, 2\]'):
        model.train({"x": bad})
    nan = torch.rand(5, X).round()
    nan[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match=r"Non-finite terms: D_\{KL\}.*Inputs with NaN"):
        model.train({"x": nan})
    assert torch.equal(params(model), before)
    assert model._compiled.failed is None
