"""``Model(..., compile=True)``: the training step under ``torch.compile``.

After one eager warm-up step, which runs every first-call validation and creates every
lazily built parameter and the optimizer's state, two pieces of the step are compiled:

1. the loss evaluation (the direct executor's forward pass; AOTAutograd compiles its
   backward), for the model's training loss;
2. the optimizer step (Inductor fuses Adam's elementwise passes into one).

A loss with an ``IterativeLoss`` (the plan's ``series``) compiles the body of one step
instead of the whole evaluation: unrolled, a 50-step deep Markov model made one graph
50 steps long, which took minutes to compile cold.  The steps then run the one compiled
body in the interpreter's loop, each on a fresh context (:meth:`Context.for_step`, so
that the graph's inputs look the same at every step) whose support flags are handed
back to the evaluation's; the rest of the loss stays eager.  Under CUDA graphs, whose
outputs the next replay overwrites, the whole evaluation is compiled as before, and so it
is with ``Model(..., unroll_series=True)``: the trade is compile time against step time
(the 50-step DMM of ``comparisons/``, on a 2-core CPU: one step body compiles in 25-28 s
cold and steps at 0.79x the hand-written eager loop; unrolled, 136 s and 0.45x).

On a CPU, ``compile=True`` builds the loss with Inductor's C++ wrapper
(:func:`wrapper_options`): the Python that calls a compiled graph's kernels one by one is
then C++ (the VAE of ``comparisons/`` steps 3 % faster, at the same compile time).  A
series' step body keeps the Python wrapper, for its compile time; a loss that cannot be
built with the C++ wrapper is compiled without it.

A compiled piece returns no side output with a gradient (:func:`_no_side_gradients`):
what it leaves in the evaluation's context, the memo's parameters, the checked tensors and
the terms' values, would each be one more output of its graph, and every output that
requires grad costs a zero-filled tangent and its addition in the compiled backward.

The finiteness check between them (:func:`finite_check`) stays eager: compiled, it saves
nothing measurable and costs one more guard evaluation per step.  The host still reads
one number per step (once in N steps with ``Model(check_every=N)``, whose fused optimizer
skips a refused step on the device: :mod:`pixyz_pyro.model.deferred`), and a non-finite
step is refused exactly as in eager mode.

``compile`` may name a ``torch.compile`` mode instead of ``True``.  On a GPU,
``"reduce-overhead"`` replays each piece as a CUDA graph: one launch for all of its
kernels, which is what a small model's step is made of (see ``comparisons/``).  Every
step then starts with ``torch.compiler.cudagraph_mark_step_begin()``, and the loss value
is copied out of the graph's memory, which the next replay overwrites, so that the value
``train`` returns stays valid.  On a CPU the mode compiles as ``True`` does.

Compilation is lazy: it happens on the first compiled call of each piece.  If
``torch.compile`` is unavailable or a piece fails to compile (no C++ compiler, an
operation Dynamo cannot trace), that call is redone eagerly, ONE ``RuntimeWarning`` says
so, and training goes on in eager mode; an error that eager mode raises too is the
user's and propagates unchanged.

Random draws inside a compiled graph come from Inductor's own generator unless
``torch._inductor.config.fallback_random = True``, which makes compiled and eager steps
draw the same numbers for the same seed (the tests and ``comparisons/`` set it).
"""
import functools
import types
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

import torch

from ..dist.checks import split_flags, witnesses
from ..dist.context import Context
from ..errors import ModelError
from ..loss.evaluate import evaluate, run

if TYPE_CHECKING:
    from .model import Model

#: ``torch.compile``'s modes; the ones with CUDA graphs replay the step's kernels at once.
MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")

#: Notices torch gives while compiling, which under ``-W error`` would fail the compile: the
#: TF32 hint of Inductor, the empty CUDA graph of a piece without GPU work (seen on an
#: H200 with ``mode="reduce-overhead"``), and Dynamo reading ``.grad`` of a step's input
#: that an earlier step computed (a series' state, not a leaf).
_COMPILE_NOTES = ("TensorFloat32 tensor cores", "The CUDA Graph is empty",
                  "The .grad attribute of a Tensor that is not a leaf Tensor")

_WARNING = ("Model(compile={compile}): torch.compile failed on the {what} ({error}); training "
            "continues in eager mode, with the same results at eager speed")


#: Gradients of at least this many elements are summed one kernel each; the smaller ones
#: are concatenated and summed at once (one copy of small tensors is cheaper than a
#: kernel per tensor: 128 gradients of 4-6 elements, 0.19 ms instead of 0.31 ms).
SUMMED = 8192
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _sum(t: torch.Tensor) -> torch.Tensor:
    return t.sum(dtype=torch.float32) if t.dtype in _LOW_PRECISION else t.sum()


