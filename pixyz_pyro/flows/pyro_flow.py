"""``PyroFlow``: any Pyro transform used as a Pixyz flow."""

from typing import Optional

from pyro.distributions.conditional import ConditionalTransform
from pyro.distributions.transforms import Transform
from torch import nn

from .flow import AnyTransform, Flow


class PyroFlow(Flow):
    r"""Use a Pyro ``Transform``, ``TransformModule`` or ``ConditionalTransformModule`` as a
    :class:`Flow`.

    .. math::
        z = T(x), \qquad \mathrm{logdet\_jacobian} = \log|\det \partial T(x) / \partial x|

    The transform's parameters become the flow's (it is registered as ``pyro_transform``).
    A conditional transform is conditioned on ``y`` at each call. An elementwise transform
    (``domain.event_dim == 0``) has its log-determinant summed over the features, which by
    default are everything after the first dim (Pixyz's convention).

    Parameters
    ----------
    transform : Transform or ConditionalTransform
    in_features : int, optional
    event_dim : int, optional
        Number of feature dims; defaults to the transform's ``domain.event_dim`` when that is
        positive, else it is learnt from the first input.

    Examples
    --------
    >>> import torch
    >>> from pyro.distributions.transforms import Spline
    >>> _ = torch.manual_seed(0)
    >>> f = PyroFlow(Spline(2))
    >>> z = f(torch.randn(3, 2))
    >>> print(f.logdet_jacobian.shape)
    torch.Size([3])
    >>> round(f.logdet_jacobian.sum().item(), 4)
    -4.9256
    """

    def __init__(self, transform: AnyTransform, in_features=None, *,
                 event_dim: Optional[int] = None):
        if not isinstance(transform, (Transform, ConditionalTransform)):
            raise TypeError(
                "PyroFlow wraps a pyro.distributions Transform or ConditionalTransform, got "
                f"{type(transform).__name__}"
            )
        if event_dim is None:
            domain = getattr(transform, "domain", None)
            if domain is not None and domain.event_dim > 0:
                event_dim = domain.event_dim
        super().__init__(in_features, event_dim=event_dim)
        self.pyro_transform = transform

    def _transform(self, event_dim: int) -> AnyTransform:
        return self.pyro_transform

    def extra_repr(self) -> str:
        if isinstance(self.pyro_transform, nn.Module):  # a module prints itself
            return ""
        return f"pyro_transform={type(self.pyro_transform).__name__}"
