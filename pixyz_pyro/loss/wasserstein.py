"""An upper bound of the Wasserstein distance by pairing draws.

.. math::

    W(p, q) \\le \\mathbb{E}_{x \\sim p, y \\sim q} \\|x - y\\|
"""
from torch.nn import PairwiseDistance

from .sample_distance import SampleDistance


class WassersteinDistance(SampleDistance):
    """:math:`W^{upper}(p, q)`: the distance between paired draws, per batch element."""

    def __init__(self, p, q, metric=None):
        super().__init__(p, q)
        self.metric = metric if metric is not None else PairwiseDistance(p=2)
        self._freeze()
