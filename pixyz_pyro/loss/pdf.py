"""Densities as losses: :math:`\\log p(x|y)` and :math:`p(x|y)`."""
from typing import List, Optional, Sequence

from ..dist.distribution import Distribution
from .base import Loss


class DistributionLoss(Loss):
    """A leaf that reads one or more distributions."""

    def __init__(self, *dists: Distribution) -> None:
        self.dists = dists

    def distributions(self) -> List[Distribution]:
        out: List[Distribution] = []
        for d in self.dists:
            if all(d is not o for o in out):
                out.append(d)
        return out


class LogProb(DistributionLoss):
    """:math:`\\log p(x|y)`, summed over the features, one value per batch element.

    Parameters
    ----------
    p : Distribution
        The distribution; its ``var`` (and ``cond_var``) are read from the inputs.
    sum_features : bool
        Sum over the features (default); ``False`` keeps ``batch + features``.
    feature_dims : sequence of int, optional
        The feature dims to sum over (default: all of them).

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

    def __init__(self, p: Distribution, sum_features: bool = True,
                 feature_dims: Optional[Sequence[int]] = None) -> None:
        super().__init__(p)
        self.p = p
        self.sum_features = sum_features
        self.feature_dims = feature_dims
        self._freeze()

    @property
    def _input_var(self) -> List[str]:
        # A distribution whose density needs fewer inputs declares them (a mixture's
        # posterior scores every component given x alone).
        dens = getattr(self.p, "density_input_var", None)
        if dens is not None:
            return list(dens)
        return self.p.var + [v for v in self.p.input_var if v not in self.p.var]


class Prob(LogProb):
    """The density itself, one value per batch element.

    .. math::

        p(x|y) = \\exp \\log p(x|y)

    Parameters
    ----------
    p : Distribution
        The distribution whose density is evaluated at the given ``x`` (and ``y``).
    sum_features : bool
        Sum the log-density over the features before exponentiating.
    feature_dims : sequence of int, optional
        The feature dims to sum over (default: all of them).

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc=0., scale=1., var=["x"])
    >>> print(Prob(p))
    p(x)
    >>> Prob(p).eval({"x": torch.zeros(2)})  # 1 / sqrt(2 pi)
    tensor([0.3989, 0.3989])
    """


def NLL(p: Distribution, sum_features: bool = True,
        feature_dims: Optional[Sequence[int]] = None) -> Loss:
    """The negative log-likelihood, the paper's spelling of ``-LogProb(p)``.

    .. math::

        \\mathrm{NLL}(x, y) = -\\log p(x|y)

    Parameters
    ----------
    p : Distribution
        The distribution of the data.
    sum_features : bool
        Sum over the features (one value per batch element).
    feature_dims : sequence of int, optional
        The feature dims to sum over (default: all of them).

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc=0., scale=1., var=["x"])
    >>> print(NLL(p))
    - \\log p(x)
    >>> NLL(p).eval({"x": torch.zeros(2)})  # log(2 pi) / 2
    tensor([0.9189, 0.9189])
    """
    return -LogProb(p, sum_features=sum_features, feature_dims=feature_dims)
