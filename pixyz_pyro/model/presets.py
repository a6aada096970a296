"""Presets: ``VAE``, ``VI``, ``ML`` and ``GAN``, with Pixyz's constructors.

* ``VAE``: :math:`\\mathrm{mean}(-\\mathbb{E}_{q(z|x)}[\\log p(x|z)] + R)`
* ``VI``: :math:`\\mathrm{mean}(-\\mathrm{ELBO}(p, q))`
* ``ML``: :math:`\\mathrm{mean}(-\\log p(x))`
* ``GAN``: the generator side of ``AdversarialJensenShannon(p_data, p, d)``; the
  discriminator has its own optimizer and parameter group, stepped by the model.
"""
from typing import Dict, Optional, Sequence

import torch

from ..dist.special import EmpiricalDistribution
from ..errors import NonFiniteError
from ..loss import ELBO, AdversarialJensenShannon, AdversarialWassersteinDistance, LogProb
from . import distributed as _dist
from .arguments import check_distribution, check_no_closure
from .compile import finite_check
from .guard import (
    deferred_interrupt,
    is_finite,
    restore_module_and_optimizer,
    snapshot_module_and_optimizer,
)
from .model import Model, unique_parameters
from .optim import build_optimizer


def _as_list(x) -> list:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


class VAE(Model):
    """A VAE: reconstruction :math:`-\\mathbb{E}_{q}[\\log p]` plus a ``regularizer``."""

    def __init__(self, encoder, decoder, other_distributions: Sequence = (),
                 regularizer=None, optimizer=torch.optim.Adam,
                 optimizer_params: Optional[Dict] = None, clip_grad_norm=None,
                 clip_grad_value=None, **kwargs):
        check_distribution("encoder", encoder, "VAE")
        check_distribution("decoder", decoder, "VAE")
        distributions = [encoder, decoder] + _as_list(other_distributions)
        loss = -decoder.log_prob().expectation(encoder)
        if regularizer is not None:
            loss = loss + regularizer
        loss = loss.mean()
        super().__init__(loss, test_loss=loss, distributions=distributions,
                         optimizer=optimizer, optimizer_params=optimizer_params,
                         clip_grad_norm=clip_grad_norm, clip_grad_value=clip_grad_value,
                         **kwargs)


class VI(Model):
    """Variational inference: minimise :math:`-\\mathrm{ELBO}(p, q)`."""

    def __init__(self, p, approximate_dist, other_distributions: Sequence = (),
                 optimizer=torch.optim.Adam, optimizer_params: Optional[Dict] = None,
                 clip_grad_norm=None, clip_grad_value=None, **kwargs):
        check_distribution("p", p, "VI")
        check_distribution("approximate_dist", approximate_dist, "VI")
        distributions = [approximate_dist] + _as_list(other_distributions)
        loss = -ELBO(p, approximate_dist).mean()
        super().__init__(loss, test_loss=loss, distributions=distributions,
                         optimizer=optimizer, optimizer_params=optimizer_params,
                         clip_grad_norm=clip_grad_norm, clip_grad_value=clip_grad_value,
                         **kwargs)


class ML(Model):
    """Maximum likelihood: minimise :math:`-\\log p`."""

    def __init__(self, p, other_distributions: Sequence = (), optimizer=torch.optim.Adam,
                 optimizer_params: Optional[Dict] = None, clip_grad_norm=None,
                 clip_grad_value=None, **kwargs):
        check_distribution("p", p, "ML")
        distributions = [p] + _as_list(other_distributions)
        loss = -LogProb(p).mean()
        super().__init__(loss, test_loss=loss, distributions=distributions,
                         optimizer=optimizer, optimizer_params=optimizer_params,
                         clip_grad_norm=clip_grad_norm, clip_grad_value=clip_grad_value,
                         **kwargs)


