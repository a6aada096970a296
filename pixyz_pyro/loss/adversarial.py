"""Adversarial estimates of divergences, with a discriminator :math:`d`.

The loss gives both sides and owns no optimizer:

* ``loss.eval(x)`` is the generator-side value (gradients reach the generator through
  reparameterised samples);
* ``loss.d_loss(x)`` (or ``eval(x, discriminator=True)``) is the discriminator-side value,
  with the samples detached.

:class:`pixyz_pyro.model.GAN` alternates the two updates.
"""
import torch
import torch.nn.functional as F

from ..validate_args import check_positive_number
from .base import Loss


class AdversarialLoss(Loss):
    """Shared sampling: :math:`x_p \\sim p`, :math:`x_q \\sim q`, then :math:`d(x)`."""

    #: ``eval(x, discriminator=True)`` evaluates the discriminator side's plan.
    keywords = frozenset({"discriminator"})

    def __init__(self, p, q, discriminator, optimizer=None, optimizer_params=None, **kwargs):
        if set(p.var) != set(q.var):
            raise ValueError(f"{p.prob_text} and {q.prob_text} must define the same variables")
        self.p, self.q, self.d = p, q, discriminator
        # Kept for Pixyz compatibility: the GAN model builds the optimizer from these.
        self.optimizer = optimizer
        self.optimizer_params = dict(optimizer_params or {})
        self._extra = kwargs

    def distributions(self):
        return [self.p, self.q, self.d]

    @property
    def _input_var(self):
        out = list(self.p.input_var)
        out += [v for v in self.q.input_var if v not in out]
        return out

    def d_loss(self, x_dict=None, **kwargs):
        """The discriminator-side loss (samples detached)."""
        return self.eval(x_dict, discriminator=True, **kwargs)

    def _no_grad_data(self, yp, yq):
        if self.p.distribution_name == "Data distribution":
            yp = yp.detach()
        if self.q.distribution_name == "Data distribution":
            yq = yq.detach()
        return yp, yq


def _bce(y, target: float):
    """``F.binary_cross_entropy(y, target)`` (its clamps and saturation gradients), except
    that a NaN in ``y`` makes the value NaN -- for the NaN guard -- instead of raising."""
    safe = torch.nan_to_num(y, nan=0.5)
    return F.binary_cross_entropy(safe, torch.full_like(y, target)) + 0.0 * y.sum()


class AdversarialJensenShannon(AdversarialLoss):
    """:math:`2 D_{JS}[p\\|q] - 2\\log 2 = \\max_d \\mathbb{E}_p[\\log d] +
    \\mathbb{E}_q[\\log(1 - d)]`, with the non-saturating generator loss by default
    (``inverse_g_loss=True``)."""

    def __init__(self, p, q, discriminator, optimizer=None, optimizer_params=None,
                 inverse_g_loss: bool = True):
        super().__init__(p, q, discriminator, optimizer, optimizer_params)
        self.inverse_g_loss = inverse_g_loss
        self._freeze()

    def _latex_text(self):
        return f"mean(D_{{JS}}^{{Adv}} \\left[{self.p.prob_text}||{self.q.prob_text} \\right])"

    def _d_loss(self, yp, yq):
        return _bce(yp, 1.0) + _bce(yq, 0.0)

    def _g_loss(self, yp, yq):
        if self.inverse_g_loss:
            lp, lq = _bce(yp, 0.0), _bce(yq, 1.0)
        else:
            lp, lq = -_bce(yp, 1.0), -_bce(yq, 0.0)
        lp, lq = self._no_grad_data(lp, lq)
        return lp + lq


class AdversarialKullbackLeibler(AdversarialLoss):
    """:math:`D_{KL}[p\\|q] \\approx \\mathbb{E}_p[\\log \\frac{d}{1-d}]` with
    :math:`d^* = \\arg\\max_d \\mathbb{E}_q[\\log d] + \\mathbb{E}_p[\\log(1-d)]`."""

    def __init__(self, p, q, discriminator, **kwargs):
        super().__init__(p, q, discriminator, **kwargs)
        self._freeze()

    def _latex_text(self):
        return f"mean(D_{{KL}}^{{Adv}} \\left[{self.p.prob_text}||{self.q.prob_text} \\right])"

    def _d_loss(self, yp, yq):
        return _bce(yp, 1.0) + _bce(yq, 0.0)

    def _g_loss(self, yp, yq):
        return -_bce(yp, 1.0) + _bce(yp, 0.0)


class AdversarialWassersteinDistance(AdversarialJensenShannon):
    """:math:`W(p, q) = \\sup_{\\|d\\|_L \\le 1} \\mathbb{E}_p[d] - \\mathbb{E}_q[d]`.
    The critic's weights are clipped to ``clip_value`` by the GAN model after each step."""

    def __init__(self, p, q, discriminator, clip_value: float = 0.01, **kwargs):
        check_positive_number("clip_value", clip_value, "AdversarialWassersteinDistance",
                              " (the critic's weights are clamped to [-clip_value, "
                              "clip_value])")
        AdversarialLoss.__init__(self, p, q, discriminator, **kwargs)
        self.clip_value = clip_value
        self.inverse_g_loss = True
        self._freeze()

    def _latex_text(self):
        return f"mean(W^{{Adv}} \\left({self.p.prob_text}, {self.q.prob_text} \\right))"

    def _d_loss(self, yp, yq):
        return -(yp.mean() - yq.mean())

    def _g_loss(self, yp, yq):
        yp, yq = self._no_grad_data(yp, yq)
        return yp.mean() - yq.mean()
