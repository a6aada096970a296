"""The Kullback-Leibler divergence.

.. math::

    D_{KL}[p \\| q] = \\mathbb{E}_{p}[\\log p - \\log q]

``analytical=True`` uses the KL registered for the two ``pyro.distributions`` objects
(``torch.distributions.kl_divergence``); ``analytical=False`` is the Monte Carlo
estimate above.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch

from ..dist.distribution import Distribution
from ..errors import LossError
from ..validate_args import check_sample_shape
from .base import Loss, SampleShape
from .expectation import Expectation
from .pdf import DistributionLoss, LogProb


class KullbackLeibler(DistributionLoss):
    """:math:`D_{KL}[p \\| q]`, summed over the features (or over ``dim``).

    .. math::

        D_{KL}[p \\| q] = \\mathbb{E}_{p}\\left[\\log p - \\log q\\right]

    Parameters
    ----------
    p, q : Distribution
        Two distributions of the same variables (``KullbackLeibler(p, q)`` is
        :math:`D_{KL}[p \\| q]`).
    dim : int or sequence of int, optional
        The feature dims to sum over (default: all of them), analytically and by Monte
        Carlo alike.
    analytical : bool
        Use the closed form (default) where the families have one; else Monte Carlo with
        draws of ``p``.
    sample_shape : int or sequence of int
        The number of draws when not analytical.

    Raises
    ------
    LossError
        If ``p`` and ``q`` are distributions of different variables.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc=1., scale=1., var=["z"], features_shape=[2], name="p")
    >>> q = Normal(loc=0., scale=1., var=["z"], features_shape=[2], name="q")
    >>> print(KullbackLeibler(p, q))
    D_{KL} \\left[p(z)||q(z) \\right]
    >>> KullbackLeibler(p, q).eval()  # 2 * (1/2)
    tensor([1.])
    """

    def __init__(self, p: Distribution, q: Distribution,
                 dim: Optional[Union[int, Sequence[int]]] = None,
                 analytical: bool = True, sample_shape: SampleShape = torch.Size([1])) -> None:
        if set(p.var) != set(q.var):
            raise LossError(f"KullbackLeibler({p.prob_text}, {q.prob_text}): both sides must "
                            f"be distributions of the same variables, got {p.var} and "
                            f"{q.var}")
        super().__init__(p, q)
        self.p, self.q = p, q
        self.dim = dim
        self.analytical = analytical
        self.sample_shape = check_sample_shape("sample_shape", sample_shape,
                                               f"KullbackLeibler({p.prob_text}, ...)")
        dims = None if dim is None or (isinstance(dim, (list, tuple)) and not dim) else \
            ((dim,) if isinstance(dim, int) else tuple(dim))  # [] as None, as analytically
        self.mc = None if analytical else Expectation(
            p, LogProb(p, feature_dims=dims) - LogProb(q, feature_dims=dims), sample_shape)
        self._freeze()

    @property
    def children(self) -> Tuple[Loss, ...]:
        return (self.mc,) if self.mc is not None else ()

    @property
    def _input_var(self) -> List[str]:
        out = list(self.p.input_var)
        out += [v for v in self.q.input_var if v not in out and v not in self.p.var]
        return out
