"""``Model``: train and test a loss over a set of distributions.

One training step is

1. set gradients to ``None``;
2. evaluate the loss's plan through the executor's one entry point
   (:mod:`pixyz_pyro.loss.execute`; per-term values kept as references);
3. backward, optionally clip;
4. read the loss once (``.item()``, the only host sync), with the gradients' sums and
   the support checks folded in; if a value is outside its support, refuse the step with
   a SupportError; if the loss or a gradient is not finite, refuse it and name the term
   that went non-finite;
5. step the ONE optimizer that holds every parameter.

Bad input is refused before anything changes: inputs are checked by name and type before
the forward pass, and :class:`~pixyz_pyro.model.guard.StepGuard` puts back what a
failed or refused step changed in the forward pass (running statistics; everything on
the first step).
"""
import warnings
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..dist.checks import settle, split_flags, witnesses
from ..dist.context import Context
from ..dist.distribution import Distribution, DistributionList
from ..dist.naming import distinct_texts
from ..errors import (
    LossError,
    ModelError,
    NonFiniteError,
    SupportError,
    passes_through,
    wrap_error,
)
from ..loss.base import Loss
from ..loss.evaluate import run
from ..loss.execute import check_keywords, finish, pixyz_keywords, prepare
from ..loss.plan import Plan, check_gradients, compile_plan
from . import distributed as _dist
from .arguments import check_model_arguments
from .checkpoint import (
    FORMAT_VERSION,
    apply_checkpoint,
    atomic_save,
    check_compatible,
    extra_class_key,
    read_checkpoint,
    rng_state,
)
from .compile import (
    CompiledStep,
    compile_mode,
    compile_step,
    finite_check,
    finite_parts,
    part_owners,
)
from .deferred import DeferredChecks, PendingStep, check_check_every, copied, skipped_where
from .fit import History, fit
from .guard import StepGuard, deferred_interrupt, is_finite, nonfinite_error, nonfinite_grads
from .optim import OptimizerSpec, build_optimizer


def unique_parameters(modules: Iterable[nn.Module]) -> List[nn.Parameter]:
    seen, out = set(), []
    for m in modules:
        for p in m.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out