def finite_check(value: torch.Tensor, grads: List[torch.Tensor],
                 witnesses: Sequence[torch.Tensor] = ()) -> torch.Tensor:
    """:math:`\\ell + \\sum_i \\sum g_i + \\sum_j w_j`: finite exactly when the loss,
    every gradient and every support witness :math:`w_j`
    (:class:`~pixyz_pyro.dist.family.SupportCheck`) are finite; ``Model.train`` reads
    this one number per step.

    A sum of finite numbers is finite unless it passes ``3e38`` (squares, as in a norm,
    would overflow from ``2e19``); NaN and infinities propagate, ``inf - inf`` is NaN.
    Summing reads each element once, which is what the check costs on a CPU, where the
    read itself is free: at half the cost of ``_foreach_norm`` (3.3M parameters: 0.20 ms
    a step instead of 0.41).  Gradients below :data:`SUMMED` elements are summed
    together from one concatenation; half-precision sums accumulate in float32, and a
    complex gradient enters by its norm.

    Examples
    --------
    >>> finite_check(torch.tensor(2.0), [torch.ones(4)])
    tensor(6.)
    >>> finite_check(torch.tensor(2.0), [torch.ones(3), torch.tensor([float("nan")])])
    tensor(nan)
    >>> finite_check(torch.tensor(0.0), [torch.full((SUMMED,), 1e30)])  # no overflow
    tensor(8.1920e+33)
    """
    value = value.detach() if value.requires_grad else value
    if not grads and not witnesses:
        return value
    return finite_parts(value, grads, witnesses).sum()


def finite_parts(value: torch.Tensor, grads: List[torch.Tensor],
                 witnesses: Sequence[torch.Tensor] = (),
                 groups: Optional[Sequence[int]] = None) -> torch.Tensor:
    """The terms of :func:`finite_check` before their sum, as one vector: the loss, one
    sum per gradient of at least :data:`SUMMED` elements (or complex), one sum of the
    smaller ones (one per group, with ``groups``: a group number per gradient), then the
    witnesses (:func:`part_owners` says which gradients are in which entry).
    ``check_every`` keeps it, to name the gradients of a refused step after they are
    gone, with a group per distribution.

    >>> finite_parts(torch.tensor(1.0), [torch.ones(2), torch.ones(SUMMED)])
    tensor([1.0000e+00, 8.1920e+03, 2.0000e+00])
    >>> finite_parts(torch.tensor(0.0), [torch.ones(2), torch.ones(3)], groups=[0, 1])
    tensor([0., 2., 3.])
    """
    value = value.detach() if value.requires_grad else value
    parts = [value]
    small: Dict[int, List[torch.Tensor]] = {}
    for i, g in enumerate(grads):
        if g.is_complex():
            parts.extend(torch._foreach_norm([g]))  # real, and finite iff g is
        elif g.numel() < SUMMED:
            small.setdefault(0 if groups is None else groups[i], []).append(g.reshape(-1))
        else:
            parts.append(_sum(g))
    for ts in small.values():
        parts.append(_sum(torch.cat(ts)) if len(ts) > 1 else _sum(ts[0]))
    parts.extend(witnesses)
    return torch.stack(parts)


def part_owners(tensors: Sequence[torch.Tensor], groups: Optional[Sequence[int]] = None
                ) -> List[List[int]]:
    """For gradients shaped as ``tensors`` (and ``groups``, as :func:`finite_parts` took
    them), the indices of the gradients summed into each gradient entry of
    :func:`finite_parts` (entries ``1, 2, ...``), in its order.

    >>> part_owners([torch.ones(2), torch.ones(SUMMED), torch.ones(3)])
    [[1], [0, 2]]
    >>> part_owners([torch.ones(2), torch.ones(SUMMED), torch.ones(3)], groups=[0, 0, 1])
    [[1], [0], [2]]
    """
    alone: List[List[int]] = []
    small: Dict[int, List[int]] = {}
    for i, t in enumerate(tensors):
        if t.is_complex() or t.numel() >= SUMMED:
            alone.append([i])
        else:
            small.setdefault(0 if groups is None else groups[i], []).append(i)
    return alone + list(small.values())


