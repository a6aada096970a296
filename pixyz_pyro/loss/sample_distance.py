"""The base of losses that compare draws of two distributions of one variable
(``MMD``, ``WassersteinDistance``).

Each side draws its variable from its own inputs only, reparameterised where the family
allows, so gradients reach both distributions.
"""
from typing import Tuple

import torch

from .base import Loss, inputs_of


class SampleDistance(Loss):
    """:math:`d(x, y)` for :math:`x \\sim p`, :math:`y \\sim q`, flattened to
    ``(batch, features)``."""

    def __init__(self, p, q):
        if set(p.var) != set(q.var) or len(p.var) != 1:
            raise ValueError(f"{type(self).__name__} needs two distributions of the same "
                             f"single variable, got {p.prob_text} and {q.prob_text}")
        self.p, self.q = p, q

    def distributions(self):
        return [self.p, self.q]

    @property
    def _input_var(self):
        out = list(self.p.input_var)
        return out + [v for v in self.q.input_var if v not in out]

    def _draw(self, values, ctx) -> Tuple[torch.Tensor, torch.Tensor]:
        v = self.p.var[0]
        x = self.p._sample_values(inputs_of(self.p, values), ctx, True, ctx.batch_n)[v]
        y = self.q._sample_values(inputs_of(self.q, values), ctx, True, ctx.batch_n)[v]
        x, y = x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)
        if x.shape[1] != y.shape[1]:
            raise ValueError(f"{type(self).__name__}: {self.p.prob_text} gave {v} with "
                             f"features {x.shape[1]}, {self.q.prob_text} gave {y.shape[1]}")
        return x, y
