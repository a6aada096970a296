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
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..dist.distribution import Distribution
from .base import Loss


class IterativeLoss(Loss):
    """:math:`\\sum_t` of a step loss over a time series (see the module docstring).

    .. math::

        \\mathcal{L} = \\sum_{t=0}^{T-1} \\mathcal{L}_{step}(x_t, h_t),
        \\qquad h_{t+1} = \\mathrm{update}(h_t)

    ``mask`` (here or as ``eval(..., mask=...)``) has shape ``(T, batch)``: step ``t`` of
    row ``b`` counts with weight ``mask[t, b]``.

    Parameters
    ----------
    step_loss : Loss
        The loss of one step.
    max_iter : int, optional
        The number of steps :math:`T` (default: the length of the series).
    series_var : sequence of str
        The inputs with a leading time axis ``(T, batch, ...)``; step ``t`` sees ``x[t]``.
    update_value : dict, optional
        ``{new name: old name}``: after each step, the sample named ``new name`` becomes
        the input ``old name`` of the next step (``{"h": "h_prev"}``).
    slice_step : Distribution, optional
        A distribution that slices the series itself; the step loss becomes
        :math:`\\mathbb{E}_{slice}[\\mathcal{L}_{step}]` and the step index is ``t``.
    timestep_var : sequence of str
        The name under which the step index is given (Pixyz's option).
    mask : tensor, optional
        ``(T, batch)`` weights of the steps.

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
                 slice_step: Optional[Distribution] = None, timestep_var: Sequence[str] = (),
                 mask: Optional[torch.Tensor] = None) -> None:
        if not series_var and max_iter is None:
            raise ValueError("IterativeLoss needs series_var or max_iter to know how many "
                             "steps to take")
        if max_iter is not None and (isinstance(max_iter, bool) or
                                     not isinstance(max_iter, int) or max_iter < 1):
            raise ValueError(f"IterativeLoss(max_iter={max_iter!r}): max_iter must be a "
                             f"positive int (or None: the length of the series)")
        self.max_iter = max_iter
        self.series_var = list(series_var)
        self.update_value = dict(update_value or {})
        self.timestep_var = list(timestep_var)
        self.slice_step = slice_step
        self.step_loss = step_loss.expectation(slice_step) if slice_step is not None \
            else step_loss
        self.mask = mask
        self._freeze()

    keywords = frozenset({"mask"})

    @property
    def children(self) -> Tuple[Loss, ...]:
        return (self.step_loss,)

    def distributions(self) -> List[Distribution]:
        return self.step_loss.distributions()

    @property
    def _input_var(self) -> List[str]:
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