def _dispatched(node: Any) -> None:
    """Look up the interpreter's handler of every node type of the loss once, eagerly.

    Dynamo guards the length of ``functools.singledispatch``'s cache of handlers that it
    traced through; a series' step plan bypasses the interpreter, so the eager warm-up
    step leaves the step body's node types out of that cache, and the cache would grow
    during the first compiled step and compile the step body once more (a third of the
    deep Markov model's cold compile)."""
    evaluate.dispatch(type(node))
    for child in node.children:
        _dispatched(child)


def _evaluated(loss: Any, values: Dict[str, object], ctx: Context
               ) -> Tuple[object, Dict[str, object]]:
    """``run(loss, values, ctx)`` with the support witnesses of its strict and lenient
    flags left in ``ctx.witnessed``: compiled as one piece, each witness's reduction fuses with the
    kernel that produces the checked tensor, instead of reading it again after backward."""
    value, _ = run(loss, values, ctx)
    strict, lenient = split_flags(ctx.flags)
    ctx.witnessed = witnesses(strict), witnesses(lenient)
    _no_side_gradients(ctx)
    return value, {}  # the draws are not the step's business (Model reads the value)


def _stepped(step_loss: Any, state: Dict[str, object], ctx: Context
             ) -> Tuple[object, Dict[str, object]]:
    """One step of a series, ``run(step_loss, state, ctx)``, without side gradients (see
    :func:`_no_side_gradients`); its draws are the next step's inputs."""
    out = run(step_loss, state, ctx)
    _no_side_gradients(ctx)
    return out


def _no_side_gradients(ctx: Context) -> None:
    """Leave nothing in ``ctx`` that a compiled piece would return with a gradient.

    Every tensor a compiled function leaves behind is one more output of its graph, and an
    output that requires grad gets a tangent in the compiled backward: a zero-filled
    buffer of its shape at every backward and an addition of it into the gradient (a
    batch of images' probabilities, flagged for their support check, cost a 128 x 784
    fill and add per step).  The memo (every factor's parameters) and the shared values
    are dropped (:meth:`Context.release`, which ``Model`` calls after the forward anyway);
    the checked tensors and the terms' values, which only a refused step's message reads,
    are kept as copies outside autograd.  A ``detach()`` alone would not do: an output
    that is a view of an intermediate makes AOTAutograd return the intermediate itself.
    Each container is changed in place: Dynamo replays the final contents of the
    containers that existed before the call, even ones no longer referenced."""
    ctx.release()
    tensors = ctx.flags.tensors
    tensors[:] = [t.detach().clone() if t.requires_grad else t for t in tensors]
    terms = ctx.terms
    if terms:
        for k, v in terms.items():
            if isinstance(v, torch.Tensor) and v.requires_grad:
                terms[k] = v.detach().clone()


def _compile_label(mode: Optional[str]) -> str:
    """``compile=...`` as the user wrote it, for messages."""
    return "True" if mode is None else repr(mode)


