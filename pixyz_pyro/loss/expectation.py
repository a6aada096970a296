"""Monte Carlo expectations, vectorised over ``sample_shape``.

.. math::

    \\mathbb{E}_{p(z|x)}[f(x, z)] \\approx \\frac{1}{S} \\sum_{s=1}^S f(x, z_s),
    \\quad z_s \\sim p(z|x)

All :math:`S` draws are taken in one call: the executor folds ``sample_shape`` into the
batch (see :mod:`pixyz_pyro.dist.shapes`), evaluates ``f`` once, and averages.
"""
from typing import List, Optional, Tuple

import torch

from ..dist.distribution import Distribution
from ..dist.shapes import numel
from ..validate_args import check_sample_shape
from .base import Loss, Operand, SampleShape, as_loss
from .pdf import LogProb
from .values import ValueLoss


class Expectation(Loss):
    """:math:`\\mathbb{E}_{p}[f]`, reparameterised where ``p`` allows.

    Parameters
    ----------
    p : Distribution
        The distribution to draw from.
    f : Loss
        The integrand.
    sample_shape : torch.Size
        Number of draws (default one).
    reparam : bool
        Draw reparameterised samples so that gradients reach ``p``.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"])
    >>> e = Expectation(q, LogProb(p), sample_shape=[1000])
    >>> print(e)
    \\mathbb{E}_{q(z|x)} \\left[\\log p(x|z) \\right]
    >>> _ = torch.manual_seed(0)
    >>> round(float(e.eval({"x": torch.zeros(1, 1)})), 1)  # -log(2 pi)/2 - 1/2
    -1.4
    """

    def __init__(self, p: Distribution, f: Optional[Loss] = None,
                 sample_shape: SampleShape = torch.Size([1]), reparam: bool = True,
                 _gradient_free: bool = False) -> None:
        self.p = p
        self.f = as_loss(f) if f is not None else ValueLoss(0)
        self.sample_shape = check_sample_shape("sample_shape", sample_shape,
                                               f"Expectation over {p.prob_text}")
        self.n = numel(self.sample_shape)
        self.reparam = reparam
        self._gradient_free = _gradient_free
        self._freeze()

    #: ``sample_mean=True`` plugs in the mean of ``p`` instead of drawing, as in Pixyz.
    keywords = frozenset({"sample_mean"})

    @property
    def children(self) -> Tuple[Loss, ...]:
        return (self.f,)

    def distributions(self) -> List[Distribution]:
        out = [self.p]
        for d in self.f.distributions():
            if all(d is not o for o in out):
                out.append(d)
        return out

    @property
    def _input_var(self) -> List[str]:
        out = list(self.p.input_var)
        for v in self.f.input_var:
            if v not in out and v not in self.p.var:
                out.append(v)
        return out


#: The paper's spelling.
LossExpectation = Expectation


def REINFORCE(p: Distribution, f: Loss, b: Operand = ValueLoss(0),  # noqa: B008 - immutable
              sample_shape: SampleShape = torch.Size([1]), reparam: bool = True) -> Loss:
    """The score-function estimator of :math:`\\nabla \\mathbb{E}_p[f]`:

    .. math::

        \\mathbb{E}_{p}\\left[f + (\\log p - \\mathrm{detach}(\\log p))
        \\cdot \\mathrm{detach}(f - b)\\right]

    whose value equals :math:`\\mathbb{E}_p[f]` (the second term is zero) and whose
    gradient is the REINFORCE estimator with baseline ``b``.

    Parameters
    ----------
    p : Distribution
        The distribution the draws come from (the gradient reaches it through
        :math:`\\log p`).
    f : Loss
        The integrand.
    b : Loss or float
        A baseline subtracted from ``f`` in the score term (default 0).
    sample_shape : int or sequence of int
        The number of draws per batch element.
    reparam : bool
        Also pass reparameterised gradients where ``p`` has them.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc=0., scale=1., var=["x"], name="p")
    >>> q = Normal(loc=1., scale=1., var=["x"], name="q")
    >>> r = REINFORCE(p, LogProb(q), sample_shape=[10000])
    >>> _ = torch.manual_seed(0)
    >>> round(float(r.eval()), 1)  # E_p[log q] = -1.92
    -1.9
    """
    f = as_loss(f)
    fb = f.detach() - b if not (isinstance(b, ValueLoss) and b.value == 0) else f.detach()
    score = LogProb(p) - LogProb(p).detach()
    return Expectation(p, f + score * fb, sample_shape, reparam=reparam,
                       _gradient_free=True)
