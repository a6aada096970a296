"""The evidence lower bound.

.. math::

    \\mathcal{L}(x) = \\mathbb{E}_{q(z|x)}\\left[\\log p(x, z) - \\log q(z|x)\\right]
    \\le \\log p(x)
"""
import torch

from .expectation import Expectation
from .pdf import LogProb


def ELBO(p, q, sample_shape=torch.Size([1])):  # noqa: N802 - Pixyz's name
    """:math:`\\mathbb{E}_{q}[\\log p - \\log q]`, one value per batch element.

    Examples
    --------
    >>> from pixyz_pyro.dist import Normal
    >>> q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"]) * Normal(
    ...     loc=0., scale=1., var=["z"])
    >>> print(ELBO(p, q))
    \\mathbb{E}_{q(z|x)} \\left[\\log p(x,z) - \\log q(z|x) \\right]
    """
    return Expectation(q, LogProb(p) - LogProb(q), sample_shape)
