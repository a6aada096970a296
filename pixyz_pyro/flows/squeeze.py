"""``Squeeze`` and ``Unsqueeze``: Real NVP's space-to-depth reshuffle and its inverse."""

from .flow import Flow
from .transforms.space_to_depth import SpaceToDepth


class Squeeze(Flow):
    r"""Squeeze ``[C, H, W]`` images into ``[4C, H/2, W/2]``.

    .. math::
        z_{4c + 2i + j,\, h,\, w} = x_{c,\, 2h + i,\, 2w + j}, \qquad \log|\det J| = 0

    Its transform is :class:`~pixyz_pyro.flows.transforms.SpaceToDepth`.

    Examples
    --------
    >>> import torch
    >>> a = torch.arange(1, 17).view(1, 1, 4, 4)
    >>> f = Squeeze()
    >>> print(f(a))
    tensor([[[[ 1,  3],
              [ 9, 11]],
    <BLANKLINE>
             [[ 2,  4],
              [10, 12]],
    <BLANKLINE>
             [[ 5,  7],
              [13, 15]],
    <BLANKLINE>
             [[ 6,  8],
              [14, 16]]]])
    >>> print(torch.equal(f.inverse(f(a)), a), f.logdet_jacobian)
    True tensor([0])
    """

    def __init__(self):
        super().__init__(None, event_dim=3)

    def _transform(self, event_dim: int):
        return SpaceToDepth()


class Unsqueeze(Squeeze):
    r"""Unsqueeze ``[C, H, W]`` images into ``[C/4, 2H, 2W]``, the inverse of :class:`Squeeze`.

    .. math::
        z_{c,\, 2h + i,\, 2w + j} = x_{4c + 2i + j,\, h,\, w}, \qquad \log|\det J| = 0

    Examples
    --------
    >>> import torch
    >>> a = torch.arange(1, 17).view(1, 4, 2, 2)
    >>> print(Unsqueeze()(a))
    tensor([[[[ 1,  5,  2,  6],
              [ 9, 13, 10, 14],
              [ 3,  7,  4,  8],
              [11, 15, 12, 16]]]])
    """

    def _transform(self, event_dim: int):
        return SpaceToDepth().inv
