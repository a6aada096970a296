"""``UnconstrainedPlanar``: Pyro's ``Planar`` without its invertibility constraint on u."""

from pyro.distributions.transforms import Planar


class UnconstrainedPlanar(Planar):
    r"""Pyro's planar transform with :math:`\hat u = u` (Pixyz's ``constraint_u=False``).

    .. math::
        z = x + u \tanh(w^\top x + b), \qquad
        \log|\det J| = \log\left|1 + u^\top \left(1 - \tanh^2(w^\top x + b)\right) w\right|

    Pyro's ``Planar`` replaces :math:`u` by :math:`\hat u`, chosen so that
    :math:`w^\top \hat u > -1` and the map is invertible; this one leaves :math:`u` alone.
    The map, the cached inverse and the log-determinant are Pyro's.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> t = UnconstrainedPlanar(2)
    >>> x = torch.randn(3, 2)
    >>> print(t.log_abs_det_jacobian(x, t(x)))
    tensor([-0.2041, -0.1617, -0.1938], grad_fn=<LogBackward0>)
    """

    def u_hat(self, u, w):
        return u
