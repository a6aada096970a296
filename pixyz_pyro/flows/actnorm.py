"""``ActNorm2d``: Glow's activation normalisation as a flow."""

from .flow import Flow
from .transforms.actnorm import ActNorm


class ActNorm2d(Flow):
    r"""Per-channel affine normalisation of ``(batch, C, H, W)`` images (Glow).

    .. math::
        z_{c,h,w} = (x_{c,h,w} + b_c)\, e^{s_c}, \qquad \log|\det J| = H W \sum_c s_c

    The first forward call in training mode initialises :math:`b, s` so that the output has
    zero mean and standard deviation ``scale`` per channel on that batch. The transform is
    :class:`~pixyz_pyro.flows.transforms.ActNorm`.

    Parameters
    ----------
    in_features : int
        Number of channels.
    scale : float

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> f = ActNorm2d(3)
    >>> z = f(5 + torch.randn(2, 3, 4, 4))
    >>> print(f.inited, round(z.mean().item(), 4), f.logdet_jacobian.shape)
    True 0.0 torch.Size([2])
    """

    def __init__(self, in_features: int, scale: float = 1.0):
        super().__init__(in_features, event_dim=3)
        self.pyro_transform = ActNorm(in_features, scale)

    @property
    def inited(self) -> bool:
        """Whether the data-dependent initialisation has run."""
        return bool(self.pyro_transform.initialized)

    def _transform(self, event_dim: int) -> ActNorm:
        return self.pyro_transform

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, scale={self.pyro_transform.scale}"
