"""``Flatten``: reshape image features into vectors."""

import math
from typing import Optional, Sequence

import torch
from pyro.distributions.transforms import ReshapeTransform

from .flow import Flow


class Flatten(Flow):
    r"""Flatten the features of each sample, ``(batch, C, H, W) -> (batch, C H W)``.

    .. math::
        z = \mathrm{vec}(x), \qquad \log|\det J| = 0

    The transform is torch's ``ReshapeTransform``. The feature shape ``in_size`` is learnt
    from the first input unless given; inputs with other features are refused.

    Parameters
    ----------
    in_size : sequence of int, optional

    Examples
    --------
    >>> import torch
    >>> f = Flatten()
    >>> z = f(torch.zeros(2, 3, 4, 4))
    >>> print(z.shape, f.inverse(z).shape, f.in_size)
    torch.Size([2, 48]) torch.Size([2, 3, 4, 4]) (3, 4, 4)
    """

    def __init__(self, in_size: Optional[Sequence[int]] = None):
        in_size = None if in_size is None else tuple(int(n) for n in in_size)
        super().__init__(None, event_dim=None if in_size is None else len(in_size))
        self.in_size = in_size

    def _transform(self, event_dim: int) -> ReshapeTransform:
        assert self.in_size is not None  # known from the constructor or the first call
        return ReshapeTransform(torch.Size(self.in_size), torch.Size((math.prod(self.in_size),)))

    def forward(self, x: torch.Tensor, y=None, compute_jacobian: bool = True) -> torch.Tensor:
        if self.in_size is None:
            if x.dim() < 2:
                raise ValueError(f"Flatten needs a batch dim and features, got {tuple(x.shape)}")
            self.in_size = tuple(x.shape[1:])
        features = tuple(x.shape[x.dim() - len(self.in_size):])
        if features != self.in_size:
            raise ValueError(f"Flatten expects features {self.in_size}, got {features}")
        return super().forward(x, y, compute_jacobian)

    def inverse(self, z: torch.Tensor, y=None) -> torch.Tensor:
        if self.in_size is None:
            raise ValueError("Flatten does not know the shape to restore: call it forward "
                             "once, or pass in_size")
        return super().inverse(z, y)

    def extra_repr(self) -> str:
        return f"in_size={self.in_size}"
