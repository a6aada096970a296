"""Affine autoregressive flows on Pyro's ``AffineAutoregressive`` transforms: MAF and IAF.

Both are the map

.. math::
    z_d = \\mu_d(x_{<d}, y) + \\sigma_d(x_{<d}, y)\\, x_d, \\qquad
    \\log\\left|\\det \\frac{\\partial z}{\\partial x}\\right| = \\sum_d \\log \\sigma_d(x_{<d}, y)

with one MADE network (Pyro's ``AutoRegressiveNN``, or ``ConditionalAutoRegressiveNN``
with a conditioning input ``y``) giving every :math:`\\mu_d, \\log\\sigma_d` in one pass.
The forward direction reads its own input, so it takes one pass; the inverse fills one
feature per pass (``D`` passes).  The two flows differ in which direction they are used:

* :class:`MAF` (masked autoregressive flow, Papamakarios et al. 2017) maps data to noise,
  for density estimation, in ``InverseTransformedDistribution(prior, MAF(D), var=["x"])``:
  ``log_prob`` is one pass, sampling ``D`` passes;
* :class:`IAF` (inverse autoregressive flow, Kingma et al. 2016) maps noise to the
  variable, for a flexible posterior, in ``TransformedDistribution(q0, IAF(D), var=["z"],
  flow_cond_var="x")``: sampling is one pass; scoring a given value takes ``D`` passes
  (an ELBO scores its own draws from their forward pass: no inversion).
"""

from typing import Optional, Sequence, Union

import torch
from pyro.distributions.transforms import AffineAutoregressive, ConditionalAffineAutoregressive
from pyro.nn import AutoRegressiveNN, ConditionalAutoRegressiveNN

from .pyro_flow import PyroFlow

__all__ = ["AffineAutoregressiveFlow", "MAF", "IAF"]


class AffineAutoregressiveFlow(PyroFlow):
    """The affine autoregressive map :math:`z = \\mu(x) + \\sigma(x) \\odot x` (see
    :mod:`pixyz_pyro.flows.autoregressive`) as a Pixyz flow on Pyro's transform.

    .. math::
        z_d = \\mu_d(x_{<d}, y) + \\sigma_d(x_{<d}, y)\\, x_d, \\qquad
        \\log|\\det J| = \\sum_{d=1}^D \\log \\sigma_d(x_{<d}, y)

    Parameters
    ----------
    in_features : int
        ``D``, the number of features (``event_dim`` 1).
    hidden_features : list of int, optional
        Hidden layers of the masked network (Pyro's default: ``[3 D + 1]``, or ``[10 D]``
        with ``cond_features``).
    cond_features : int, optional
        Features of a conditioning input ``y`` (``forward(x, y)``); makes the transform
        Pyro's ``ConditionalAffineAutoregressive``.
    permutation : sequence of int, optional
        The order of the features; by default the natural order ``0..D-1`` (Pyro's own
        default is a random one).  Stack flows with :class:`~pixyz_pyro.flows.Reverse`
        between them to alternate it.
    stable : bool
        Pyro's numerically stable variant, :math:`\\sigma = \\mathrm{sigmoid}(\\cdot)`.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> f = AffineAutoregressiveFlow(3, hidden_features=[8])
    >>> x = torch.randn(2, 3)
    >>> z = f(x)
    >>> f.logdet_jacobian.shape
    torch.Size([2])
    >>> bool(torch.allclose(f.inverse(z), x, atol=1e-5))
    True
    """

    def __init__(self, in_features: int, hidden_features: Optional[Sequence[int]] = None,
                 cond_features: Optional[int] = None,
                 permutation: Optional[Sequence[int]] = None, stable: bool = False):
        if not isinstance(in_features, int) or isinstance(in_features, bool) or \
                in_features < 1:
            raise ValueError(f"{type(self).__name__}: in_features is the number of features, "
                             f"a positive integer; got {in_features!r}")
        order = torch.arange(in_features) if permutation is None \
            else torch.as_tensor(list(permutation), dtype=torch.long)
        if sorted(order.tolist()) != list(range(in_features)):
            raise ValueError(f"{type(self).__name__}: permutation must order the "
                             f"{in_features} features 0..{in_features - 1}, got "
                             f"{order.tolist()}")
        if cond_features:
            hidden = list(hidden_features or [10 * in_features])
            net = ConditionalAutoRegressiveNN(in_features, cond_features, hidden,
                                              permutation=order)  # type: ignore[arg-type]
            transform: Union[ConditionalAffineAutoregressive, AffineAutoregressive] = \
                ConditionalAffineAutoregressive(net, stable=stable)
        else:  # (pyro annotates permutation as the deprecated LongTensor type)
            hidden = list(hidden_features or [3 * in_features + 1])
            net = AutoRegressiveNN(in_features, hidden,
                                   permutation=order)  # type: ignore[arg-type]
            transform = AffineAutoregressive(net, stable=stable)
        super().__init__(transform, in_features, event_dim=1)
        self.cond_features = cond_features or None
        self.hidden_features = hidden

    def extra_repr(self) -> str:
        cond = f", cond_features={self.cond_features}" if self.cond_features else ""
        return f"in_features={self.in_features}, hidden_features={self.hidden_features}{cond}"


