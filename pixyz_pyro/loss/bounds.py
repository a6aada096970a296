"""Multi-sample bounds on the log-evidence: the Rényi family and the IWAE bound.

.. math::

    \\mathcal{L}_\\alpha(x) = \\frac{1}{1-\\alpha}
    \\log \\frac{1}{k} \\sum_{i=1}^k \\left(\\frac{p(x, z_i)}{q(z_i|x)}\\right)^{1-\\alpha},
    \\qquad z_i \\sim q(z|x)

:math:`\\alpha = 0` is the importance-weighted bound (IWAE, Burda et al. 2016),
:math:`\\alpha \\to 1` the ELBO.  The ``k`` draws are taken in one call (the executor's
folding of ``sample_shape``), and the log-mean-exp is stabilised (``logsumexp``).

The gradient estimator is a choice on the node (``estimator=``):

* ``"reparam"``: the gradient of the value (reparameterised draws);
* ``"stl"``: "sticking the landing" (Roeder et al. 2017): :math:`\\log q` is scored
  with stopped parameters, so the score term, whose expectation is zero, is dropped;
* ``"dreg"``: the doubly-reparameterised gradient (Tucker et al. 2018).  With
  normalised weights :math:`v_i \\propto w_i^{1-\\alpha}` the encoder gradient is

  .. math::

      \\sum_i \\left(\\alpha v_i + (1-\\alpha) v_i^2\\right)
      \\frac{\\partial \\log \\bar w_i}{\\partial z_i} \\frac{\\partial z_i}{\\partial \\phi},
      \\qquad \\log \\bar w_i = \\log p(x, z_i) - \\log q_{\\bar\\phi}(z_i|x)

  (:math:`v_i^2` for IWAE), and the decoder gradient is the bound's own,
  :math:`\\sum_i v_i \\nabla_\\theta \\log p_\\theta(x, z_i)`.

All three have the same value; they differ only in the gradient, and all run ``q``'s
network once (its parameters are stopped after the draw, not recomputed).  The draws are
integrated out: a bound passes no samples on (to an ``IterativeLoss``'s next step, say).
An unconditional ``q`` draws ``k`` times per row of the data.
"""
import math
from typing import List

from ..dist.distribution import Distribution
from ..errors import LossError
from .pdf import DistributionLoss

ESTIMATORS = ("reparam", "stl", "dreg")


class VRBound(DistributionLoss):
    """The Rényi (variational Rényi) bound :math:`\\mathcal{L}_\\alpha`, one value per batch
    element.

    .. math::

        \\mathcal{L}_\\alpha(x) = \\frac{1}{1-\\alpha}
        \\log \\frac{1}{k}\\sum_{i=1}^k \\left(\\frac{p(x,z_i)}{q(z_i|x)}\\right)^{1-\\alpha}

    Parameters
    ----------
    p : Distribution
        The joint :math:`p(x, z)`.
    q : Distribution
        The proposal :math:`q(z|x)`, reparameterisable.
    k : int
        The number of importance samples per batch element.
    alpha : float
        The Rényi order; ``0`` is IWAE, ``1`` the ELBO (the limit).
    estimator : str
        ``"reparam"``, ``"stl"`` or ``"dreg"`` (see :mod:`pixyz_pyro.loss.bounds`).

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"]) * Normal(
    ...     loc=0., scale=1., var=["z"])
    >>> bound = VRBound(p, q, k=10, alpha=0.5)
    >>> print(bound)  # doctest: +ELLIPSIS
    \\frac{1}{1-0.5} \\log \\frac{1}{10}\\sum_{i=1}^{10} \\left(...{...}\\right)^{1-0.5}
    >>> _ = torch.manual_seed(0)
    >>> round(float(bound.eval({"x": torch.zeros(1, 1)})), 4)
    -1.4274
    """

    def __init__(self, p: Distribution, q: Distribution, k: int = 1, alpha: float = 0.0,
                 estimator: str = "reparam") -> None:
        super().__init__(p, q)
        who = f"{type(self).__name__}({p.prob_text}, {q.prob_text})"
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise LossError(f"{who}: k is the number of importance samples, a positive "
                            f"integer; got {k!r}")
        if estimator not in ESTIMATORS:
            raise LossError(f"{who}: estimator must be one of {ESTIMATORS}, got "
                            f"{estimator!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or \
                not math.isfinite(alpha):
            raise LossError(f"{who}: alpha must be a finite number, got {alpha!r}")
        missing = [v for v in q.var if v not in p.var]
        if missing:
            raise LossError(f"{who}: p must be the joint of the data and of q's variables "
                            f"{q.var}; p has no {missing}")
        if not q.has_reparam:
            raise LossError(f"{who}: {q.prob_text} cannot be reparameterised; a "
                            f"multi-sample bound here differentiates through its draws")
        self.p, self.q = p, q
        self.k = k
        self.alpha = float(alpha)
        self.estimator = estimator
        self._freeze()

    @property
    def _input_var(self) -> List[str]:
        out = list(self.q.input_var)
        for v in list(self.p.var) + list(self.p.input_var):
            if v not in out and v not in self.q.var:
                out.append(v)
        return out


class IWAE(VRBound):
    """The importance-weighted bound (Burda et al. 2016), one value per batch element.

    .. math::

        \\mathcal{L}_k(x) = \\log \\frac{1}{k}\\sum_{i=1}^k \\frac{p(x,z_i)}{q(z_i|x)}
        \\le \\log p(x), \\qquad z_i \\sim q(z|x)

    It is :class:`VRBound` with :math:`\\alpha = 0`; ``estimator="dreg"`` is the
    doubly-reparameterised gradient, whose encoder signal-to-noise ratio does not vanish
    as ``k`` grows.  ``k=1`` is the single-sample ELBO on the same draw.

    Parameters
    ----------
    p : Distribution
        The joint :math:`p(x, z)`.
    q : Distribution
        The proposal :math:`q(z|x)`.
    k : int
        The number of importance samples per batch element.
    estimator : {"reparam", "dreg"}
        The gradient estimator.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"]) * Normal(
    ...     loc=0., scale=1., var=["z"])
    >>> print(-IWAE(p, q, k=50).mean())
    - mean \\left(\\log \\frac{1}{50}\\sum_{i=1}^{50} \\frac{p(x,z_i)}{q(z_i|x)} \\right)
    >>> _ = torch.manual_seed(0)  # log p(x=0) = -log(4 pi)/2 = -1.2655
    >>> round(float(IWAE(p, q, k=500).eval({"x": torch.zeros(1, 1)})), 4)
    -1.2629
    """

    def __init__(self, p: Distribution, q: Distribution, k: int = 1,
                 estimator: str = "reparam") -> None:
        super().__init__(p, q, k, 0.0, estimator)
