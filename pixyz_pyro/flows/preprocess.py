"""``Preprocess``: dequantise images in [0, 1] and map them to logits (Real NVP)."""

import torch
from pyro.distributions.transforms import AffineTransform, ComposeTransform, SigmoidTransform

from .flow import Flow


class Preprocess(Flow):
    r"""Dequantise 8-bit images and take logits, as in Real NVP.

    .. math::
        u = \frac{255\,x + \varepsilon}{256},\ \varepsilon \sim U(0, 1), \qquad
        z = \mathrm{logit}\left(\frac{\alpha}{2} + (1 - \alpha)\, u\right), \qquad
        \log|\det J| = \sum \left(\log(1 - \alpha) - \log v - \log(1 - v)\right)

    where :math:`v = \sigma(z)` and :math:`\alpha` is ``data_constraint`` (0.05). The
    log-determinant is that of the deterministic map :math:`u \mapsto z`, so it scores the
    dequantised image :math:`u`, as Pixyz does. That map is torch's ``AffineTransform``
    followed by ``SigmoidTransform().inv``. :meth:`inverse` returns :math:`u` in [0, 1]
    (Pixyz returned :math:`v`, which still carries the :math:`\alpha` squeeze).

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> f = Preprocess()
    >>> x = torch.rand(2, 1, 2, 2)
    >>> z = f(x)
    >>> print(f.logdet_jacobian)
    tensor([7.2423, 6.3794])
    >>> print((f.inverse(z) - x).abs().max() < 1 / 256)
    tensor(True)
    """

    data_constraint: torch.Tensor  # a buffer

    def __init__(self):
        super().__init__(None)
        self.register_buffer("data_constraint", torch.tensor([0.05]))

    logit = staticmethod(torch.logit)

    def _transform(self, event_dim: int) -> ComposeTransform:
        alpha = self.data_constraint
        return ComposeTransform([AffineTransform(alpha / 2, 1 - alpha), SigmoidTransform().inv])

    def forward(self, x: torch.Tensor, y=None, compute_jacobian: bool = True) -> torch.Tensor:
        u = (x * 255 + torch.rand_like(x)) / 256
        return super().forward(u, y, compute_jacobian)
