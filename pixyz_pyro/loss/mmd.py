"""The maximum mean discrepancy.

.. math::

    \\mathrm{MMD}^2[p, q] = \\frac{1}{n(n-1)}\\sum_{i \\ne j} k(x_i, x_j)
    + \\frac{1}{m(m-1)}\\sum_{i \\ne j} k(y_i, y_j) - \\frac{2}{nm}\\sum_{i,j} k(x_i, y_j)

the unbiased estimator over the batch (:math:`x \\sim p`, :math:`y \\sim q`), with
reparameterised samples so that gradients reach both distributions.  A batch of one
sample has no pair :math:`i \\ne j`; for it the within-sample term is the biased
(V-statistic) one, :math:`k(x_1, x_1)`, so that the loss is defined for every batch size
(Pixyz evaluates a batch of one too).
"""
from typing import Any

import torch

from ..dist.distribution import Distribution
from ..validate_args import check_one_of, check_positive_number
from .sample_distance import SampleDistance


def _sqdist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x.unsqueeze(1) - y.unsqueeze(0)).pow(2).sum(-1)


def gaussian_rbf_kernel(x: torch.Tensor, y: torch.Tensor, sigma_sqr: float = 2.0,
                        **kwargs: Any) -> torch.Tensor:
    """:math:`k(x, y) = \\exp(-\\|x - y\\|^2 / \\sigma^2)`."""
    return torch.exp(-_sqdist(x, y) / sigma_sqr)


def inverse_multiquadratic_rbf_kernel(x: torch.Tensor, y: torch.Tensor, sigma_sqr: float = 2.0,
                                      **kwargs: Any) -> torch.Tensor:
    """:math:`k(x, y) = \\sigma^2 / (\\|x - y\\|^2 + \\sigma^2)`."""
    return sigma_sqr / (_sqdist(x, y) + sigma_sqr)


_KERNELS = {"gaussian": gaussian_rbf_kernel,
            "inv-multiquadratic": inverse_multiquadratic_rbf_kernel}


def _offdiag_mean(k: torch.Tensor) -> torch.Tensor:
    """The mean of ``k`` over pairs :math:`i \\ne j` (over the one pair when ``n == 1``)."""
    n = k.shape[0]
    if n < 2:
        return k.mean()
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


class MMD(SampleDistance):
    """:math:`D_{MMD^2}[p\\|q]`: the unbiased squared maximum mean discrepancy between the
    draws of ``p`` and of ``q`` over the batch.

    .. math::

        D_{MMD^2}[p\\|q] = \\frac{1}{n(n-1)}\\sum_{i \\ne j} k(x_i, x_j)
        + \\frac{1}{n(n-1)}\\sum_{i \\ne j} k(y_i, y_j) - \\frac{2}{n^2}\\sum_{i,j} k(x_i, y_j),
        \\quad x_i \\sim p,\\ y_j \\sim q

    It is zero in expectation when ``p`` and ``q`` are the same distribution, and one
    number for the whole batch (a scalar, not one value per element). Both sides are
    sampled with reparameterisation, so gradients reach both (InfoVAE's MMD-VAE puts
    ``q(z|x)`` against the prior).

    Parameters
    ----------
    p, q : Distribution
        The two sides: distributions of the same single variable, giving it with the same
        number of features (else ``ValueError``).
    kernel : {"gaussian", "inv-multiquadratic"}
        :math:`k(x, y) = \\exp(-\\|x - y\\|^2 / \\sigma^2)` or
        :math:`\\sigma^2 / (\\|x - y\\|^2 + \\sigma^2)`.
    **kernel_params
        ``sigma_sqr`` (:math:`\\sigma^2`, default 2), as in Pixyz.

    Raises
    ------
    ValueError
        For an unknown kernel or two different variables; when evaluated, for features
        that differ and (as an ``InputError`` naming the inputs) a batch of fewer than 2.

    Examples
    --------
    >>> import math, torch
    >>> from pixyz_pyro.dist import Normal
    >>> q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], features_shape=[1],
    ...            name="q")
    >>> prior = Normal(loc=2., scale=1., var=["z"], features_shape=[1], name="p_{prior}")
    >>> mmd = MMD(q, prior)
    >>> print(mmd)
    D_{MMD^2} \\left[q(z|x)||p_{prior}(z) \\right]

    For :math:`\\mathcal N(0, 1)` against :math:`\\mathcal N(2, 1)` and :math:`\\sigma^2 = 2`
    the exact value is :math:`\\frac{2}{\\sqrt 3}(1 - e^{-2/3}) = 0.562`:

    >>> _ = torch.manual_seed(0)
    >>> round(float(mmd.eval({"x": torch.zeros(4000, 1)})), 3)
    0.564
    >>> round(2 / math.sqrt(3) * (1 - math.exp(-2 / 3)), 3)
    0.562
    """

    def __init__(self, p: Distribution, q: Distribution, kernel: str = "gaussian",
                 **kernel_params: float) -> None:
        check_one_of("kernel", kernel, sorted(_KERNELS), "MMD")
        if "sigma_sqr" in kernel_params:
            check_positive_number("sigma_sqr", kernel_params["sigma_sqr"], "MMD")
        super().__init__(p, q)
        self.kernel_name = kernel
        self.kernel = _KERNELS[kernel]
        self.kernel_params = kernel_params
        self._freeze()
