"""An upper bound of the Wasserstein distance by pairing draws.

.. math::

    W(p, q) \\le \\mathbb{E}_{x \\sim p, y \\sim q} \\|x - y\\|
"""
from torch.nn import PairwiseDistance

from .base import Loss, inputs_of


class WassersteinDistance(Loss):
    """:math:`W^{upper}(p, q)`: the distance between paired draws, per batch element."""

    def __init__(self, p, q, metric=None):
        if set(p.var) != set(q.var) or len(p.var) != 1:
            raise ValueError(f"WassersteinDistance needs two distributions of the same single "
                             f"variable, got {p.prob_text} and {q.prob_text}")
        self.p, self.q = p, q
        self.metric = metric if metric is not None else PairwiseDistance(p=2)
        self._freeze()

    def distributions(self):
        return [self.p, self.q]

    @property
    def _input_var(self):
        out = list(self.p.input_var)
        return out + [v for v in self.q.input_var if v not in out]

    def _latex_text(self):
        return f"W^{{upper}} \\left({self.p.prob_text}, {self.q.prob_text} \\right)"

    def _eval(self, values, ctx):
        v = self.p.var[0]
        x = self.p._sample_values(inputs_of(self.p, values), ctx, True, ctx.batch_n)[v]
        y = self.q._sample_values(inputs_of(self.q, values), ctx, True, ctx.batch_n)[v]
        return self.metric(x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)), {}
