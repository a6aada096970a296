"""``Permutation``, ``Shuffle`` and ``Reverse``: reorder features or channels (Pyro's
``Permute``)."""

from typing import Optional, Sequence, Union

import torch
from pyro.distributions.transforms import Permute

from .flow import Flow


class Permutation(Flow):
    r"""Reorder the first feature dimension: features of vectors, channels of images.

    .. math::
        z_i = x_{\pi(i)}, \qquad \log|\det J| = 0

    The transform is Pyro's ``Permute`` on dim ``-event_dim``; ``event_dim`` is learnt from
    the first input (1 for ``(batch, D)``, 3 for ``(batch, C, H, W)``) unless given.

    Parameters
    ----------
    permute_indices : sequence of int
        A permutation :math:`\pi` of ``range(in_features)``.
    event_dim : int, optional

    Examples
    --------
    >>> import torch
    >>> a = torch.arange(1, 17).view(1, 4, 2, 2)
    >>> f = Permutation([0, 3, 1, 2])
    >>> print(f(a)[0, :, 0, 0], f.inverse(f(a))[0, :, 0, 0])
    tensor([ 1, 13,  5,  9]) tensor([ 1,  5,  9, 13])
    """

    permute_indices: torch.Tensor  # a buffer

    def __init__(self, permute_indices: Union[Sequence[int], torch.Tensor], *,
                 event_dim: Optional[int] = None):
        indices = torch.as_tensor(permute_indices, dtype=torch.long).flatten()
        if not torch.equal(indices.sort().values, torch.arange(len(indices))):
            raise ValueError(
                f"permute_indices must be a permutation of range({len(indices)}), got "
                f"{indices.tolist()}"
            )
        super().__init__(len(indices), event_dim=event_dim)
        self.register_buffer("permute_indices", indices)

    @property
    def inv_permute_indices(self) -> torch.Tensor:
        return torch.argsort(self.permute_indices)

    def _transform(self, event_dim: int) -> Permute:
        if event_dim < 1:
            raise ValueError(f"{self._get_name()} needs event_dim >= 1, got {event_dim}")
        return Permute(self.permute_indices, dim=-event_dim)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}"


class Shuffle(Permutation):
    r"""A random :class:`Permutation` of ``in_features``, drawn with torch's generator.

    .. math::
        z_i = x_{\pi(i)}, \qquad \pi \sim \mathrm{Uniform}(S_D)

    Parameters
    ----------
    in_features : int
        The number of features :math:`D`.
    event_dim : int, optional
        The event dims of the values (default: from the first call).

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> print(Shuffle(4).permute_indices)
    tensor([0, 1, 3, 2])
    """

    def __init__(self, in_features: int, *, event_dim: Optional[int] = None):
        super().__init__(torch.randperm(in_features), event_dim=event_dim)


class Reverse(Permutation):
    r"""Reverse the order of ``in_features``: a :class:`Permutation` with
    :math:`\pi(i) = D - 1 - i`.

    Parameters
    ----------
    in_features : int
        The number of features :math:`D`.
    event_dim : int, optional
        The event dims of the values (default: from the first call).

    Examples
    --------
    >>> import torch
    >>> print(Reverse(3)(torch.tensor([[1., 2., 3.]])))
    tensor([[3., 2., 1.]])
    """

    def __init__(self, in_features: int, *, event_dim: Optional[int] = None):
        super().__init__(torch.arange(in_features - 1, -1, -1), event_dim=event_dim)