class GAN(Model):
    """A GAN.  ``train`` returns ``(loss, d_loss)``: one discriminator step on detached
    samples, then one generator step, each with its own optimizer over its own
    parameter group.  No optimizer hides inside the loss."""

    def __init__(self, p, discriminator, optimizer=torch.optim.Adam,
                 optimizer_params: Optional[Dict] = None, d_optimizer=torch.optim.Adam,
                 d_optimizer_params: Optional[Dict] = None, clip_grad_norm=None,
                 clip_grad_value=None, loss=None, **kwargs):
        check_distribution("p", p, "GAN")
        check_distribution("discriminator", discriminator, "GAN")
        check_no_closure(d_optimizer, "d_optimizer", "GAN")
        p_data = EmpiricalDistribution(p.var)
        if loss is None:
            loss = AdversarialJensenShannon(p_data, p, discriminator)
        super().__init__(loss, test_loss=loss, distributions=[p], optimizer=optimizer,
                         optimizer_params=optimizer_params, clip_grad_norm=clip_grad_norm,
                         clip_grad_value=clip_grad_value, **kwargs)
        self.discriminator = discriminator
        self.d_optimizer = build_optimizer(d_optimizer, unique_parameters([discriminator]),
                                           d_optimizer_params)
        if self.ddp is not None:  # the discriminator is trained outside DDP: same start
            _dist.broadcast_from_rank0(discriminator)

    def train(self, train_x_dict=None, adversarial_loss: bool = True, **kwargs):
        d_loss = saved = None
        if adversarial_loss:
            self.discriminator.train()
            self.d_optimizer.zero_grad(set_to_none=True)
            d_value = self.loss_cls.d_loss(train_x_dict, **kwargs)
            d_value.backward()
            if self.ddp is not None:
                _dist.average_gradients(unique_parameters([self.discriminator]))
            if not self._discriminator_step_is_finite(d_value):
                return (d_value.detach(), d_value.detach()) if adversarial_loss else \
                    d_value.detach()
            saved = snapshot_module_and_optimizer(self.discriminator, self.d_optimizer)
            with deferred_interrupt():
                self.d_optimizer.step()
                if isinstance(self.loss_cls, AdversarialWassersteinDistance):
                    with torch.no_grad():
                        for q in self.discriminator.parameters():
                            q.clamp_(-self.loss_cls.clip_value, self.loss_cls.clip_value)
            d_loss = d_value.detach()
        # Generator step: the discriminator's gradients from it are discarded.  Both steps
        # are committed together, or neither: a refused or failed generator step puts the
        # discriminator back.
        steps = self.step_count
        try:
            loss = super().train(train_x_dict, **kwargs)
        except BaseException:
            if saved is not None:
                restore_module_and_optimizer(saved)
            raise
        finally:
            self.d_optimizer.zero_grad(set_to_none=True)
        if saved is not None and self.step_count == steps:  # refused and skipped
            restore_module_and_optimizer(saved)
        return (loss, d_loss) if adversarial_loss else loss

    def _discriminator_step_is_finite(self, d_value: torch.Tensor) -> bool:
        """The NaN guard of the discriminator step: one read of its loss and gradients;
        a non-finite step is refused (raises, or is skipped and counted with
        ``skip_nonfinite``) before the optimizer touches anything."""
        grads = [q.grad for q in self.discriminator.parameters() if q.grad is not None]
        if is_finite(finite_check(d_value.detach(), grads).item()):
            return True
        self.d_optimizer.zero_grad(set_to_none=True)
        if self.skip_nonfinite:
            self.skipped_steps += 1
            return False
        raise NonFiniteError(
            f"non-finite discriminator loss or gradient at step {self.step_count}: "
            f"{self.loss_cls.loss_text} (discriminator side) is {float(d_value.detach()):.4g}; the "
            f"discriminator's step was refused and no parameter changed")

    def test(self, test_x_dict=None, adversarial_loss: bool = True, **kwargs):
        loss = super().test(test_x_dict, **kwargs)
        if adversarial_loss:
            with torch.no_grad():
                d_loss = self.loss_cls.d_loss(test_x_dict, **kwargs)
            return loss, d_loss
        return loss

    def _checkpoint_extras(self) -> Dict:
        """The discriminator and its optimizer, saved and restored with the model."""
        return {"discriminator": self.discriminator, "d_optimizer": self.d_optimizer}
