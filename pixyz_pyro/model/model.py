"""``Model``: train and test a loss over a set of distributions.

One training step is

1. set gradients to ``None``;
2. evaluate the loss with the direct executor (per-term values kept as references);
3. backward, optionally clip;
4. read the loss once (``.item()``, the only host sync); if it or a gradient is not
   finite, refuse the step and name the term that went non-finite;
5. step the ONE optimizer that holds every parameter.

Bad input is refused before anything changes: inputs are checked by name and type before
the forward pass, and :class:`~pixyz_pyro.model.guard.StepGuard` puts back what a
failed or refused step changed in the forward pass (running statistics; everything on
the first step).
"""
from typing import Dict, Iterable, List, Optional, Union

import torch
from torch import nn

from ..dist.context import Context
from ..errors import LossError, ModelError, passes_through, wrap_error
from ..loss.base import Loss, _batch_n
from . import distributed as _dist
from .checkpoint import (
    FORMAT_VERSION,
    atomic_save,
    check_compatible,
    read_checkpoint,
    rng_state,
    set_rng_state,
)
from .compile import compile_mode, compile_step, finite_check
from .guard import StepGuard, is_finite, nonfinite_error
from .optim import build_optimizer


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
        Gradient clipping.
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

    def __init__(self, loss: Loss, test_loss: Optional[Loss] = None, distributions=(),
                 optimizer=torch.optim.Adam, optimizer_params: Optional[Dict] = None,
                 clip_grad_norm: Optional[float] = None,
                 clip_grad_value: Optional[float] = None, retain_graph: bool = False,
                 compile: Union[bool, str] = False, skip_nonfinite: bool = False,
                 distributed: Optional[bool] = None):
        if not isinstance(loss, Loss):
            raise LossError(f"Model needs a pixyz_pyro loss expression, got "
                            f"{type(loss).__name__}")
        self._compile_mode = compile_mode(compile)
        self.loss_cls = loss
        self.test_loss_cls = test_loss if test_loss is not None else loss
        dists = list(distributions) if distributions else loss.distributions()
        self.distributions = nn.ModuleList(dists)
        params = unique_parameters(dists)
        if not params:
            names = [getattr(d, "prob_text", type(d).__name__) for d in dists]
            raise ModelError(f"no parameters to optimize: the distributions {names} have no "
                             f"trainable parameters (constants are buffers; wrap a trainable "
                             f"constant in nn.Parameter)")
        self.optimizer = build_optimizer(optimizer, params, optimizer_params)
        self._params = params
        self._param_names = {f"{d.prob_text}: {n}": p for d in dists
                             for n, p in d.named_parameters() if p.requires_grad}
        self._guard = StepGuard(dists)
        self.clip_norm = clip_grad_norm
        self.clip_value = clip_grad_value
        self.retain_graph = retain_graph
        self.skip_nonfinite = skip_nonfinite
        self.skipped_steps = 0
        self.step_count = 0
        self.compile = compile
        self._compiled = None
        self._plans: Dict = {}
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
    def _evaluate(self, loss: Loss, x_dict: Dict, kwargs: Dict):
        values = loss._checked_input(x_dict)
        need, terms = self._plan(loss)
        loss._check_input_names(values, need)
        ctx = Context(batch_n=_batch_n(values, need), kwargs=kwargs)
        ctx.terms = dict.fromkeys(map(id, terms))
        self._guard.snapshot()
        try:
            value, _ = self._run_loss(loss, values, ctx)
            if not isinstance(value, torch.Tensor) or value.dim() != 0:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value)
                raise LossError(f"the loss must be a scalar to train; {loss.loss_text} has "
                                f"shape {shape}. Reduce it with .mean() or .sum()")
        except BaseException as e:
            self._guard.restore()
            if passes_through(e):
                raise
            raise wrap_error(f"evaluating {loss._short()}", e, values, need) from e
        self._guard.values = values
        return value, terms, ctx.terms

    def _plan(self, loss: Loss):
        """``(input_var, terms)`` of ``loss``, worked out once (losses are immutable)."""
        plan = self._plans.get(loss)
        if plan is None:
            plan = self._plans[loss] = (loss.input_var, loss.terms())
        return plan

    def _run_loss(self, loss: Loss, values: Dict, ctx: Context):
        if self._compiled is not None and loss is self.loss_cls:
            return self._compiled.run(values, ctx)
        return loss._run(values, ctx)

    def _loss_fn(self, x_dict: Dict, kwargs: Dict):
        return self._evaluate(self.loss_cls, x_dict, kwargs)

    def train(self, train_x_dict: Optional[Dict] = None, average_across_ranks: bool = False,
              **kwargs) -> torch.Tensor:
        """One optimisation step on ``train_x_dict``; returns the loss (detached), averaged
        over the ranks (one more all-reduce) when ``average_across_ranks`` and distributed."""
        if not all(m.training for m in self._modules):
            self.distributions.train()
        self.optimizer.zero_grad(set_to_none=True)
        fn = self._loss_fn
        if self.ddp is not None:  # gradients are all-reduced inside backward
            value, terms, term_values = self.ddp(fn, train_x_dict, kwargs)
        else:
            value, terms, term_values = fn(train_x_dict, kwargs)
        value.backward(retain_graph=self.retain_graph)
        if self.clip_norm:
            nn.utils.clip_grad_norm_(self._params, self.clip_norm)
        if self.clip_value:
            nn.utils.clip_grad_value_(self._params, self.clip_value)
        grads = [p.grad for p in self._params if p.grad is not None]
        check = value.detach()
        if average_across_ranks and self.ddp is not None:
            check = value = _dist.average_across_ranks(check)
        if grads:
            check = self._compiled.check(check, grads) if self._compiled is not None \
                else finite_check(check, grads)
        read = check.item()
        if not is_finite(read):
            self._refuse(value, terms, term_values)
            return value.detach()
        self._guard.accept()
        if self._compiled is not None:
            self._compiled.step()
        else:
            self.optimizer.step()
        self.step_count += 1
        if self.compile and self._compiled is None:
            self._try_compile()
        return value.detach()

    def _refuse(self, value, terms, term_values) -> None:
        """Refuse a non-finite step: put back what the forward pass changed, then count
        it (``skip_nonfinite``) or raise a NonFiniteError that names the terms."""
        values = self._guard.values
        self._guard.restore()
        if self.skip_nonfinite:
            self.optimizer.zero_grad(set_to_none=True)
            self.skipped_steps += 1
            return
        error = nonfinite_error(value, terms, term_values, self._param_names, values,
                                self.step_count, self.loss_cls.loss_text)
        self.optimizer.zero_grad(set_to_none=True)
        raise error

    def _try_compile(self) -> None:
        """Compile the step (see :mod:`pixyz_pyro.model.compile`); ONE warning and eager
        mode if that fails."""
        self._compiled = compile_step(self, mode=self._compile_mode)
        if self._compiled is None:
            self.compile = False

    def test(self, test_x_dict: Optional[Dict] = None, **kwargs) -> torch.Tensor:
        """Evaluate the test loss without gradients."""
        self.distributions.eval()
        with torch.no_grad():
            value = self.test_loss_cls.eval(test_x_dict, **kwargs)
        return value

    # --- checkpoints ------------------------------------------------------------------------
    def _checkpoint_extras(self) -> Dict:
        """Modules and optimizers a preset adds to the checkpoint (the GAN's
        discriminator), by key."""
        return {}

    def state_dict(self) -> Dict:
        state = {
            "format_version": FORMAT_VERSION,
            "distributions": [(d.prob_text, d.state_dict()) for d in self.distributions],
            "optimizer": self.optimizer.state_dict(),
            "optimizer_class": type(self.optimizer).__name__,
            "rng": rng_state(),
            "step_count": self.step_count,
            "skipped_steps": self.skipped_steps,
        }
        state.update({k: v.state_dict() for k, v in self._checkpoint_extras().items()})
        return state

    def save(self, path: str) -> None:
        """Write an atomic checkpoint (see :mod:`pixyz_pyro.model.checkpoint`); when
        distributed, only rank 0 writes."""
        if self.ddp is None or _dist.is_main_process():
            atomic_save(self.state_dict(), path)

    def load(self, path: str) -> None:
        """Restore a checkpoint written by :meth:`save`; validates before changing
        anything."""
        ckpt = read_checkpoint(path)
        extras = self._checkpoint_extras()
        check_compatible(ckpt, list(self.distributions), path, self.optimizer, extras)
        for d, (_, state) in zip(self.distributions, ckpt["distributions"]):
            d.load_state_dict(state)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        for key, obj in extras.items():
            obj.load_state_dict(ckpt[key])
        set_rng_state(ckpt["rng"])
        self.step_count = ckpt["step_count"]
        self.skipped_steps = ckpt.get("skipped_steps", 0)
