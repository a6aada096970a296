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
import torch

from .sample_distance import SampleDistance


def _sqdist(x, y):
    return (x.unsqueeze(1) - y.unsqueeze(0)).pow(2).sum(-1)


def gaussian_rbf_kernel(x, y, sigma_sqr: float = 2.0, **kwargs):
    """:math:`k(x, y) = \\exp(-\\|x - y\\|^2 / \\sigma^2)`."""
    return torch.exp(-_sqdist(x, y) / sigma_sqr)


def inverse_multiquadratic_rbf_kernel(x, y, sigma_sqr: float = 2.0, **kwargs):
    """:math:`k(x, y) = \\sigma^2 / (\\|x - y\\|^2 + \\sigma^2)`."""
    return sigma_sqr / (_sqdist(x, y) + sigma_sqr)


_KERNELS = {"gaussian": gaussian_rbf_kernel,
            "inv-multiquadratic": inverse_multiquadratic_rbf_kernel}


def _offdiag_mean(k):
    """The mean of ``k`` over pairs :math:`i \\ne j` (over the one pair when ``n == 1``)."""
    n = k.shape[0]
    if n < 2:
        return k.mean()
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


class MMD(SampleDistance):
    """:math:`D_{MMD^2}[p\\|q]` with a gaussian or inverse-multiquadratic kernel.

    Examples
    --------
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
    >>> prior = Normal(loc=0., scale=1., var=["z"], features_shape=[2], name="p_{prior}")
    >>> print(MMD(p, prior))
    D_{MMD^2} \\left[q(z|x)||p_{prior}(z) \\right]
    """

    def __init__(self, p, q, kernel: str = "gaussian", **kernel_params):
        if kernel not in _KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; choose from {sorted(_KERNELS)}")
        super().__init__(p, q)
        self.kernel_name = kernel
        self.kernel = _KERNELS[kernel]
        self.kernel_params = kernel_params
        self._freeze()

    def _latex_text(self):
        return f"D_{{MMD^2}} \\left[{self.p.prob_text}||{self.q.prob_text} \\right]"

    def _eval(self, values, ctx):
        x, y = self._draw(values, ctx)
        k, kp = self.kernel, self.kernel_params
        return (_offdiag_mean(k(x, x, **kp)) + _offdiag_mean(k(y, y, **kp))
                - 2 * k(x, y, **kp).mean()), {}
