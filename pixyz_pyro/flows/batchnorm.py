"""``BatchNorm1d`` and ``BatchNorm2d``: batch normalisation as a flow, on Pyro's ``BatchNorm``."""

from typing import Type

from pyro.distributions.torch_transform import TransformModule
from pyro.distributions.transforms import BatchNorm

from .flow import Flow
from .transforms.channel_batchnorm import ChannelBatchNorm


class BatchNorm1d(Flow):
    r"""Batch normalisation of ``(batch, D)`` vectors with a tractable inverse.

    .. math::
        z = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta, \qquad
        \log|\det J| = \sum_d \left(\log\gamma_d - \tfrac12 \log(\sigma^2_d + \epsilon)\right)

    In training mode :math:`\mu, \sigma^2` are the batch statistics and the running ones are
    updated as ``running = momentum * running + (1 - momentum) * batch`` (Pixyz's
    convention: the default ``momentum=0`` keeps the last batch's). In eval mode the running
    statistics are used. The transform is Pyro's ``BatchNorm`` (``momentum`` becomes
    ``1 - momentum`` there), inverted: Pyro normalises in its inverse direction. So, as in
    Pyro, :meth:`inverse` uses the running statistics, which in training mode with
    ``momentum=0`` are exactly those of the last forward batch. The batch statistics are
    treated as constants in the log-determinant, as in Real NVP and MAF.

    Parameters
    ----------
    in_features : int
    momentum : float

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(20, 100)
    >>> f = BatchNorm1d(100)
    >>> z = f(x)
    >>> print(torch.allclose(f.inverse(z), x, atol=1e-5), round(z.std().item(), 2))
    True 0.97
    """

    _transform_class: Type[TransformModule] = BatchNorm
    _feature_dims = 1
    _logdet_from_inverse = False  # a density evaluation runs forward: updates the statistics

    def __init__(self, in_features: int, momentum: float = 0.0):
        super().__init__(in_features, event_dim=self._feature_dims)
        self.momentum = momentum
        self.pyro_transform = self._transform_class(in_features, 1.0 - momentum)

    def _transform(self, event_dim: int):
        return self.pyro_transform.inv

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, momentum={self.momentum}"


class BatchNorm2d(BatchNorm1d):
    r"""Batch normalisation of ``(batch, C, H, W)`` images, per channel, as a flow.

    .. math::
        z_{c,h,w} = \gamma_c \frac{x_{c,h,w} - \mu_c}{\sqrt{\sigma^2_c + \epsilon}} + \beta_c,
        \qquad \log|\det J| = H W \sum_c \left(\log\gamma_c - \tfrac12 \log(\sigma^2_c +
        \epsilon)\right)

    Statistics are taken per channel over the batch and all pixels (Pixyz took them per
    pixel). Everything else is as in :class:`BatchNorm1d`; the transform is
    :class:`~pixyz_pyro.flows.transforms.ChannelBatchNorm`, Pyro's ``BatchNorm`` over channels.

    Parameters
    ----------
    in_features : int
        The number of channels :math:`C`.
    momentum : float
        The running statistics' momentum (0: the batch's own statistics only).

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(20, 10, 5, 7)
    >>> f = BatchNorm2d(10)
    >>> z = f(x)
    >>> print(torch.allclose(f.inverse(z), x, atol=1e-5), f.logdet_jacobian.shape)
    True torch.Size([20])
    """

    _transform_class = ChannelBatchNorm
    _feature_dims = 3