def own_code(fn: Callable, what: str) -> Callable:
    """``fn`` behind a function with a code object of its own.

    Dynamo keeps a code object's compiled graphs with that code object, at most
    ``torch._dynamo.config.recompile_limit`` (8) of them, dead models' included, and runs
    it eagerly after that, silently.  Every model's loss runs ``evaluate.run``, so compiling
    it directly let the ninth model of a process compute its loss at eager speed.  A
    wrapper with its own code object gives each model its own cache, which goes away with
    the model.  (Torch's optimizers break the graph inside ``step`` on purpose, and the
    frames after the break are torch's, shared by every optimizer of a class: from the
    ninth compiled optimizer of a process on, those run eagerly; that limit is torch's.)

    >>> f, g = own_code(abs, "loss"), own_code(abs, "loss")
    >>> f(-2), f.__code__ is g.__code__
    (2, False)
    """
    def call(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    code = call.__code__.replace(co_name=f"{what.replace(' ', '_')}_of_model_{id(call):x}")
    return types.FunctionType(code, call.__globals__, code.co_name, None, call.__closure__)


#: How many compiled versions a code object may keep while a piece compiles (see
#: :func:`_room_for_models`).
MODELS_PER_PROCESS = 1024


def _room_for_models() -> Any:
    """Dynamo's per-code-object limit on compiled versions, raised while a piece compiles.

    torch's optimizers break the graph inside ``step`` on purpose (``_use_grad``), so
    their ``step`` frames, torch's code shared by every optimizer of a class, compile
    once per optimizer object and keep each version, dead ones included.  At the default
    limit of 8 the ninth model of a process would step eagerly without a word.  The limit
    is read when Dynamo compiles, i.e. on a piece's first compiled call, the one this
    context covers; nothing is changed on the hot path.
    """
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    return config.patch(**{name: max(getattr(config, name), MODELS_PER_PROCESS)})


class CompiledStep:
    """The compiled pieces of one model's training step, with the eager fallback.

    Parameters
    ----------
    model : Model
        Its ``loss_cls`` and ``optimizer`` are compiled.
    compiler : callable
        ``torch.compile`` (a parameter so that tests can make it fail).
    mode : str, optional
        ``torch.compile``'s ``mode`` (one of :data:`MODES`); ``None`` for its default.
    unroll : bool
        Compile an ``IterativeLoss`` unrolled over its steps, as one graph, instead of one
        step body reused at every step.
    """

    def __init__(self, model: "Model", compiler: Optional[Callable[..., Any]] = None,
                 mode: Optional[str] = None, unroll: bool = False) -> None:
        compiler = compiler or torch.compile
        if mode is not None:
            compiler = functools.partial(compiler, mode=mode)
        self._compile = compiler
        self.mode = mode
        self.cudagraphs = mode in CUDAGRAPH_MODES
        loss, optimizer = model._plan.loss, model.optimizer
        self._loss = loss
        _dispatched(loss)
        #: Compile the step body of the series, not the unrolled evaluation.
        self.per_step = bool(model._plan.series) and not self.cudagraphs and not unroll
        self._eager: Dict[str, Callable[..., Any]] = {
            "loss": functools.partial(_evaluated, loss), "optimizer step": optimizer.step}
        if self.per_step:
            self._eager = {"series step": _stepped, "optimizer step": optimizer.step}
        options = wrapper_options(mode, model._params)
        #: The pieces compiled with Inductor's C++ wrapper (see :func:`wrapper_options`),
        #: until one fails to compile so and is compiled without it.
        self._wrapped: Set[str] = {"loss"} if options and "loss" in self._eager else set()
        self._compiled = {k: self._build(k, options if k in self._wrapped else None)
                          for k in self._eager}
        self._warm: Set[str] = set()
        self._marked = False  # cudagraph_mark_step_begin called once already
        self.failed: Optional[str] = None

    def _call(self, what: str, *args: Any) -> Any:
        if self.failed is not None:
            return self._eager[what](*args)
        if what in self._warm:
            return self._compiled[what](*args)
        with warnings.catch_warnings():  # torch's own notes while compiling
            warnings.simplefilter("ignore", DeprecationWarning)
            for note in _COMPILE_NOTES:
                warnings.filterwarnings("ignore", message=note, category=UserWarning)
            try:
                with _room_for_models():
                    out = self._first_call(what, args)
            except Exception as error:  # noqa: BLE001 - compilation never fails training
                try:
                    out = self._eager[what](*args)
                except Exception as user_error:  # noqa: BLE001 - eager fails too: the user's
                    raise user_error from None
                self._fail(what, error)
                return out
        self._warm.add(what)
        return out

    def _first_call(self, what: str, args: Tuple) -> Any:
        """The first compiled call of a piece; one compiled with the C++ wrapper that fails
        is compiled again without it (an older torch, a wrapper that cannot build), so
        that it fails over to eager mode only if plain Inductor fails too."""
        if what not in self._wrapped:
            return self._compiled[what](*args)
        try:
            return self._compiled[what](*args)
        except Exception:  # noqa: BLE001 - compiled again below, and that error is reported
            self._wrapped.discard(what)
            self._compiled[what] = self._build(what)
            return self._compiled[what](*args)

    def _build(self, what: str, options: Optional[Dict[str, Any]] = None
               ) -> Callable[..., Any]:
        """``torch.compile`` of one piece, with ``options`` when given: the optimizer step
        as it is (a wrapper would be one more frame, and one more cache lookup per step,
        before the graph break at the top of torch's step), the others with a code object
        of their own (see :func:`own_code`)."""
        f = self._eager[what]
        with warnings.catch_warnings():  # torch's own deprecation notes on first import
            warnings.simplefilter("ignore", DeprecationWarning)
            if what == "optimizer step":
                return self._compile(f)
            code = own_code(f, what)
            return self._compile(code, options=options) if options else self._compile(code)

    def _fail(self, what: str, error: Exception) -> None:
        self.failed = what
        message = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        warnings.warn(_WARNING.format(compile=_compile_label(self.mode), what=what,
                                      error=message[:300]), RuntimeWarning, stacklevel=2)

    def run(self, values: Dict[str, object], ctx: Context) -> Tuple[object, Dict[str, object]]:
        """The loss on ``values``: ``(value, new samples)``, as ``evaluate.run``."""
        if self.per_step:
            ctx.step_runner = self._series_step
            return run(self._loss, values, ctx)
        ctx.traced = self.failed is None  # memoise by identity, not by id (Context.recall)
        if not self.cudagraphs or self.failed is not None:
            return self._call("loss", values, ctx)
        if self._marked:
            torch.compiler.cudagraph_mark_step_begin()
        else:
            with warnings.catch_warnings():  # the first call imports torch's CUDA-graph trees
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.compiler.cudagraph_mark_step_begin()
            self._marked = True
        value, samples = self._call("loss", values, ctx)
        return value.clone(), samples  # the graph's own output is overwritten next replay

    def _series_step(self, step_loss: Any, state: Dict[str, object],
                     ctx: Context) -> Tuple[object, Dict[str, object]]:
        """One step of a series through the compiled step body, on a fresh context."""
        sub = ctx.for_step(traced=self.failed is None)
        with warnings.catch_warnings():  # a later step's state makes Dynamo compile again
            warnings.filterwarnings("ignore", message=_COMPILE_NOTES[2], category=UserWarning)
            out = self._call("series step", step_loss, state, sub)
        ctx.flags.extend(sub.flags)
        return out

    def check(self, value: torch.Tensor, grads: List[torch.Tensor],
              witnesses: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        """:func:`finite_check`, eagerly (see the module docstring)."""
        return finite_check(value, grads, witnesses)

    def step(self) -> None:
        self._call("optimizer step")


def wrapper_options(mode: Optional[str], params: Sequence[torch.Tensor]
                    ) -> Optional[Dict[str, Any]]:
    """``torch.compile``'s ``options`` for the loss: ``{"cpp_wrapper": True}`` for
    ``compile=True`` on a CPU, else ``None``.

    Inductor's default wrapper is Python: each call of a compiled graph runs a Python
    function that allocates every buffer and calls every kernel.  The loss's graph holds
    the support witnesses beside the model's kernels, so that Python is a measurable part
    of the step: with the C++ wrapper, measured interleaved in one process on one CPU
    thread against the hand-written eager step, Table 1's VAE steps at 0.708x instead of
    0.732x (z=10, h=400), and compiles as fast (21-25 s cold either way); the
    hand-written compiled VAE gains nothing from it (0.649x and 0.646x).

    A series' step body keeps the Python wrapper: called at every time step, it gains
    the most (the DMM of ``comparisons/`` at 0.685x of its hand loop instead of 0.791x),
    but its cold compile takes 10 s longer (37-45 s against 27-34 s on a 2-core VM),
    against the 30 s that a first compile of it should stay under.  Setting
    ``torch._inductor.config.cpp_wrapper = True`` makes that trade for every compiled
    piece.  The optimizer's step, one fused kernel, keeps the default too (0.771x against
    0.791x for the DMM).  Not for a ``mode`` (``torch.compile`` takes a mode or options,
    not both) nor on a GPU, where CUDA graphs are the tool for launch overhead.  A loss
    that fails to compile with it is compiled without it
    (:meth:`CompiledStep._first_call`).

    >>> wrapper_options(None, [torch.zeros(2)]), wrapper_options("reduce-overhead", [])
    ({'cpp_wrapper': True}, None)
    """
    if mode is not None or not all(p.device.type == "cpu" for p in params):
        return None
    return {"cpp_wrapper": True}


def compile_mode(compile: Union[bool, str]) -> Optional[str]:
    """The ``torch.compile`` mode that ``Model(compile=...)`` asks for (``None``: its
    default), checked before anything is built.

    >>> compile_mode(True), compile_mode("reduce-overhead")
    (None, 'reduce-overhead')
    """
    if compile is None or isinstance(compile, bool):  # None: off, as False
        return None
    if compile not in MODES:
        raise ModelError(f"Model(compile={compile!r}): compile is True, False or one of "
                         f"torch.compile's modes {list(MODES)}")
    return compile


def compile_step(model: "Model", compiler: Optional[Callable] = None,
                 mode: Optional[str] = None, unroll: bool = False) -> Optional[CompiledStep]:
    """A :class:`CompiledStep` for ``model``, or ``None`` after ONE warning if
    ``torch.compile`` itself is unavailable."""
    try:
        return CompiledStep(model, compiler, mode, unroll)
    except Exception as error:  # noqa: BLE001 - compilation never fails training
        warnings.warn(_WARNING.format(compile=_compile_label(mode), what="training step",
                                      error=f"{type(error).__name__}: {error}"),
                      RuntimeWarning, stacklevel=3)
        return None
