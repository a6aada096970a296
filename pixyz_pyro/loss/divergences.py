"""The Kullback-Leibler divergence.

.. math::

    D_{KL}[p \\| q] = \\mathbb{E}_{p}[\\log p - \\log q]

``analytical=True`` uses the KL registered for the two ``pyro.distributions`` objects
(``torch.distributions.kl_divergence``); ``analytical=False`` is the Monte Carlo
estimate above.
"""
import torch
from torch.distributions import kl_divergence

from ..dist.family import closed_kl
from ..dist.shapes import SHAPES, broadcast_shapes, shape_str
from ..errors import LossError, ShapeError
from .expectation import Expectation
from .pdf import DistributionLoss, LogProb


class KullbackLeibler(DistributionLoss):
    """:math:`D_{KL}[p \\| q]`, summed over the features (or over ``dim``).

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc=1., scale=1., var=["z"], features_shape=[2], name="q")
    >>> q = Normal(loc=0., scale=1., var=["z"], features_shape=[2], name="p")
    >>> print(KullbackLeibler(p, q))
    D_{KL} \\left[q(z)||p(z) \\right]
    >>> KullbackLeibler(p, q).eval()  # 2 * (1/2)
    tensor([1.])
    """

    def __init__(self, p, q, dim=None, analytical: bool = True,
                 sample_shape=torch.Size([1])):
        super().__init__(p, q)
        self.p, self.q = p, q
        self.dim = dim
        self.analytical = analytical
        self.sample_shape = torch.Size(sample_shape)
        self.mc = None if analytical else Expectation(p, LogProb(p) - LogProb(q), sample_shape)
        self._freeze()

    @property
    def children(self):
        return (self.mc,) if self.mc is not None else ()

    @property
    def _input_var(self):
        out = list(self.p.input_var)
        out += [v for v in self.q.input_var if v not in out and v not in self.p.var]
        return out

    def _eval(self, values, ctx):
        closed = self.__dict__.get("_closed")  # set by _check: both sides are factors
        if closed is not None:  # the hot path: no pyro objects
            kl = closed(self.p._params(values, ctx), self.q._params(values, ctx))
            if kl is not None:
                if self.dim is None:  # _reduce, inlined on the hot path
                    n = kl.dim()
                    return (kl.sum(dim=tuple(range(1, n))) if n > 1 else kl), {}
                return kl.sum(dim=self.dim), {}
        if self.mc is not None:
            return self.mc._run(values, ctx)
        if not hasattr(self.p, "pyro_dist") or not hasattr(self.q, "pyro_dist"):
            raise LossError(f"KullbackLeibler({self.p.prob_text}, {self.q.prob_text}): an "
                            f"analytic KL needs two single-factor distributions; use "
                            f"analytical=False for joints")
        dp = self.p.pyro_dist(values, ctx)
        dq = self.q.pyro_dist(values, ctx)
        if not getattr(self, "_checked", False):
            self._check(dp, dq)
        return self._reduce(kl_divergence(dp, dq)), {}

    def _reduce(self, kl):
        """The sum over ``dim``, or over every feature dimension."""
        if self.dim is not None:
            return kl.sum(dim=self.dim)
        n = kl.dim()
        return kl.sum(dim=tuple(range(1, n))) if n > 1 else kl

    def _check(self, dp, dq) -> None:
        fp, fq = dp.batch_shape[1:], dq.batch_shape[1:]
        try:
            broadcast_shapes(dp.batch_shape, dq.batch_shape)
        except RuntimeError:
            var = self.p.var[0] if self.p.var else "?"
            raise ShapeError(
                f"{self.p.prob_text} gave {var} with features {shape_str(fp)}, "
                f"{self.q.prob_text} expects {shape_str(fq)} ({SHAPES})") from None
        try:
            kl_divergence(dp, dq)
        except NotImplementedError:
            raise LossError(
                f"no analytic KL is registered between {type(dp).__name__} "
                f"({self.p.prob_text}) and {type(dq).__name__} ({self.q.prob_text}); "
                f"use KullbackLeibler(..., analytical=False)") from None
        object.__setattr__(self, "_checked", True)
        object.__setattr__(self, "_closed", _closed_kl(self.p, self.q))


def _closed_kl(p, q):
    """The family's closed-form KL (:mod:`pixyz_pyro.dist.family`) when both sides are
    plain factors of families that have one, else ``None`` (``kl_divergence`` on the
    pyro objects)."""
    if not all(getattr(d, "_closed_ok", lambda: False)() for d in (p, q)):
        return None
    return closed_kl(p.family, q.family)
