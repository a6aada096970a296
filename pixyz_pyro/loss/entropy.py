"""Entropy and cross-entropy.

.. math::

    H[p] = -\\mathbb{E}_{p}[\\log p], \\qquad H[p, q] = -\\mathbb{E}_{p}[\\log q]
"""
import torch

from .expectation import Expectation
from .pdf import DistributionLoss, LogProb


class Entropy(DistributionLoss):
    """:math:`H[p]`: analytic (the family's entropy) or Monte Carlo.

    Examples
    --------
    >>> import math, torch
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc=0., scale=1., var=["x"])
    >>> print(Entropy(p))
    H \\left[ {p(x)} \\right]
    >>> torch.allclose(Entropy(p).eval(), torch.tensor(0.5 * math.log(2 * math.pi * math.e)))
    True
    """

    def __init__(self, p, analytical: bool = True, sample_shape=torch.Size([1])):
        super().__init__(p)
        self.p = p
        self.analytical = analytical
        self.mc = None if analytical else -Expectation(p, LogProb(p), sample_shape)
        self._freeze()

    @property
    def children(self):
        return (self.mc,) if self.mc is not None else ()

    @property
    def _input_var(self):
        return list(self.p.input_var)


def CrossEntropy(p, q, analytical: bool = False,  # noqa: N802 - Pixyz's name
                 sample_shape=torch.Size([1])):
    """:math:`H[p, q] = -\\mathbb{E}_{p}[\\log q]`: Monte Carlo, or with
    ``analytical=True`` the closed form :math:`H[p] + D_{KL}[p \\| q]`.

    Examples
    --------
    >>> import math, torch
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc=0., scale=1., var=["x"], features_shape=[2], name="p")
    >>> q = Normal(loc=1., scale=1., var=["x"], features_shape=[2], name="q")
    >>> h = CrossEntropy(p, q, analytical=True)
    >>> print(h)
    D_{KL} \\left[p(x)||q(x) \\right] + H \\left[ {p(x)} \\right]
    >>> torch.allclose(h.eval(), torch.tensor([2 * (0.5 * math.log(2 * math.pi) + 1.0)]))
    True
    """
    if analytical:
        from .divergences import KullbackLeibler
        return Entropy(p) + KullbackLeibler(p, q)
    return -Expectation(p, LogProb(q), sample_shape)
