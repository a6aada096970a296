"""``PlanarFlow``: the planar flow of Rezende & Mohamed (2015), on Pyro's ``Planar``."""

import torch
from pyro.distributions.transforms import Planar

from .flow import Flow
from .transforms.unconstrained_planar import UnconstrainedPlanar


class PlanarFlow(Flow):
    r"""Planar flow on vectors.

    .. math::
        f(\mathbf{x}) = \mathbf{x} + \hat{\mathbf{u}} \tanh(\mathbf{w}^\top \mathbf{x} + b),
        \qquad \log|\det J| = \log\left|1 + \hat{\mathbf{u}}^\top
        \left(1 - \tanh^2(\mathbf{w}^\top \mathbf{x} + b)\right)\mathbf{w}\right|

    With ``constraint_u=True`` this is Pyro's ``Planar``, whose :math:`\hat{\mathbf u}`
    keeps :math:`\mathbf w^\top \hat{\mathbf u} > -1` so the map is invertible (the paper's
    correction; Pixyz divided by :math:`\|\mathbf w\|` instead of :math:`\|\mathbf w\|^2`).
    With ``constraint_u=False`` (Pixyz's default), :math:`\hat{\mathbf u} = \mathbf u`.
    The parameters are the transform's ``u``, ``w`` and ``bias``.

    The inverse has no closed form: :meth:`inverse` works only on the output of the most
    recent forward call (Pyro's cache, which also serves a :class:`FlowList` of planar
    flows), and raises ``NotImplementedError`` otherwise.

    Parameters
    ----------
    in_features : int
    constraint_u : bool

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> f = PlanarFlow(2, constraint_u=True)
    >>> z = f(torch.randn(3, 2))
    >>> print(f.logdet_jacobian)
    tensor([-0.4770, -0.3664, -0.4494], grad_fn=<LogBackward0>)
    """

    def __init__(self, in_features: int, constraint_u: bool = False):
        super().__init__(in_features, event_dim=1)
        self.constraint_u = constraint_u
        self.pyro_transform = Planar(in_features) if constraint_u else UnconstrainedPlanar(
            in_features
        )

    def _transform(self, event_dim: int):
        return self.pyro_transform

    def inverse(self, z: torch.Tensor, y=None) -> torch.Tensor:
        try:
            return self.pyro_transform.inv(z)
        except KeyError:
            raise NotImplementedError(
                "PlanarFlow has no closed-form inverse; it can only invert the output of its "
                "most recent forward call"
            ) from None

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, constraint_u={self.constraint_u}"
