"""The evidence lower bound.

.. math::

    \\mathcal{L}(x) = \\mathbb{E}_{q(z|x)}\\left[\\log p(x, z) - \\log q(z|x)\\right]
    \\le \\log p(x)
"""
import torch

from ..dist.distribution import Distribution
from ..dist.shapes import numel
from ..errors import LossError
from ..validate_args import check_sample_shape
from .base import Loss, SampleShape
from .expectation import Expectation
from .pdf import LogProb


def ELBO(p: Distribution, q: Distribution, sample_shape: SampleShape = torch.Size([1]),  # noqa: N802
         estimator: str = "reparam") -> Loss:  # (Pixyz's name)
    """:math:`\\mathbb{E}_{q}[\\log p - \\log q]`, one value per batch element.

    ``estimator="stl"`` is "sticking the landing" (Roeder et al. 2017): the same value,
    with :math:`\\log q` scored under stopped parameters, so that the gradient has no
    score term (zero variance at the exact posterior),

    .. math::

        \\frac{1}{S}\\sum_{s} \\nabla_\\phi \\left[\\log p(x, z_s(\\phi))
        - \\log q_{\\bar\\phi}(z_s(\\phi)|x)\\right]

    (a :class:`~pixyz_pyro.loss.VRBound` with :math:`\\alpha = 1`).

    Parameters
    ----------
    p : Distribution
        The joint :math:`p(x, z)` (a product such as ``p * prior``).
    q : Distribution
        The approximate posterior :math:`q(z|x)`.
    sample_shape : int or sequence of int
        The number of draws of :math:`z` per batch element.
    estimator : {"reparam", "stl"}
        The gradient estimator (see above).

    Examples
    --------
    >>> from pixyz_pyro.dist import Normal
    >>> q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"]) * Normal(
    ...     loc=0., scale=1., var=["z"])
    >>> print(ELBO(p, q))
    \\mathbb{E}_{q(z|x)} \\left[\\log p(x,z) - \\log q(z|x) \\right]
    >>> print(ELBO(p, q, estimator="stl"))
    \\frac{1}{1}\\sum_{i=1}^{1} \\log \\frac{p(x,z_i)}{q(z_i|x)}
    >>> _ = torch.manual_seed(0)
    >>> round(float(ELBO(p, q, [100], estimator="stl").eval({"x": torch.zeros(1, 1)})), 4)
    -1.4444
    """
    if estimator == "reparam":
        return Expectation(q, LogProb(p) - LogProb(q), sample_shape)
    if estimator != "stl":
        raise LossError(f"ELBO({p.prob_text}, {q.prob_text}): estimator must be 'reparam' "
                        f"or 'stl' (for 'dreg' use IWAE), got {estimator!r}")
    from .bounds import VRBound
    shape = check_sample_shape("sample_shape", sample_shape, f"ELBO over {q.prob_text}")
    return VRBound(p, q, numel(shape), alpha=1.0, estimator="stl")
