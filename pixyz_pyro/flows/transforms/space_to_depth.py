"""``SpaceToDepth``: Real NVP's squeeze, ``[C, H, W] -> [4C, H/2, W/2]``."""

import torch
import torch.nn.functional as F
from pyro.distributions import constraints
from pyro.distributions.transforms import Transform


class SpaceToDepth(Transform):
    r"""Move each 2x2 spatial block of ``[..., C, H, W]`` into channels.

    .. math::
        z_{4c + 2i + j,\, h,\, w} = x_{c,\, 2h + i,\, 2w + j}, \qquad \log|\det J| = 0

    This is ``torch.nn.functional.pixel_unshuffle`` with factor 2, and its inverse is
    ``pixel_shuffle``. ``SpaceToDepth().inv`` is Pixyz's ``Unsqueeze``.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(16.).reshape(1, 1, 4, 4)
    >>> print(SpaceToDepth()(x)[0, :, 0, 0])
    tensor([0., 1., 4., 5.])
    """

    domain = constraints.independent(constraints.real, 3)
    codomain = constraints.independent(constraints.real, 3)
    bijective = True

    def __eq__(self, other):
        return isinstance(other, SpaceToDepth)

    def __hash__(self):
        return hash(SpaceToDepth)

    def _call(self, x):
        height, width = x.shape[-2:]
        if height % 2 or width % 2:
            raise ValueError(
                f"Squeeze needs an even height and width, got features {tuple(x.shape[-3:])}"
            )
        return F.pixel_unshuffle(x, 2)

    def _inverse(self, z):
        if z.shape[-3] % 4:
            raise ValueError(
                f"Unsqueeze needs channels divisible by 4, got features {tuple(z.shape[-3:])}"
            )
        return F.pixel_shuffle(z, 2)

    def forward_shape(self, shape):
        *batch, channels, height, width = shape
        return torch.Size((*batch, 4 * channels, height // 2, width // 2))

    def inverse_shape(self, shape):
        *batch, channels, height, width = shape
        return torch.Size((*batch, channels // 4, 2 * height, 2 * width))

    def log_abs_det_jacobian(self, x, z):
        return torch.zeros(x.shape[:-3], dtype=x.dtype, device=x.device)
