"""Affine coupling with a binary mask over features, channels or a checkerboard (Real NVP).

Pyro's ``AffineCoupling`` splits the last dimension in two and feeds the first part to a
hypernet. Pixyz's coupling instead multiplies by a mask of the input's shape (channel-wise
or checkerboard, on vectors or ``[C, H, W]`` images) and feeds the masked input, at full
size, to user networks. These transforms express that, as Pyro transforms.
"""

from functools import partial
from typing import Callable, Optional, Sequence

import torch
from pyro.distributions.conditional import ConditionalTransform
from pyro.distributions.torch_transform import TransformModule

from .._util import sum_rightmost
from .event_dim import EventDimTransform

MASK_TYPES = ("channel_wise", "checkerboard")


def channel_wise_mask(channels: int, inverse_mask: bool = False) -> torch.Tensor:
    """Ones on the first ``channels // 2`` channels (the last ones if ``inverse_mask``).

    >>> channel_wise_mask(5)
    tensor([1., 1., 0., 0., 0.])
    >>> channel_wise_mask(5, inverse_mask=True)
    tensor([0., 0., 1., 1., 1.])
    """
    mask = torch.zeros(channels)
    if inverse_mask:
        mask[channels // 2:] = 1
    else:
        mask[: channels // 2] = 1
    return mask


def checkerboard_mask(height: int, width: int, inverse_mask: bool = False) -> torch.Tensor:
    """A checkerboard with a one at the top-left corner (a zero if ``inverse_mask``).

    >>> checkerboard_mask(2, 3)
    tensor([[1., 0., 1.],
            [0., 1., 0.]])
    """
    rows = torch.arange(height).unsqueeze(-1)
    cols = torch.arange(width)
    return ((rows + cols + (0 if inverse_mask else 1)) % 2).float()


def coupling_mask(event_shape: Sequence[int], mask_type: str, inverse_mask: bool) -> torch.Tensor:
    """The mask for inputs whose features have ``event_shape``; it broadcasts against them.

    Channel-wise masks split the first feature dim; checkerboards cover the last two.
    """
    if mask_type == "checkerboard":
        if len(event_shape) < 2:
            raise ValueError(
                f"a checkerboard mask needs image features [C, H, W], got features "
                f"{tuple(event_shape)}"
            )
        return checkerboard_mask(event_shape[-2], event_shape[-1], inverse_mask)
    mask = channel_wise_mask(event_shape[0], inverse_mask)
    return mask.reshape((-1,) + (1,) * (len(event_shape) - 1))


class ConditionedMaskedAffineCoupling(EventDimTransform):
    r"""Masked affine coupling with fixed networks.

    .. math::
        z = m \odot x + (1 - m) \odot \left(x \odot e^{s(m \odot x)} + t(m \odot x)\right),
        \qquad \log|\det J| = \sum (1 - m) \odot s(m \odot x)

    where :math:`m` is the binary mask and ``params(m * x) = (s, t)``, both of ``x``'s shape.

    Parameters
    ----------
    params : callable
        Maps the masked input to ``(log_scale, shift)``.
    mask_type : {"channel_wise", "checkerboard"}
    inverse_mask : bool
        Swap the roles of the two halves.
    event_dim : int
        Number of feature dims: 1 for vectors, 3 for ``[C, H, W]`` images.
    """

    bijective = True

    def __init__(self, params: Callable, mask_type: str = "channel_wise",
                 inverse_mask: bool = False, event_dim: int = 1):
        super().__init__(cache_size=1)
        if mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
        self._params = params
        self.mask_type = mask_type
        self.inverse_mask = inverse_mask
        self._event_dim = event_dim
        self._cached_log_scale = None

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """The mask for ``x`` (shape ``batch_shape + features``), on ``x``'s device."""
        event_shape = x.shape[x.dim() - self.event_dim:]
        return coupling_mask(event_shape, self.mask_type, self.inverse_mask).to(x)

    def _scale_shift(self, x_masked: torch.Tensor, mask: torch.Tensor):
        log_scale, shift = self._params(x_masked)
        keep = 1 - mask
        return log_scale * keep, shift * keep

    def _call(self, x):
        mask = self.mask(x)
        x_masked = mask * x
        log_scale, shift = self._scale_shift(x_masked, mask)
        self._cached_log_scale = log_scale
        return x_masked + (1 - mask) * x * torch.exp(log_scale) + shift

    def _inverse(self, z):
        mask = self.mask(z)
        z_masked = mask * z
        log_scale, shift = self._scale_shift(z_masked, mask)
        self._cached_log_scale = log_scale
        return z_masked + ((1 - mask) * z - shift) * torch.exp(-log_scale)

    def log_abs_det_jacobian(self, x, z):
        x_old, z_old = self._cached_x_y
        if self._cached_log_scale is not None and x is x_old and z is z_old:
            log_scale = self._cached_log_scale
        else:
            mask = self.mask(x)
            log_scale, _ = self._scale_shift(mask * x, mask)
        return sum_rightmost(log_scale, self.event_dim)


class MaskedAffineCoupling(ConditionedMaskedAffineCoupling, TransformModule, ConditionalTransform):
    r"""Masked affine coupling whose scale and shift come from user networks (Real NVP).

    .. math::
        z = m \odot x + (1 - m) \odot \left(x \odot e^{s(m \odot x)} + t(m \odot x)\right)

    Give either ``scale_net`` and ``translate_net`` (each ``x -> tensor``) or
    ``scale_translate_net`` (``x -> (s, t)``). Networks receive the masked input at full
    size; with a conditioning variable they are called as ``net(x, y)``. Used directly, this
    is an unconditional ``TransformModule``; ``condition(y)`` gives the transform for ``y``, so
    it also serves ``pyro.distributions.ConditionalTransformedDistribution`` (its ``.inv`` is
    the unconditional inverse: wrap it in :class:`ConditionalView` first). Inputs with
    several batch dims are flattened to one before the networks see them.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> t = MaskedAffineCoupling(scale_translate_net=lambda x: (torch.tanh(x.flip(-1)), x.flip(-1)),
    ...                          mask_type="checkerboard", event_dim=3)
    >>> x = torch.randn(2, 1, 2, 2)
    >>> z = t(x)
    >>> torch.allclose(t.inv(z.clone()), x)
    True
    >>> print(t.log_abs_det_jacobian(x, z))
    tensor([ 1.4265, -0.1101])
    """

    def __init__(self, scale_net: Optional[Callable] = None,
                 translate_net: Optional[Callable] = None,
                 scale_translate_net: Optional[Callable] = None,
                 mask_type: str = "channel_wise", inverse_mask: bool = False,
                 event_dim: int = 1):
        super().__init__(self._nets, mask_type, inverse_mask, event_dim)
        if scale_translate_net is None and (scale_net is None or translate_net is None):
            raise ValueError(
                "AffineCoupling needs scale_net and translate_net, or scale_translate_net"
            )
        self.scale_net = scale_net
        self.translate_net = translate_net
        self.scale_translate_net = scale_translate_net

    def _nets(self, x_masked: torch.Tensor, context: Optional[torch.Tensor] = None):
        lead = x_masked.shape[: x_masked.dim() - self.event_dim]
        flatten = len(lead) != 1 and context is None
        if flatten:
            x_masked = x_masked.reshape((-1,) + x_masked.shape[len(lead):])
        args = (x_masked,) if context is None else (x_masked, context)
        if self.scale_translate_net is not None:
            log_scale, shift = self.scale_translate_net(*args)
        else:  # both given: checked by the constructor
            assert self.scale_net is not None and self.translate_net is not None
            log_scale, shift = self.scale_net(*args), self.translate_net(*args)
        if flatten:
            log_scale = log_scale.reshape(lead + log_scale.shape[1:])
            shift = shift.reshape(lead + shift.shape[1:])
        return log_scale, shift

    def condition(self, context):
        return ConditionedMaskedAffineCoupling(
            partial(self._nets, context=context), self.mask_type, self.inverse_mask,
            self.event_dim,
        )
