"""Adversarial estimates of divergences, with a discriminator :math:`d`.

The loss gives both sides and owns no optimizer:

* ``loss.eval(x)`` is the generator-side value (gradients reach the generator through
  reparameterised samples);
* ``loss.d_loss(x)`` (or ``eval(x, discriminator=True)``) is the discriminator-side value,
  with the samples detached.

:class:`pixyz_pyro.model.GAN` alternates the two updates with its own two optimizers.
For Pixyz code that trains the discriminator through the loss, ``loss.loss_train(x)``
takes one step of the discriminator's optimizer ``loss.d_optimizer`` (built once, from
``optimizer`` and ``optimizer_params``, over the discriminator's parameters only) and
``loss.loss_test(x)`` evaluates the discriminator side without gradients.
"""
import torch
import torch.nn.functional as F

from ..validate_args import check_positive_number
from .base import Loss


def _old_spelling(old: str, new: str) -> None:
    import warnings
    warnings.warn(f"loss.{old}(x_dict) of an adversarial loss is the Pixyz 0.1/0.2 spelling; "
                  f"use loss.{new}(x_dict) (Pixyz 0.3)", DeprecationWarning, stacklevel=3)


class AdversarialLoss(Loss):
    """Shared sampling: :math:`x_p \\sim p`, :math:`x_q \\sim q`, then :math:`d(x)`."""

    #: ``eval(x, discriminator=True)`` evaluates the discriminator side's plan.
    keywords = frozenset({"discriminator"})
    #: Pixyz's default optimizer of the discriminator.
    default_optimizer = torch.optim.Adam

    def __init__(self, p, q, discriminator, optimizer=None, optimizer_params=None, **kwargs):
        if set(p.var) != set(q.var):
            raise ValueError(f"{p.prob_text} and {q.prob_text} must define the same variables")
        self.p, self.q, self.d = p, q, discriminator
        self.optimizer = optimizer
        self.optimizer_params = dict(optimizer_params or {})
        self._extra = kwargs
        params = list(discriminator.parameters())
        # Built once, here: the state of this optimizer is the discriminator's training
        # state for loss_train (the GAN model uses its own d_optimizer instead).
        self.d_optimizer = (optimizer or self.default_optimizer)(
            params, **self.optimizer_params) if params else None

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

    def loss_train(self, train_x_dict=None, **kwargs) -> torch.Tensor:
        """One step of :attr:`d_optimizer` on the discriminator-side loss; returns it
        (detached).  Only the discriminator's parameters change."""
        if self.d_optimizer is None:
            raise ValueError(f"{self.d.prob_text} has no parameters to train")
        self.d.train()
        self.d_optimizer.zero_grad(set_to_none=True)
        loss = self.d_loss(train_x_dict, **kwargs)
        loss.backward()
        self.d_optimizer.step()
        self._after_step()
        return loss.detach()

    def loss_test(self, test_x_dict=None, **kwargs) -> torch.Tensor:
        """The discriminator-side loss in evaluation mode, without gradients."""
        self.d.eval()
        with torch.no_grad():
            return self.d_loss(test_x_dict, **kwargs)

    def train(self, mode=True, **kwargs):
        """``train(mode)`` sets training mode (``nn.Module.train``); ``train(x_dict)`` is
        Pixyz 0.1/0.2's spelling of :meth:`loss_train` (deprecated)."""
        if hasattr(mode, "keys"):
            _old_spelling("train", "loss_train")
            return self.loss_train(mode, **kwargs)
        return super().train(mode)

    def test(self, test_x_dict=None, **kwargs):
        """Pixyz 0.1/0.2's spelling of :meth:`loss_test` (deprecated)."""
        _old_spelling("test", "loss_test")
        return self.loss_test(test_x_dict, **kwargs)

    def _after_step(self) -> None:
        """Called after each :meth:`loss_train` step (the critic's weight clipping)."""

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

    #: The WGAN paper's optimizer of the critic.
    default_optimizer = torch.optim.RMSprop

    def __init__(self, p, q, discriminator, clip_value: float = 0.01, **kwargs):
        check_positive_number("clip_value", clip_value, "AdversarialWassersteinDistance",
                              " (the critic's weights are clamped to [-clip_value, "
                              "clip_value])")
        AdversarialLoss.__init__(self, p, q, discriminator, **kwargs)
        self.clip_value = clip_value
        self.inverse_g_loss = True
        self._freeze()

    def _after_step(self) -> None:
        with torch.no_grad():
            for w in self.d.parameters():
                w.clamp_(-self.clip_value, self.clip_value)

    def _latex_text(self):
        return f"mean(W^{{Adv}} \\left({self.p.prob_text}, {self.q.prob_text} \\right))"

    def _d_loss(self, yp, yq):
        return -(yp.mean() - yq.mean())

    def _g_loss(self, yp, yq):
        yp, yq = self._no_grad_data(yp, yq)
        return yp.mean() - yq.mean()
