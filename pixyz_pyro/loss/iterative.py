"""A loss summed over time steps.

.. math::

    \\mathcal{L} = \\sum_{t=0}^{T-1} \\mathcal{L}_t(x_t, h_{t-1})

Time is dimension 0 of every ``series_var`` (``(T, batch, ...)``).  At step ``t`` the
step loss sees ``x = x[t]``; afterwards the samples it drew are renamed by
``update_value`` (``{"h": "h_prev"}`` feeds :math:`h_t` in as :math:`h_{t}` of the next
step).  With ``slice_step`` (a distribution that slices the series itself), the step
loss is ``E_{slice_step}[step_loss]`` and the step index is given as ``t`` (or as
``timestep_var``).
"""
from typing import Dict, Optional, Sequence

import torch

from ..errors import ShapeError
from .base import Loss


class IterativeLoss(Loss):
    """:math:`\\sum_t` of a step loss over a time series (see the module docstring).

    Examples
    --------
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import LogProb
    >>> p = Normal(loc="h_prev", scale=1., var=["x"], cond_var=["h_prev"])
    >>> loss = IterativeLoss(LogProb(p), max_iter=3, series_var=["x"])
    >>> print(loss)
    \\sum_{t=0}^{2} \\log p(x|h_{prev})
    """

    def __init__(self, step_loss: Loss, max_iter: Optional[int] = None,
                 series_var: Sequence[str] = (), update_value: Optional[Dict[str, str]] = None,
                 slice_step=None, timestep_var: Sequence[str] = (), mask=None):
        if not series_var and max_iter is None:
            raise ValueError("IterativeLoss needs series_var or max_iter to know how many "
                             "steps to take")
        self.max_iter = max_iter
        self.series_var = list(series_var)
        self.update_value = dict(update_value or {})
        self.timestep_var = list(timestep_var)
        self.slice_step = slice_step
        self.step_loss = step_loss.expectation(slice_step) if slice_step is not None \
            else step_loss
        self.mask = mask
        self._freeze()

    @property
    def children(self):
        return (self.step_loss,)

    def distributions(self):
        return self.step_loss.distributions()

    @property
    def _input_var(self):
        out = list(self.step_loss.input_var)
        for v in self.series_var + list(self.update_value.values()):
            if v not in out:
                out.append(v)
        t_name = self._t_name()
        return [v for v in out if v != t_name and v not in self.update_value]

    def _t_name(self) -> Optional[str]:
        if self.timestep_var:
            return self.timestep_var[0]
        return "t" if self.slice_step is not None else None

    def _steps(self, values) -> int:
        if self.max_iter:
            return self.max_iter
        return values[self.series_var[0]].shape[0]

    def _check_series(self, values) -> None:
        lengths = {v: values[v].shape[0] for v in self.series_var
                   if isinstance(values.get(v), torch.Tensor)}
        if len(set(lengths.values())) > 1:
            raise ShapeError(f"IterativeLoss over {self.step_loss._short()}: the series_var "
                             f"{self.series_var} must have one length on dim 0 (time), got "
                             f"{lengths}")
        if self.max_iter and lengths and min(lengths.values()) < self.max_iter \
                and self.slice_step is None:
            raise ShapeError(f"IterativeLoss over {self.step_loss._short()}: max_iter="
                             f"{self.max_iter} but the series are only "
                             f"{min(lengths.values())} steps long: {lengths}")

    def _plan(self):
        """``(t_name, series_var, update_value items)``, worked out once (the node is
        immutable; Python structure only, never a tensor)."""
        plan = self.__dict__.get("_step_plan")
        if plan is None:
            series = tuple(self.series_var) if self.slice_step is None else ()
            plan = (self._t_name(), series, tuple(self.update_value.items()))
            object.__setattr__(self, "_step_plan", plan)
        return plan

    def _eval(self, values, ctx):
        self._check_series(values)
        mask = ctx.kwargs.get("mask", self.mask)
        t_name, sliced, updates = self._plan()
        series = [(k, values[k]) for k in sliced]
        state = dict(values)
        step_loss = self.step_loss
        # _run only records a top-level term's value; skip it when the step is not one.
        run = step_loss._run if ctx.terms is not None and id(step_loss) in ctx.terms \
            else step_loss._eval
        total = 0
        new: Dict = {}
        for t in range(self._steps(values)):
            if t_name is not None:
                state[t_name] = t
            for k, v in series:
                state[k] = v[t]
            step, new = run(state, ctx)
            if new:
                state.update(new)
            if mask is not None:
                step = step * mask[t].float()
            total = total + step
            for old, renamed in updates:
                if old in state:
                    state[renamed] = state.pop(old)
        return total, new
