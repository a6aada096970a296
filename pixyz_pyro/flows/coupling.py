"""``AffineCoupling``: Real NVP's masked affine coupling layer."""

from typing import Callable, Optional

import torch

from .flow import Flow
from .transforms import masked_affine_coupling as _masks
from .transforms.masked_affine_coupling import MASK_TYPES, MaskedAffineCoupling, coupling_mask

__all__ = ["AffineCoupling", "channel_wise_mask", "checkerboard_mask"]


def checkerboard_mask(height: int, width: int, inverse_mask: bool = False):
    """Pixyz's public checkerboard mask, a float32 NumPy array (the transforms use the
    tensor form, :func:`pixyz_pyro.flows.transforms.checkerboard_mask`).

    >>> checkerboard_mask(2, 3)
    array([[1., 0., 1.],
           [0., 1., 0.]], dtype=float32)
    """
    return _masks.checkerboard_mask(height, width, inverse_mask).numpy()


def channel_wise_mask(channels: int, inverse_mask: bool = False):
    """Pixyz's public channel-wise mask, a float32 NumPy array.

    >>> channel_wise_mask(4, inverse_mask=True)
    array([0., 0., 1., 1.], dtype=float32)
    """
    return _masks.channel_wise_mask(channels, inverse_mask).numpy()


class AffineCoupling(Flow):
    r"""Affine coupling layer (Dinh et al., Real NVP).

    .. math::
        \mathbf z = \mathbf m \odot \mathbf x + (1 - \mathbf m) \odot \left(\mathbf x \odot
        \exp(s(\mathbf m \odot \mathbf x)) + t(\mathbf m \odot \mathbf x)\right), \qquad
        \log|\det J| = \sum (1 - \mathbf m) \odot s(\mathbf m \odot \mathbf x)

    The mask :math:`\mathbf m` keeps half the input: the first half of the features or
    channels (``"channel_wise"``) or a checkerboard over the pixels (``"checkerboard"``);
    ``inverse_mask=True`` keeps the other half. The networks see the masked input at full
    size and return :math:`s` and :math:`t` of the same shape: either ``scale_net`` and
    ``translate_net``, or ``scale_translate_net`` returning ``(s, t)``. Called with ``y``,
    they are called as ``net(x, y)``, which makes the coupling conditional.

    Its transform is :class:`~pixyz_pyro.flows.transforms.MaskedAffineCoupling`, a Pyro
    ``TransformModule`` that also has ``.condition(y)``.

    Parameters
    ----------
    in_features : int
        Number of features (vectors) or channels (images).
    mask_type : {"channel_wise", "checkerboard"}
    scale_net, translate_net, scale_translate_net : callable, optional
    inverse_mask : bool
    event_dim : int, optional
        1 for vectors, 3 for images. Checkerboards default to 3; channel-wise couplings learn
        it from their first input.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> net = torch.nn.Linear(4, 8)
    >>> f = AffineCoupling(4, scale_translate_net=lambda x: net(x).chunk(2, dim=-1))
    >>> x = torch.randn(3, 4)
    >>> z = f(x)
    >>> print(torch.equal(z[:, :2], x[:, :2]), torch.allclose(f.inverse(z.clone()), x))
    True True
    >>> print(f.logdet_jacobian)
    tensor([-1.3006, -1.1691, -0.6638], grad_fn=<SumBackward1>)
    """

    def __init__(self, in_features: int, mask_type: str = "channel_wise",
                 scale_net: Optional[Callable] = None, translate_net: Optional[Callable] = None,
                 scale_translate_net: Optional[Callable] = None, inverse_mask: bool = False,
                 *, event_dim: Optional[int] = None):
        if mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
        if event_dim is None and mask_type == "checkerboard":
            event_dim = 3
        super().__init__(in_features, event_dim=event_dim)
        self.mask_type = mask_type
        self.inverse_mask = inverse_mask
        self.pyro_transform = MaskedAffineCoupling(
            scale_net, translate_net, scale_translate_net, mask_type, inverse_mask,
            event_dim=1 if event_dim is None else event_dim,
        )

    @property
    def scale_net(self):
        return self.pyro_transform.scale_net

    @property
    def translate_net(self):
        return self.pyro_transform.translate_net

    @property
    def scale_translate_net(self):
        return self.pyro_transform.scale_translate_net

    def _transform(self, event_dim: int) -> MaskedAffineCoupling:
        self.pyro_transform.event_dim = event_dim
        return self.pyro_transform

    def build_mask(self, x: torch.Tensor) -> torch.Tensor:
        """The mask for ``x`` with Pixyz's leading batch dim of 1, e.g. ``(1, C, 1, 1)``.

        >>> f = AffineCoupling(2, mask_type="checkerboard", inverse_mask=True,
        ...                    scale_translate_net=lambda x: (x, x))
        >>> print(f.build_mask(torch.zeros(1, 2, 2, 3)))
        tensor([[[[0., 1., 0.],
                  [1., 0., 1.]]]])
        """
        event_dim = self._event_dim_of(x)
        mask = coupling_mask(x.shape[x.dim() - event_dim:], self.mask_type, self.inverse_mask)
        return mask.reshape((1,) * (event_dim - mask.dim() + 1) + mask.shape).to(x)

    def get_parameters(self, x: torch.Tensor, y: Optional[torch.Tensor] = None):
        """The networks' ``(log_s, t)`` for (already masked) ``x``, as Pixyz returns them."""
        self._transform(self._event_dim_of(x))
        return self.pyro_transform._nets(x, y)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, mask_type={self.mask_type}, "
                f"inverse_mask={self.inverse_mask}")
