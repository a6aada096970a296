"""``ChannelConv``: Glow's invertible 1x1 convolution."""

from typing import Union

from pyro.distributions.transforms import GeneralizedChannelPermute

from .flow import Flow
from .transforms.dense_channel_conv import DenseChannelConv


class ChannelConv(Flow):
    r"""Invertible 1x1 convolution over the channels of ``[..., C, H, W]`` images (Glow).

    .. math::
        z_{:, h, w} = W x_{:, h, w}, \qquad \log|\det J| = H W \log|\det W|

    :math:`W` starts as a random orthogonal matrix. With ``decomposed=True`` it is learnt in
    its LU factors, :math:`W = P L U` with :math:`P` fixed: that is Pyro's
    ``GeneralizedChannelPermute``. Otherwise :math:`W` is learnt as it is
    (:class:`~pixyz_pyro.flows.transforms.DenseChannelConv`, which factors it on each call and
    lets Pyro's channel permute do the work). Either way the inverse uses triangular solves.

    Parameters
    ----------
    in_channels : int
    decomposed : bool

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> f = ChannelConv(3, decomposed=True)
    >>> x = torch.randn(2, 3, 8, 8)
    >>> z = f(x)
    >>> print(torch.allclose(f.inverse(z.clone()), x, atol=1e-5))
    True
    >>> print(f.logdet_jacobian.abs().max() < 1e-3)
    tensor(True)
    """

    def __init__(self, in_channels: int, decomposed: bool = False):
        super().__init__(in_channels, event_dim=3)
        self.decomposed = decomposed
        self.pyro_transform: Union[GeneralizedChannelPermute, DenseChannelConv]
        if decomposed:
            self.pyro_transform = GeneralizedChannelPermute(channels=in_channels)
        else:
            self.pyro_transform = DenseChannelConv(in_channels)

    def _transform(self, event_dim: int):
        return self.pyro_transform

    def extra_repr(self) -> str:
        return f"in_channels={self.in_features}, decomposed={self.decomposed}"
