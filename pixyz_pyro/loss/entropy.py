"""Entropy and cross-entropy.

.. math::

    H[p] = -\\mathbb{E}_{p}[\\log p], \\qquad H[p, q] = -\\mathbb{E}_{p}[\\log q]
"""
from typing import List, Tuple

import torch

from ..dist.distribution import Distribution
from .base import Loss, SampleShape
from .expectation import Expectation
from .pdf import DistributionLoss, LogProb


class Entropy(DistributionLoss):
    """:math:`H[p]`: analytic (the family's entropy) or Monte Carlo.

    .. math::

        H[p] = -\\mathbb{E}_{p(x)}[\\log p(x)]

    Parameters
    ----------
    p : Distribution
        The distribution.
    sample_shape : int or sequence of int
        The number of draws when ``analytical=False``.
    analytical : bool
        Use the family's closed-form entropy (default).

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

    def __init__(self, p: Distribution, analytical: bool = True,
                 sample_shape: SampleShape = torch.Size([1])) -> None:
        super().__init__(p)
        self.p = p
        self.analytical = analytical
        self.mc = None if analytical else -Expectation(p, LogProb(p), sample_shape)
        self._freeze()

    @property
    def children(self) -> Tuple[Loss, ...]:
        return (self.mc,) if self.mc is not None else ()

    @property
    def _input_var(self) -> List[str]:
        return list(self.p.input_var)


def CrossEntropy(p: Distribution, q: Distribution, analytical: bool = False,  # noqa: N802
                 sample_shape: SampleShape = torch.Size([1])) -> Loss:
    """The cross-entropy, estimated by Monte Carlo with draws of ``p``, or with
    ``analytical=True`` in closed form (Pixyz's name and signature).

    .. math::

        H[p, q] = -\\mathbb{E}_{p}[\\log q] = H[p] + D_{KL}[p \\| q]

    Parameters
    ----------
    p : Distribution
        The distribution the draws come from.
    q : Distribution
        The distribution that scores them (the same variables).
    analytical : bool
        ``H[p] + KL[p || q]`` from their closed forms instead of draws.
    sample_shape : int or sequence of int
        The number of draws per batch element.

    Examples
    --------
    >>> import math, torch
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc=0., scale=1., var=["x"], name="p")
    >>> q = Normal(loc=1., scale=1., var=["x"], name="q")
    >>> ce = CrossEntropy(p, q, sample_shape=[10000])
    >>> print(ce)
    - \\mathbb{E}_{p(x)} \\left[\\log q(x) \\right]
    >>> _ = torch.manual_seed(0)
    >>> round(float(ce.eval()), 1)  # log(2 pi)/2 + (1 + 1)/2 = 1.92
    1.9
    >>> p2 = Normal(loc=0., scale=1., var=["x"], features_shape=[2], name="p")
    >>> q2 = Normal(loc=1., scale=1., var=["x"], features_shape=[2], name="q")
    >>> h = CrossEntropy(p2, q2, analytical=True)
    >>> print(h)
    D_{KL} \\left[p(x)||q(x) \\right] + H \\left[ {p(x)} \\right]
    >>> torch.allclose(h.eval(), torch.tensor([2 * (0.5 * math.log(2 * math.pi) + 1.0)]))
    True
    """
    if analytical:
        from .divergences import KullbackLeibler
        return Entropy(p) + KullbackLeibler(p, q)
    return -Expectation(p, LogProb(q), sample_shape)
