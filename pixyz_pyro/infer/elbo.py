"""Pyro's ``Trace_ELBO`` surrogate in the loss algebra, for guides with discrete sites.

.. math::

    \\mathcal{L} = \\mathbb{E}_{q}\\left[f + s \\cdot (\\mathrm{detach}(f) + 1)\\right],
    \\qquad f = \\log p - \\log q, \\quad s = \\log q_{sf} - \\mathrm{detach}(\\log q_{sf})

where :math:`\\log q_{sf}` is the log-density of the guide's sites that have no
``rsample`` (its :attr:`~pixyz_pyro.infer.from_pyro.PyroFunctionDistribution.score_part`).
Its value is the ELBO; its gradient is Pyro's: reparameterised gradients through the
other sites, and the score-function term for these (``+ s`` cancels the direct gradient
of :math:`\\log q_{sf}` inside ``f``, whose expectation is zero, as Pyro leaves it out).
Per row, ``f`` carries the global sites' term over ``B`` (see
:mod:`pixyz_pyro.infer.site_terms`), where Pyro's surrogate adds the whole global term
to every row: the two agree exactly unless a guide has both a non-reparameterised site
in the data plate and a global site.
"""
import torch

from ..dist.distribution import Distribution
from ..loss import Expectation, LogProb
from ..loss.base import Loss, SampleShape
from .from_pyro import PyroFunctionDistribution


def pyro_elbo(p: Distribution, q: PyroFunctionDistribution,
              sample_shape: SampleShape = torch.Size([1])) -> Loss:  # noqa: B008 - immutable
    """:math:`\\mathbb{E}_q[\\log p - \\log q]` with Pyro's score-function gradient for
    the non-reparameterised sites of ``q``, one value per row.

    Parameters
    ----------
    p : Distribution
        The joint :math:`p(x, z)`.
    q : PyroFunctionDistribution
        The guide, a wrapped Pyro function (see :func:`from_pyro`).
    sample_shape : int or sequence of int
        The number of draws per row.

    Examples
    --------
    >>> import torch, pyro, pyro.distributions as pd
    >>> from pixyz_pyro.infer import from_pyro
    >>> def model(x):
    ...     with pyro.plate("data", x.shape[0]):
    ...         y = pyro.sample("y", pd.Bernoulli(0.5))
    ...         pyro.sample("x", pd.Normal(y, 1.), obs=x)
    >>> def guide(x):
    ...     logit = pyro.param("logit", torch.zeros(()))
    ...     with pyro.plate("data", x.shape[0]):
    ...         pyro.sample("y", pd.Bernoulli(logits=logit))
    >>> p = from_pyro(model, var=["x", "y"])
    >>> q = from_pyro(guide, var=["y"], name="q")
    >>> loss = -pyro_elbo(p, q).sum()
    >>> _ = q.sample({"x": torch.ones(4)})  # creates the guide's parameter
    >>> [n for n, _ in q.named_parameters()]
    ['pyro_params.logit']
    """
    draw = q.score_part
    f = LogProb(p) - LogProb(q)
    s = LogProb(draw) - LogProb(draw).detach()
    return Expectation(draw, f + s * (f.detach() + 1), sample_shape)
