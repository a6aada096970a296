"""``FlowTransform``: a Flow written in Pixyz's style, seen as a Pyro transform."""

from typing import Optional

import torch
from pyro.distributions.conditional import ConditionalTransform

from .event_dim import EventDimTransform


class FlowTransform(EventDimTransform, ConditionalTransform):
    r"""Wrap a flow's ``forward``/``inverse``/``logdet_jacobian`` as a Pyro transform.

    .. math::
        T(x) = \mathrm{flow.forward}(x, y), \qquad
        \log|\det \partial T / \partial x| = \mathrm{flow.logdet\_jacobian}

    This is what :attr:`Flow.transform` returns for a subclass that overrides ``forward``
    itself, Pixyz's way of writing a new flow. ``condition(y)`` fixes the flow's ``y``.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.flows import Flow
    >>> class Double(Flow):
    ...     def forward(self, x, y=None, compute_jacobian=True):
    ...         self._logdet_jacobian = x.new_full(x.shape[:1], x.shape[1] * 0.6931)
    ...         return 2 * x
    ...     def inverse(self, z, y=None):
    ...         return z / 2
    >>> t = FlowTransform(Double(3), event_dim=1)
    >>> x = torch.ones(2, 3)
    >>> print(t.log_abs_det_jacobian(x, t(x)))
    tensor([2.0793, 2.0793])
    """

    bijective = True

    def __init__(self, flow, event_dim: int, y: Optional[torch.Tensor] = None):
        super().__init__(cache_size=1)
        self.flow = flow
        self._event_dim = event_dim
        self.y = y
        self._logdet = None

    def condition(self, context):
        return FlowTransform(self.flow, self.event_dim, context)

    def _call(self, x):
        z = self.flow.forward(x, self.y, compute_jacobian=True)
        self._logdet = self.flow.logdet_jacobian
        return z

    def _inverse(self, z):
        self._logdet = None
        return self.flow.inverse(z, self.y)

    def log_abs_det_jacobian(self, x, z):
        x_old, z_old = self._cached_x_y
        if self._logdet is None or x is not x_old or z is not z_old:
            self._cached_x_y = x, self._call(x)
        return self._logdet
