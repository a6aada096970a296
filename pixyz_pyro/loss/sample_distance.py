"""The base of losses that compare draws of two distributions of one variable
(``MMD``, ``WassersteinDistance``).

Each side draws its variable from its own inputs only, reparameterised where the family
allows, so gradients reach both distributions.
"""
from typing import List

from ..dist.distribution import Distribution
from .base import Loss


class SampleDistance(Loss):
    """:math:`d(x, y)` for :math:`x \\sim p`, :math:`y \\sim q`, flattened to
    ``(batch, features)``."""

    def __init__(self, p: Distribution, q: Distribution) -> None:
        if set(p.var) != set(q.var) or len(p.var) != 1:
            raise ValueError(f"{type(self).__name__} needs two distributions of the same "
                             f"single variable, got {p.prob_text} and {q.prob_text}")
        self.p, self.q = p, q

    def distributions(self) -> List[Distribution]:
        return [self.p, self.q]

    @property
    def _input_var(self) -> List[str]:
        out = list(self.p.input_var)
        return out + [v for v in self.q.input_var if v not in out]
