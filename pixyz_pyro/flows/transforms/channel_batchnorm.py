"""``ChannelBatchNorm``: Pyro's ``BatchNorm`` over the channels of ``[..., C, H, W]`` images."""

import torch
from pyro.distributions import constraints
from pyro.distributions.torch_transform import TransformModule
from pyro.distributions.transforms import BatchNorm


class ChannelBatchNorm(TransformModule):
    r"""Pyro's ``BatchNorm`` with one mean, variance, :math:`\gamma` and :math:`\beta` per
    channel of an image, statistics taken over the batch and all pixels.

    .. math::
        z_{c,h,w} = \gamma_c \frac{x_{c,h,w} - \mu_c}{\sqrt{\sigma^2_c + \epsilon}} + \beta_c,
        \qquad \log|\det J| = H W \sum_c \left(\log\gamma_c - \tfrac12 \log(\sigma^2_c +
        \epsilon)\right)

    Directions are Pyro's: the inverse (data to base) normalises and, in training mode,
    updates the moving averages; the forward map undoes it with the moving averages. The
    pixels are folded into Pyro's batch dimension and the channels into its features.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> t = ChannelBatchNorm(2, momentum=1.0)
    >>> x = 1 + 3 * torch.randn(8, 2, 4, 4)
    >>> u = t.inv(x)
    >>> round(u.std().item(), 3)
    0.998
    >>> torch.allclose(t(u), x, atol=1e-5)
    True
    """

    domain = constraints.independent(constraints.real, 3)
    codomain = constraints.independent(constraints.real, 3)
    bijective = True

    def __init__(self, channels: int, momentum: float = 0.1, epsilon: float = 1e-5):
        super().__init__()
        self.bn = BatchNorm(channels, momentum=momentum, epsilon=epsilon)

    @staticmethod
    def _fold(x: torch.Tensor) -> torch.Tensor:
        return x.movedim(-3, -1).reshape(-1, x.shape[-3])

    @staticmethod
    def _unfold(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return v.reshape(like.movedim(-3, -1).shape).movedim(-1, -3)

    def _call(self, x):
        return self._unfold(self.bn(self._fold(x)), x)

    def _inverse(self, y):
        return self._unfold(self.bn.inv(self._fold(y)), y)

    def log_abs_det_jacobian(self, x, y):
        per_channel = self.bn.log_abs_det_jacobian(self._fold(x), self._fold(y))
        height, width = x.shape[-2:]
        return (per_channel.sum() * (height * width)).expand(x.shape[:-3])
