"""``FlowList``: flows applied one after another."""

from typing import Optional, Sequence, Tuple

import torch
from pyro.distributions.conditional import (
    ConditionalComposeTransformModule,
    ConditionalTransform,
)
from pyro.distributions.torch_transform import ComposeTransformModule
from pyro.distributions.transforms import Transform

from .._modulelist import ModuleListOf
from .flow import AnyTransform, Flow


class FlowList(Flow):
    r"""A chain of flows, itself a flow.

    .. math::
        z = f_K \circ \cdots \circ f_1 (x), \qquad
        \log|\det J| = \sum_{k=1}^K \log|\det J_{f_k}|

    Every flow gets the same conditioning ``y``; flows that are not conditional ignore it.
    After :meth:`forward`, each flow's own ``logdet_jacobian`` is set as well. Unlike Pixyz,
    a ``FlowList`` can be indexed, iterated and measured with ``len``.

    Parameters
    ----------
    flow_list : sequence of Flow
        The flows, applied in order (at least one).

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.flows import BatchNorm1d, PlanarFlow, Reverse
    >>> _ = torch.manual_seed(0)
    >>> f = FlowList([PlanarFlow(2), Reverse(2), BatchNorm1d(2)])
    >>> z = f(torch.randn(5, 2))
    >>> print(f.logdet_jacobian.shape, len(f))
    torch.Size([5]) 3
    >>> round(f.logdet_jacobian[0].item(), 4)
    0.202
    """

    def __init__(self, flow_list: Sequence[Flow]):
        flow_list = list(flow_list)
        if not flow_list:
            raise ValueError("FlowList needs at least one flow")
        super().__init__(flow_list[0].in_features)
        self.flow_list = ModuleListOf[Flow](flow_list)

    @property
    def event_dim(self) -> Optional[int]:
        return self.flow_list[0].event_dim

    def __len__(self) -> int:
        return len(self.flow_list)

    def __iter__(self):
        return iter(self.flow_list)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return FlowList(list(self.flow_list)[index])
        return self.flow_list[index]

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                compute_jacobian: bool = True) -> torch.Tensor:
        logdet: Optional[torch.Tensor] = None
        for flow in self.flow_list:
            x = flow(x, y, compute_jacobian)
            if compute_jacobian:
                part = flow.logdet_jacobian
                assert part is not None  # forward(compute_jacobian=True) sets it
                logdet = part if logdet is None else logdet + part
        if compute_jacobian:
            self._logdet_jacobian = logdet
        return x

    def inverse(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        for flow in reversed(self.flow_list):
            z = flow.inverse(z, y)
        return z

    def inverse_and_logdet(self, z: torch.Tensor, y: Optional[torch.Tensor] = None
                           ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Each flow's :meth:`~Flow.inverse_and_logdet`, last flow first; the
        log-determinants add up."""
        logdet: Optional[torch.Tensor] = None
        for flow in reversed(self.flow_list):
            z, flow_logdet = flow.inverse_and_logdet(z, y)
            logdet = flow_logdet if logdet is None else logdet + flow_logdet
        assert logdet is not None  # a FlowList has at least one flow
        self._logdet_jacobian = logdet
        return z, logdet

    @property
    def transform(self) -> AnyTransform:
        """The composition of the flows' transforms: a ``ComposeTransformModule``, or a
        ``ConditionalComposeTransformModule`` when some flow needs ``y``."""
        parts = [flow.transform for flow in self.flow_list]
        if all(isinstance(part, Transform) for part in parts):
            return ComposeTransformModule(parts)
        return ConditionalComposeTransformModule(parts)

    @property
    def conditional_transform(self) -> ConditionalTransform:
        return ConditionalComposeTransformModule([flow.transform for flow in self.flow_list])

    def condition(self, y: Optional[torch.Tensor] = None) -> Transform:
        return ComposeTransformModule([flow.condition(y) for flow in self.flow_list])

    def __repr__(self) -> str:
        return repr(self.flow_list).replace("ModuleList", "FlowList", 1)