class MAF(AffineAutoregressiveFlow):
    """A masked autoregressive flow layer (Papamakarios et al. 2017): data to noise in one
    pass, for density estimation.

    .. math::
        \\log p(x) = \\log p_{prior}(f(x)) + \\sum_d \\log \\sigma_d(x_{<d}), \\qquad
        f(x)_d = \\mu_d(x_{<d}) + \\sigma_d(x_{<d})\\, x_d

    Use it in :class:`~pixyz_pyro.dist.InverseTransformedDistribution`: ``log_prob`` is one
    pass of the network; ``sample`` inverts it, one pass per feature.

    Parameters
    ----------
    in_features : int
        ``D``, the number of features.
    hidden_features : list of int, optional
        Hidden layers of the masked network.
    cond_features : int, optional
        Features of a conditioning input (Pyro's ``ConditionalAffineAutoregressive``).
    permutation : sequence of int, optional
        The order of the features (natural by default).
    stable : bool
        Pyro's numerically stable variant.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import InverseTransformedDistribution, Normal
    >>> from pixyz_pyro.flows import FlowList, Reverse
    >>> _ = torch.manual_seed(0)
    >>> prior = Normal(loc=torch.zeros(2), scale=torch.ones(2), var=["z"], name="p_{prior}")
    >>> flow = FlowList([MAF(2, [16]), Reverse(2), MAF(2, [16])])
    >>> p = InverseTransformedDistribution(prior, flow, var=["x"])
    >>> p.get_log_prob({"x": torch.zeros(4, 2)}).shape
    torch.Size([4])
    >>> p.sample(batch_n=5)["x"].shape
    torch.Size([5, 2])
    """


class IAF(AffineAutoregressiveFlow):
    """An inverse autoregressive flow layer (Kingma et al. 2016): noise to the variable in
    one pass, for a flexible posterior :math:`q(z|x)`.

    .. math::
        z = f(z_0, x), \\quad z_0 \\sim q_0(z_0|x), \\qquad
        \\log q(z|x) = \\log q_0(z_0|x) - \\sum_d \\log \\sigma_d(z_{0,<d}, x)

    Use it in :class:`~pixyz_pyro.dist.TransformedDistribution`, with
    ``flow_cond_var="x"`` to condition the flow on the data (``cond_features`` = its
    features): sampling is one pass; scoring a given value inverts the flow, one pass per
    feature, while a draw scored in the evaluation that drew it (an ELBO's
    :math:`\\mathbb{E}_q[\\log q(z|x)]`) takes its log-determinant from its forward pass.

    Parameters
    ----------
    in_features : int
        ``D``, the number of features.
    hidden_features : list of int, optional
        Hidden layers of the masked network.
    cond_features : int, optional
        Features of a conditioning input (Pyro's ``ConditionalAffineAutoregressive``).
    permutation : sequence of int, optional
        The order of the features (natural by default).
    stable : bool
        Pyro's numerically stable variant.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal, TransformedDistribution
    >>> _ = torch.manual_seed(0)
    >>> q0 = Normal(loc="x", scale=1., var=["z0"], cond_var=["x"], features_shape=[2],
    ...             name="q_0")
    >>> q = TransformedDistribution(q0, IAF(2, [16], cond_features=2), var=["z"], name="q",
    ...                             flow_cond_var="x")
    >>> draw = q.sample({"x": torch.zeros(3, 2)})
    >>> sorted(draw), draw["z"].shape
    (['x', 'z', 'z0'], torch.Size([3, 2]))
    >>> q.get_log_prob(draw).shape
    torch.Size([3])
    """
