"""``DenseChannelConv``: Glow's invertible 1x1 convolution with an unconstrained weight."""

import torch
from pyro.distributions import constraints
from pyro.distributions.torch_transform import TransformModule
from pyro.distributions.transforms.generalized_channel_permute import (
    ConditionedGeneralizedChannelPermute,
)
from torch import nn


class DenseChannelConv(TransformModule):
    r"""A 1x1 convolution over the channels of ``[..., C, H, W]`` with a full weight matrix.

    .. math::
        z_{:, h, w} = W x_{:, h, w}, \qquad \log|\det J| = H W \log|\det W|

    :math:`W` starts as a random orthogonal matrix and is learnt as it is. Each call factors
    :math:`W = P L U` and hands the factors to Pyro's ``ConditionedGeneralizedChannelPermute``,
    which computes the map, its inverse (triangular solves) and the log-determinant. Pyro's
    ``GeneralizedChannelPermute`` is the same map learnt through its :math:`L, U` factors.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> t = DenseChannelConv(3)
    >>> x = torch.randn(2, 3, 4, 4)
    >>> torch.allclose(t.inv(t(x).clone()), x, atol=1e-5)
    True
    >>> print(t.log_abs_det_jacobian(x, t(x)).abs() < 1e-4)
    tensor([True, True])
    """

    domain = constraints.independent(constraints.real, 3)
    codomain = constraints.independent(constraints.real, 3)
    bijective = True

    def __init__(self, channels: int):
        super().__init__(cache_size=1)
        weight, _ = torch.linalg.qr(torch.randn(channels, channels))
        self.weight = nn.Parameter(weight)

    def factored(self) -> ConditionedGeneralizedChannelPermute:
        """Pyro's channel permute for :math:`W = P L U`."""
        lu, pivots = torch.linalg.lu_factor(self.weight)
        permutation, _, _ = torch.lu_unpack(lu, pivots, unpack_data=False)
        return ConditionedGeneralizedChannelPermute(permutation, lu)

    def _call(self, x):
        return self.factored()(x)

    def _inverse(self, z):
        return self.factored().inv(z)

    def log_abs_det_jacobian(self, x, z):
        return self.factored().log_abs_det_jacobian(x, z)
