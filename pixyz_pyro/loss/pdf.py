"""Densities as losses: :math:`\\log p(x|y)` and :math:`p(x|y)`."""
from .base import Loss


class DistributionLoss(Loss):
    """A leaf that reads one or more distributions."""

    def __init__(self, *dists):
        self.dists = dists

    def distributions(self):
        out = []
        for d in self.dists:
            if all(d is not o for o in out):
                out.append(d)
        return out


class LogProb(DistributionLoss):
    """:math:`\\log p(x|y)`, summed over the features, one value per batch element.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc="y", scale=1., var=["x"], cond_var=["y"])
    >>> print(LogProb(p))
    \\log p(x|y)
    >>> LogProb(p).eval({"x": torch.zeros(1, 1), "y": torch.zeros(1, 1)})
    tensor([-0.9189])
    """

    def __init__(self, p, sum_features: bool = True, feature_dims=None):
        super().__init__(p)
        self.p = p
        self.sum_features = sum_features
        self.feature_dims = feature_dims
        self._freeze()

    @property
    def _input_var(self):
        # A distribution whose density needs fewer inputs declares them (a mixture's
        # posterior scores every component given x alone).
        dens = getattr(self.p, "density_input_var", None)
        if dens is not None:
            return list(dens)
        return self.p.var + [v for v in self.p.input_var if v not in self.p.var]


class Prob(LogProb):
    """:math:`p(x|y) = \\exp \\log p(x|y)`."""


def NLL(p, sum_features: bool = True, feature_dims=None):
    """The paper's spelling: :math:`-\\log p(x|y)`, i.e. ``-LogProb(p)``."""
    return -LogProb(p, sum_features=sum_features, feature_dims=feature_dims)