class Model:
    """Train ``loss`` over the parameters of ``distributions``.

    Parameters
    ----------
    loss : Loss
        A scalar loss (reduce with ``.mean()`` or ``.sum()``).
    test_loss : Loss, optional
        Loss for :meth:`test`; defaults to ``loss``.
    distributions : list of Distribution
        Whose parameters are trained (all go to ONE optimizer).
    optimizer : type or PyroOptim
        ``torch.optim.Adam`` (the default) or ``pyro.optim.Adam({"lr": ...})``.
    optimizer_params : dict
        Keyword arguments of a torch optimizer class.
    clip_grad_norm, clip_grad_value : float, optional
        Gradient clipping: positive thresholds, ``None`` (the default) for none.
    retain_graph : bool
        Passed to ``backward``.
    compile : bool or str
        Compile the loss and the optimizer step with ``torch.compile`` after a warm-up
        step; falls back to eager with one warning if compilation fails.  A string is
        ``torch.compile``'s ``mode``: ``"reduce-overhead"`` replays the step as CUDA
        graphs on a GPU (see :mod:`pixyz_pyro.model.compile`).
    skip_nonfinite : bool
        Skip (and count in ``skipped_steps``) steps whose loss or gradients are not
        finite, instead of raising :class:`~pixyz_pyro.errors.NonFiniteError`.
    distributed : bool, optional
        Data-parallel training on ``torch.distributed``: the distributions are wrapped in
        ``DistributedDataParallel`` and gradients are averaged over the ranks once per
        step (see :mod:`pixyz_pyro.model.distributed`).  ``None`` (the default) switches
        it on when a process group is initialised.  The wrapper is ``model.ddp`` (``None``
        when off), e.g. for ``model.ddp.register_comm_hook``.
    allow_unused : bool
        Keep listed distributions that take no part in ``loss`` (saved and loaded with
        the model, never trained).  By default such a distribution is an error, since it
        would silently not train (see :mod:`pixyz_pyro.model.arguments` for every check
        made at construction).
    rewrite : bool
        Train and test the rewritten losses (``loss.rewritten()``: analytic KLs where a
        closed form exists, no sampling where the body does not read the draw, constants
        out of expectations; :mod:`pixyz_pyro.loss.rewrite`).
    unroll_series : bool
        With ``compile``, compile an ``IterativeLoss`` unrolled over its steps as one graph
        (the fastest steps; compile time grows with the number of steps) instead of one
        step body reused at every step (the default; see :mod:`pixyz_pyro.model.compile`).
    check_every : int
        Read the step guard once every ``check_every`` steps instead of at every step: a
        refused step is skipped on the device and reported at the next read (the start
        of every ``check_every``-th call, :meth:`sync`, ``save`` or ``load``).  It needs a
        fused optimizer (``optimizer_params={"fused": True}``); see
        :mod:`pixyz_pyro.model.deferred`.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import LogProb
    >>> p = Normal(loc=torch.nn.Parameter(torch.zeros(1)), scale=1., var=["x"])
    >>> model = Model(-LogProb(p).mean(), distributions=[p],
    ...               optimizer_params={"lr": 0.1})
    >>> for _ in range(200):
    ...     _ = model.train({"x": torch.full((8, 1), 3.0)})
    >>> round(p.loc.detach().item(), 2)
    3.0
    """

    def __init__(self, loss: Loss, test_loss: Optional[Loss] = None,
                 distributions: Sequence[Distribution] = (),
                 optimizer: OptimizerSpec = torch.optim.Adam,
                 optimizer_params: Optional[Dict[str, Any]] = None,
                 clip_grad_norm: Optional[float] = None,
                 clip_grad_value: Optional[float] = None, retain_graph: bool = False,
                 compile: Union[bool, str] = False, skip_nonfinite: bool = False,
                 distributed: Optional[bool] = None, allow_unused: bool = False,
                 rewrite: bool = False, unroll_series: bool = False,
                 check_every: int = 1) -> None:
        if not isinstance(loss, Loss):
            raise LossError(f"Model needs a pixyz_pyro loss expression, got "
                            f"{type(loss).__name__}")
        check_model_arguments(loss, test_loss, distributions, optimizer, clip_grad_norm,
                              clip_grad_value, allow_unused)
        self._compile_mode = compile_mode(compile)
        self.unroll_series = unroll_series
        self.loss_cls = loss
        self.test_loss_cls = test_loss if test_loss is not None else loss
        self._plan = compile_plan(self.loss_cls, rewrite=rewrite)
        self._test_plan = compile_plan(self.test_loss_cls, rewrite=rewrite)
        dists = list(distributions) if distributions else loss.distributions()
        self.distributions = DistributionList(dists)
        params = unique_parameters(dists)
        if not params:
            names = [getattr(d, "prob_text", type(d).__name__) for d in dists]
            raise ModelError(f"no parameters to optimize: the distributions {names} have no "
                             f"trainable parameters (constants are buffers; wrap a trainable "
                             f"constant in nn.Parameter)")
        self.optimizer = build_optimizer(optimizer, params, optimizer_params)
        self.check_every = check_check_every(check_every, self.optimizer,
                                             type(self).__name__)
        self._deferred = DeferredChecks(self.check_every) if self.check_every > 1 else None
        self._params = params
        texts = distinct_texts(loss.distributions())  # as the loss prints them
        self._param_names = {f"{texts.get(id(d)) or d.prob_text}: {n}": p for d in dists
                             for n, p in d.named_parameters() if p.requires_grad}
        #: id(parameter) -> the number of the first listed distribution that holds it
        self._owner: Dict[int, int] = {}
        for i, d in enumerate(dists):
            for p in d.parameters():
                self._owner.setdefault(id(p), i)
        self._guard = StepGuard(self._guarded_modules(dists), self._plan.running)
        self.clip_norm = clip_grad_norm
        self.clip_value = clip_grad_value
        self.retain_graph = retain_graph
        self.skip_nonfinite = skip_nonfinite
        self.skipped_steps = 0
        self.step_count = 0
        self.compile = compile
        self._compiled: Optional[CompiledStep] = None
        self._in_step = False
        #: A preset's step taken with this one (a GAN's discriminator step): its verdict
        #: and loss, refused with it under check_every (see :meth:`_pending`).
        self._linked: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
        self._refused_value: Optional[torch.Tensor] = None
        self._last_value: Optional[torch.Tensor] = None
        self._modules = list(self.distributions.modules())
        self.ddp = _dist.data_parallel(self.distributions, distributed)
        self.distributed = self.ddp is not None

    # --- description --------------------------------------------------------------------
    def __str__(self) -> str:
        """Pixyz's summary: the distributions, the loss formula and the optimizer."""
        return (f"Distributions (for training):\n  "
                f"{', '.join(d.prob_text for d in self.distributions)}\n"
                f"Loss function:\n  {self.loss_cls.loss_text}\n"
                f"Optimizer:\n  " + repr(self.optimizer).replace("\n", "\n  "))

    def __repr__(self) -> str:
        """The summary, then each distribution with its network."""
        dists = "\n".join("  " + str(d).replace("\n", "\n  ") for d in self.distributions)
        return str(self) + "\n" + dists

    # --- one step -------------------------------------------------------------------------
    def _evaluate(self, plan: Plan, x_dict: Optional[Dict], kwargs: Dict
                  ) -> Tuple[Any, Context]:
        """The loss on ``x_dict`` through the executor's one entry point, with what the
        forward pass changes snapshotted; ``(value, ctx)``."""
        values, ctx = prepare(plan, x_dict, kwargs, f"{type(self).__name__}.train()",
                              record_terms=True)
        self._guard.snapshot()
        try:
            value, _ = self._run_loss(plan, values, ctx)
            if not isinstance(value, torch.Tensor) or value.dim() != 0:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value)
                raise LossError(f"the loss must be a scalar to train; {plan.loss.loss_text} "
                                f"has shape {shape}. Reduce it with .mean() or .sum()")
        except BaseException as e:
            self._guard.restore()
            if passes_through(e):
                raise
            settle(ctx.flags)  # a torch error caused by a value outside its support
            raise wrap_error(f"evaluating {plan.loss._short()}", e, values,
                             plan.input_var) from e
        self._guard.values = values
        ctx.release()  # the parameters in the memo are not held through backward
        return value, ctx

    def _run_loss(self, plan: Plan, values: Dict, ctx: Context) -> Tuple[object, Dict]:
        if self._compiled is not None and plan is self._plan:
            return self._compiled.run(values, ctx)
        return run(plan.loss, values, ctx)

    def _loss_fn(self, x_dict: Optional[Dict], kwargs: Dict) -> Tuple[Any, Context]:
        return self._evaluate(self._plan, x_dict, kwargs)

    def train(self, train_x_dict: Optional[Dict] = None, average_across_ranks: bool = False,
              **kwargs: Any) -> torch.Tensor:
        """One optimisation step on ``train_x_dict``; returns the loss (detached), averaged
        over the ranks (one more all-reduce) when ``average_across_ranks`` and distributed.
        ``batch_size=`` is read as ``batch_n=`` with a ``DeprecationWarning``."""
        kwargs = pixyz_keywords(kwargs, f"{type(self).__name__}.train()")
        check_keywords(self._plan, kwargs, f"{type(self).__name__}.train()", returns=False)
        check_gradients(self._plan)
        if self._deferred is not None and self._deferred.due():
            self.sync()  # the pending steps' verdicts, before this call changes anything
        if not all(m.training for m in self._modules):
            self.distributions.train()
        if self._in_step:
            raise ModelError(f"{type(self).__name__}.train() was called again while a step "
                             f"was running (from inside a network or a hook); nothing was "
                             f"changed by the inner call")
        self._in_step = True
        try:
            if self._step(train_x_dict, average_across_ranks, kwargs) is None:
                assert self._refused_value is not None  # set by the refusal
                return self._refused_value
        finally:
            self._in_step = False
        if self.compile and self._compiled is None:
            self._try_compile()
        assert self._last_value is not None  # set by the step
        return self._last_value

    def _step(self, x_dict: Optional[Dict], average_across_ranks: bool, kwargs: Dict
              ) -> Optional[torch.Tensor]:
        """The step as a transaction: everything up to the finiteness read is undone if
        anything raises (a KeyboardInterrupt too) or the step is refused; the commit --
        the optimizer's step and the counters -- runs with Ctrl-C deferred to its end.
        Returns ``None`` for a refused step."""
        self.optimizer.zero_grad(set_to_none=True)
        fn = self._loss_fn
        if self.ddp is not None:  # gradients are all-reduced inside backward
            value, ctx = self.ddp(fn, x_dict, kwargs)
        else:
            value, ctx = fn(x_dict, kwargs)
        pending = None
        try:
            value.backward(retain_graph=self.retain_graph)
            if self.clip_norm:
                nn.utils.clip_grad_norm_(self._params, self.clip_norm)
            if self.clip_value:
                nn.utils.clip_grad_value_(self._params, self.clip_value)
            if self._deferred is not None and not self._guard.first:  # no read
                if average_across_ranks and self.ddp is not None:
                    value = _dist.average_across_ranks(value.detach())
                pending = self._pending(value, ctx)
                self._guard.restore_where(pending.bad)
            else:
                grads = [p.grad for p in self._params if p.grad is not None]
                check = detached = value.detach()
                if average_across_ranks and self.ddp is not None:
                    check = value = detached = _dist.average_across_ranks(check)
                # the support checks, folded into the same read (a compiled loss computed
                # them)
                support = ctx.witnessed[0] + ctx.witnessed[1] if ctx.witnessed is not None \
                    else witnesses(ctx.flags)
                if grads or support:
                    check = self._compiled.check(check, grads, support) \
                        if self._compiled is not None else finite_check(check, grads, support)
                read = check.item()
                if not is_finite(read) and self._refuse(value, ctx):
                    self._refused_value = value.detach()
                    return None
                del support, grads
            # The evaluation's tensors (parameters, checked values) are not needed by the
            # commit: let them go before the optimizer allocates its temporaries.
            del ctx
        except BaseException:
            self._guard.restore()  # a no-op when _refuse restored it already
            self.optimizer.zero_grad(set_to_none=True)
            raise
        if pending is not None:
            return self._commit_pending(pending)
        with deferred_interrupt():
            self._guard.accept()
            if self._compiled is not None:
                self._compiled.step()
            else:
                self.optimizer.step()
            self.step_count += 1
        self._last_value = detached
        return detached

    def _pending(self, value: torch.Tensor, ctx: Context) -> PendingStep:
        """The step's verdict under ``check_every``, left on the device (see
        :mod:`pixyz_pyro.model.deferred`)."""
        params = tuple([p for p in self._params if p.grad is not None])
        detached = value.detach()
        strict, lenient = split_flags(ctx.flags)
        grads = [p.grad for p in params if p.grad is not None]  # every one of them
        groups = [self._owner[id(p)] for p in params]
        seen = ctx.witnessed if ctx.witnessed is not None else \
            (witnesses(strict), witnesses(lenient))  # a compiled loss computed them
        parts = finite_parts(detached, grads, seen[0], groups)
        bad = parts.sum().isfinite().logical_not()
        if self._linked is not None:  # refused with the step taken with it
            bad = bad | self._linked[0]
        mild = torch.stack(seen[1]).sum() if seen[1] else None
        terms = ctx.terms or {}
        if self._compiled is not None and self._compiled.cudagraphs:
            (strict, terms), (lenient, _) = copied(strict, terms), copied(lenient, {})
        return PendingStep(self.step_count, bad, mild, parts, params, groups, strict,
                           lenient, terms, self._guard.values, detached, self._linked)

    def _commit_pending(self, pending: PendingStep) -> torch.Tensor:
        """The commit of a step under ``check_every``: the optimizer skips on the device
        where the step is bad; the step waits to be read."""
        assert self._deferred is not None
        with deferred_interrupt():
            self._guard.accept()
            with skipped_where(self.optimizer, pending.bad):
                if self._compiled is not None:
                    self._compiled.step()
                else:
                    self.optimizer.step()
            self.step_count += 1
            self._deferred.add(pending)
        self._last_value = pending.value
        return pending.value

    def sync(self) -> None:
        """Read the verdicts of the steps that ``check_every`` left pending, in one host
        read, and report a refused one as ``check_every=1`` would have at that step; a
        no-op when none are pending (and always with ``check_every=1``).

        Refused steps changed nothing (they were skipped on the device) and leave
        ``step_count``; with ``skip_nonfinite`` a non-finite one is counted in
        ``skipped_steps``; otherwise the first is raised, a SupportError or a
        NonFiniteError, after the counts are brought up to date.  Lenient support checks
        warn here.
        """
        if self._deferred is None:
            return
        verdicts = self._deferred.take()
        refused = [(p, linked) for p, bad, _, linked in verdicts if bad]
        self.step_count -= len(refused)
        for p, bad, mild, _ in verdicts:
            if mild and not bad:
                settle(p.lenient_flags)  # warns
        for n, (p, linked) in enumerate(refused):
            step = p.step - n  # the refused steps before it were counted, then taken back
            note = (f"(check_every={self.check_every}: the step after {step} accepted "
                    f"steps was skipped on the device and changed nothing; the steps after "
                    f"it, up to this read, were applied")
            if linked:  # the step taken with it was refused first (a GAN's discriminator)
                if self.skip_nonfinite:
                    self.skipped_steps += 1
                    continue
                raise self._linked_error(p, step, note)
            try:
                settle(p.strict_flags)
            except SupportError as e:
                raise SupportError(f"{e} {note})") from None
            if self.skip_nonfinite:
                self.skipped_steps += 1
                continue
            raise nonfinite_error(p.value, self._terms(), p.terms, self._pending_grads(p),
                                  p.values, step, self.loss_cls.loss_text,
                                  refused=f"{note}; pass skip_nonfinite=True to skip such "
                                          f"steps).")

    def _linked_error(self, p: PendingStep, step: int, note: str) -> Exception:
        """The error of a pending step refused because the step taken with it was (a
        preset's; see :attr:`_linked`)."""
        return NonFiniteError(f"non-finite step {step}: the step taken with it was refused "
                              f"{note}).")

    def _pending_grads(self, p: PendingStep) -> Dict[str, List[str]]:
        """The non-finite gradients of a pending step, by distribution, from its
        :func:`~pixyz_pyro.model.compile.finite_parts` (the gradients themselves are
        gone); the small gradients of one distribution are summed together, and a
        non-finite sum names them all."""
        names = {id(t): n for n, t in self._param_names.items()}
        finite = torch.isfinite(p.parts).tolist()
        bad: Dict[str, List[str]] = {}
        for entry, owners in enumerate(part_owners(p.params, p.groups), start=1):
            if not finite[entry]:
                for i in owners:
                    dist, _, tensor = names.get(id(p.params[i]), "?: ?").partition(": ")
                    bad.setdefault(dist, []).append(tensor)
        return bad

    def _refuse(self, value: torch.Tensor, ctx: Context) -> bool:
        """After a read that was not finite: raise the SupportError of a value outside its
        support, or refuse a non-finite step -- count it (``skip_nonfinite``) or raise a
        NonFiniteError that names the terms -- having put back what the forward pass
        changed.  ``False`` when only lenient support checks fired (they warn) and the
        step is finite after all."""
        values = self._guard.values
        try:
            settle(ctx.flags)
        except BaseException:
            self._guard.restore()
            self.optimizer.zero_grad(set_to_none=True)
            raise
        if ctx.flags and self._finite_after_all(value):
            return False
        self._guard.restore()
        term_values = ctx.terms
        if self.skip_nonfinite:
            self.optimizer.zero_grad(set_to_none=True)
            self.skipped_steps += 1
            return True
        error = nonfinite_error(value, self._terms(), term_values or {},
                                nonfinite_grads(self._param_names), values,
                                self.step_count, self.loss_cls.loss_text)
        self.optimizer.zero_grad(set_to_none=True)
        raise error

    def _terms(self) -> List[Tuple[Loss, str]]:
        """The plan's terms with their texts as the loss prints them (two distributions
        that print alike are told apart), for the message of a refused step."""
        nodes = [t.node for t in self._plan.terms]
        try:
            from ..loss.latex import loss_texts  # sympy: on the refused path only
            return list(zip(nodes, loss_texts(self._plan.loss, nodes)))
        except Exception:  # noqa: BLE001 - a message must never raise
            return [(n, n._short()) for n in nodes]

    def _guarded_modules(self, dists: Iterable[nn.Module]) -> List[nn.Module]:
        """The listed distributions and every module the loss reaches."""
        out: List[nn.Module] = []
        for m in list(dists) + list(self.loss_cls.distributions()):
            if isinstance(m, nn.Module) and all(m is not o for o in out):
                out.append(m)
        return out

    def _finite_after_all(self, value: torch.Tensor) -> bool:
        """Whether the loss and every gradient are finite (read again: the refused path
        only)."""
        grads = [p.grad for p in self._params if p.grad is not None]
        return is_finite(finite_check(value.detach(), grads).item())

    def _try_compile(self) -> None:
        """Compile the step (see :mod:`pixyz_pyro.model.compile`); ONE warning and eager
        mode if that fails."""
        self._compiled = compile_step(self, mode=self._compile_mode,
                                      unroll=self.unroll_series)
        if self._compiled is None:
            self.compile = False

    def test(self, test_x_dict: Optional[Dict] = None, **kwargs: Any) -> torch.Tensor:
        """Evaluate the test loss without gradients (``batch_size=`` is read as
        ``batch_n=``, as in :meth:`train`)."""
        kwargs = pixyz_keywords(kwargs, f"{type(self).__name__}.test()")
        plan = self._test_plan
        values, ctx = prepare(plan, test_x_dict, kwargs, f"{type(self).__name__}.test()",
                              returns=False)
        self.distributions.eval()  # as in Pixyz: the listed distributions stay in eval mode
        modules = [m for d in plan.distributions if isinstance(d, nn.Module)
                   for m in d.modules()]
        modes = [(m, m.training) for m in modules]
        value: Any  # a tensor: the loss of a model has distributions
        for m in modules:  # the other modules the test loss reaches: eval for the call
            m.training = False
        try:
            with torch.no_grad():
                value, _ = run(plan.loss, values, ctx)
                finish(ctx)
        except BaseException as e:
            if passes_through(e):
                raise
            settle(ctx.flags)
            raise wrap_error(f"evaluating {plan.loss._short()}", e, values,
                             plan.input_var) from e
        finally:
            listed = {id(m) for d in self.distributions for m in d.modules()}
            for m, mode in modes:
                if id(m) not in listed:
                    m.training = mode
        return value

    def fit(self, train_data: Iterable, epochs: int, **kwargs: Any) -> History:
        """Train for ``epochs`` epochs over ``train_data``; see :func:`pixyz_pyro.model.fit`."""
        return fit(self, train_data, epochs, **kwargs)

    # --- checkpoints ------------------------------------------------------------------------
    def _checkpoint_extras(self) -> Dict:
        """Modules and optimizers a preset adds to the checkpoint (the GAN's
        discriminator), by key."""
        return {}

    def state_dict(self) -> Dict:
        self.sync()  # the counters and the state of the pending steps are final
        state = {
            "format_version": FORMAT_VERSION,
            "distributions": [(d.prob_text, d.state_dict()) for d in self.distributions],
            "optimizer": self.optimizer.state_dict(),
            "optimizer_class": type(self.optimizer).__name__,
            "rng": rng_state(),
            "step_count": self.step_count,
            "skipped_steps": self.skipped_steps,
        }
        for key, obj in self._checkpoint_extras().items():
            state[key] = obj.state_dict()
            if isinstance(obj, torch.optim.Optimizer):
                state[extra_class_key(key)] = type(obj).__name__
        return state

    def save(self, path: str) -> None:
        """Write an atomic checkpoint (see :mod:`pixyz_pyro.model.checkpoint`); when
        distributed, only rank 0 writes."""
        if self.ddp is None or _dist.is_main_process():
            atomic_save(self.state_dict(), path)

    def load(self, path: str) -> None:
        """Restore a checkpoint written by :meth:`save`, all or nothing: the whole file is
        validated against the model first (see :mod:`pixyz_pyro.model.checkpoint`), then
        applied in one go; on any error the model is exactly as it was.  Steps that
        ``check_every`` left pending are read first: a refused one is reported as a
        ``RuntimeWarning``, not raised, since the checkpoint replaces what it refers to."""
        ckpt = read_checkpoint(path)
        extras = self._checkpoint_extras()
        check_compatible(ckpt, list(self.distributions), path, self.optimizer, extras)
        try:
            self.sync()
        except (NonFiniteError, SupportError) as e:
            warnings.warn(f"{e} The checkpoint {path!r} loaded now replaces that state.",
                          RuntimeWarning, stacklevel=2)
        apply_checkpoint(ckpt, list(self.distributions), self.optimizer, extras)
        self.step_count, self.skipped_steps = ckpt["step_count"], ckpt.get("skipped_steps", 0)
