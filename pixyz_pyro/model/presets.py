"""Presets: ``VAE``, ``VI``, ``ML`` and ``GAN``, with Pixyz's constructors.

* ``VAE``: :math:`\\mathrm{mean}(-\\mathbb{E}_{q(z|x)}[\\log p(x|z)] + R)`
* ``VI``: :math:`\\mathrm{mean}(-\\mathrm{ELBO}(p, q))`
* ``ML``: :math:`\\mathrm{mean}(-\\log p(x))`
* ``GAN``: the generator side of ``AdversarialJensenShannon(p_data, p, d)``; the
  discriminator has its own optimizer and parameter group, stepped by the model.
"""
import warnings
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from ..dist.distribution import Distribution
from ..dist.running import running_slots
from ..dist.special import EmpiricalDistribution
from ..errors import ModelError, NonFiniteError
from ..loss import ELBO, AdversarialJensenShannon, AdversarialWassersteinDistance, LogProb
from ..loss.adversarial import AdversarialLoss
from ..loss.base import Loss
from ..loss.execute import pixyz_keywords
from . import distributed as _dist
from .arguments import check_distribution, check_no_closure
from .compile import finite_check
from .deferred import PendingStep, skipped_where
from .guard import (
    StepGuard,
    deferred_interrupt,
    device_snapshot,
    is_finite,
    restore_module_and_optimizer,
    restore_where,
    snapshot_module_and_optimizer,
)
from .model import Model, unique_parameters
from .optim import OptimizerSpec, build_optimizer

#: The other distributions a preset trains: one, several, or none.
Others = Union[None, Distribution, List[Distribution], Tuple[Distribution, ...]]


def _as_list(x: Others) -> List[Distribution]:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


class VAE(Model):
    """A VAE: the reconstruction term plus a ``regularizer``, averaged over the batch.

    .. math::

        \\mathrm{mean}\\left(-\\mathbb{E}_{q(z|x)}[\\log p(x|z)] + R\\right)

    Parameters
    ----------
    encoder : Distribution
        :math:`q(z|x)`, the distribution the expectation is taken over.
    decoder : Distribution
        :math:`p(x|z)`, whose log-likelihood is the reconstruction term.
    other_distributions : sequence of Distribution
        More distributions whose parameters are trained (a learnt prior).
    regularizer : Loss, optional
        :math:`R`, typically ``KullbackLeibler(encoder, prior)``; without it the loss is
        the reconstruction term alone.
    optimizer : type or PyroOptim
        ``torch.optim.Adam`` (the default), another torch optimizer class, or a Pyro
        optimizer such as ``pyro.optim.Adam({"lr": 1e-3})``.
    optimizer_params : dict, optional
        Keyword arguments of a torch optimizer class (``{"lr": 1e-3}``).
    clip_grad_norm, clip_grad_value : float, optional
        Gradient clipping before each step.
    **kwargs
        Passed to :class:`~pixyz_pyro.model.Model` (``compile``, ``skip_nonfinite``,
        ``distributed``, ...).

    Examples
    --------
    With the mean of :math:`q(z|x)` fixed at :math:`x`, :math:`p(x|z) = \\mathcal N(z, 1)`
    and a standard normal prior, the loss is :math:`s^2 - \\log s` plus constants in
    the encoder's scale :math:`s`, smallest at :math:`s = 1/\\sqrt 2 = 0.71`:

    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import KullbackLeibler
    >>> q = Normal(loc="x", scale=torch.nn.Parameter(torch.ones(1)), var=["z"],
    ...            cond_var=["x"], features_shape=[1], name="q")
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"], features_shape=[1],
    ...            name="p")
    >>> prior = Normal(loc=0., scale=1., var=["z"], features_shape=[1], name="p_{prior}")
    >>> model = VAE(q, p, regularizer=KullbackLeibler(q, prior),
    ...             optimizer_params={"lr": 0.02})
    >>> print(model.loss_cls)  # doctest: +NORMALIZE_WHITESPACE
    mean \\left(D_{KL} \\left[q(z|x)||p_{prior}(z) \\right]
    - \\mathbb{E}_{q(z|x)} \\left[\\log p(x|z) \\right] \\right)
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(256, 1)
    >>> for _ in range(300):
    ...     _ = model.train({"x": x})
    >>> round(q.scale.item(), 2)  # 0.71, up to the Monte Carlo noise of the gradient
    0.7
    """

    def __init__(self, encoder: Distribution, decoder: Distribution,
                 other_distributions: Others = (), regularizer: Optional[Loss] = None,
                 optimizer: OptimizerSpec = torch.optim.Adam,
                 optimizer_params: Optional[Dict[str, Any]] = None,
                 clip_grad_norm: Optional[float] = None, clip_grad_value: Optional[float] = None,
                 **kwargs: Any) -> None:
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
    """Variational inference: minimise the negative ELBO, averaged over the batch.

    .. math::

        \\mathrm{mean}\\left(-\\mathbb{E}_{q}[\\log p - \\log q]\\right)

    Parameters
    ----------
    p : Distribution
        The joint :math:`p(x, z)` (a product such as ``likelihood * prior``); its
        parameters are not trained unless it is listed in ``other_distributions``.
    approximate_dist : Distribution
        :math:`q`, the approximate posterior, which is trained.
    other_distributions : sequence of Distribution
        More distributions whose parameters are trained (``p``, for a learnt model).
    optimizer : type or PyroOptim
        ``torch.optim.Adam`` (the default), another torch optimizer class, or a Pyro
        optimizer such as ``pyro.optim.Adam({"lr": 1e-3})``.
    optimizer_params : dict, optional
        Keyword arguments of a torch optimizer class (``{"lr": 1e-3}``).
    clip_grad_norm, clip_grad_value : float, optional
        Gradient clipping before each step.
    **kwargs
        Passed to :class:`~pixyz_pyro.model.Model` (``compile``, ``skip_nonfinite``,
        ``distributed``, ...).

    Examples
    --------
    With a prior :math:`\\mathcal N(0, 1)` and :math:`x|z \\sim \\mathcal N(z, 1)`, the
    posterior is :math:`\\mathcal N(x/2, 1/2)`; :math:`q(z|x) = \\mathcal N(a x, s^2)`
    learns :math:`a = 1/2` and :math:`s = 1/\\sqrt 2 = 0.71`:

    >>> import torch
    >>> from torch import nn
    >>> from pixyz_pyro.dist import Normal
    >>> class Posterior(Normal):  # q(z|x) = N(a x, s^2)
    ...     def __init__(self):
    ...         super().__init__(var=["z"], cond_var=["x"], features_shape=[1], name="q")
    ...         self.a, self.s = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.ones(1))
    ...     def forward(self, x):
    ...         return {"loc": self.a * x, "scale": self.s.expand_as(x)}
    >>> prior = Normal(loc=0., scale=1., var=["z"], features_shape=[1], name="p_{prior}")
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"], features_shape=[1],
    ...            name="p")
    >>> q = Posterior()
    >>> model = VI(p * prior, q, optimizer_params={"lr": 0.02})
    >>> print(model.loss_cls)
    - mean \\left(\\mathbb{E}_{q(z|x)} \\left[\\log p(x,z) - \\log q(z|x) \\right] \\right)
    >>> _ = torch.manual_seed(0)
    >>> x = 2 * torch.randn(256, 1)
    >>> for _ in range(300):
    ...     _ = model.train({"x": x})
    >>> round(q.a.item(), 2), round(q.s.item(), 2)  # 0.71, up to Monte Carlo noise
    (0.5, 0.7)
    """

    def __init__(self, p: Distribution, approximate_dist: Distribution,
                 other_distributions: Others = (), optimizer: OptimizerSpec = torch.optim.Adam,
                 optimizer_params: Optional[Dict[str, Any]] = None,
                 clip_grad_norm: Optional[float] = None, clip_grad_value: Optional[float] = None,
                 **kwargs: Any) -> None:
        check_distribution("p", p, "VI")
        check_distribution("approximate_dist", approximate_dist, "VI")
        distributions = [approximate_dist] + _as_list(other_distributions)
        loss = -ELBO(p, approximate_dist).mean()
        super().__init__(loss, test_loss=loss, distributions=distributions,
                         optimizer=optimizer, optimizer_params=optimizer_params,
                         clip_grad_norm=clip_grad_norm, clip_grad_value=clip_grad_value,
                         **kwargs)


class ML(Model):
    """Maximum likelihood: minimise the negative log-likelihood, averaged over the batch.

    .. math::

        \\mathrm{mean}\\left(-\\log p(x)\\right)

    Parameters
    ----------
    p : Distribution
        The model whose parameters are fitted.
    other_distributions : sequence of Distribution
        More distributions whose parameters are trained.
    optimizer : type or PyroOptim
        ``torch.optim.Adam`` (the default), another torch optimizer class, or a Pyro
        optimizer such as ``pyro.optim.Adam({"lr": 1e-3})``.
    optimizer_params : dict, optional
        Keyword arguments of a torch optimizer class (``{"lr": 1e-3}``).
    clip_grad_norm, clip_grad_value : float, optional
        Gradient clipping before each step.
    **kwargs
        Passed to :class:`~pixyz_pyro.model.Model` (``compile``, ``skip_nonfinite``,
        ``distributed``, ...).

    Examples
    --------
    A normal's maximum-likelihood parameters are the sample mean and the (biased) sample
    standard deviation:

    >>> import torch
    >>> from torch import nn
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc=nn.Parameter(torch.zeros(1)), scale=nn.Parameter(torch.ones(1)),
    ...            var=["x"], features_shape=[1])
    >>> model = ML(p, optimizer_params={"lr": 0.1})
    >>> print(model.loss_cls)
    - mean \\left(\\log p(x) \\right)
    >>> _ = torch.manual_seed(0)
    >>> x = 3 + 2 * torch.randn(1000, 1)
    >>> for _ in range(500):
    ...     _ = model.train({"x": x})
    >>> round(p.loc.item(), 3), round(p.scale.item(), 3)
    (3.058, 2.056)
    >>> round(x.mean().item(), 3), round(x.std(unbiased=False).item(), 3)
    (3.058, 2.056)
    """

    def __init__(self, p: Distribution, other_distributions: Others = (),
                 optimizer: OptimizerSpec = torch.optim.Adam,
                 optimizer_params: Optional[Dict[str, Any]] = None,
                 clip_grad_norm: Optional[float] = None, clip_grad_value: Optional[float] = None,
                 **kwargs: Any) -> None:
        check_distribution("p", p, "ML")
        distributions = [p] + _as_list(other_distributions)
        loss = -LogProb(p).mean()
        super().__init__(loss, test_loss=loss, distributions=distributions,
                         optimizer=optimizer, optimizer_params=optimizer_params,
                         clip_grad_norm=clip_grad_norm, clip_grad_value=clip_grad_value,
                         **kwargs)


def _gan_arguments(optimizer: OptimizerSpec = torch.optim.Adam,
                   optimizer_params: Optional[Dict[str, Any]] = None,
                   d_optimizer: OptimizerSpec = torch.optim.Adam,
                   d_optimizer_params: Optional[Dict[str, Any]] = None,
                   clip_grad_norm: Optional[float] = None,
                   clip_grad_value: Optional[float] = None,
                   loss: Optional[AdversarialLoss] = None, **kwargs: Any) -> Tuple[Any, ...]:
    """GAN's arguments after ``p`` and ``discriminator``, bound as Python binds them."""
    return (optimizer, optimizer_params, d_optimizer, d_optimizer_params, clip_grad_norm,
            clip_grad_value, loss, kwargs)


class GAN(Model):
    """A GAN.  ``train`` returns ``(loss, d_loss)``: one discriminator step on detached
    samples, then one generator step, each with its own optimizer over its own
    parameter group.  No optimizer hides inside the loss.  The two steps are one
    transaction: a refused or failed step on either side changes nothing, neither the
    parameters, buffers (running statistics) and optimizer state of both networks nor the
    counters.

    The loss is the generator's side of ``loss`` (by default
    ``AdversarialJensenShannon(p_data, p, discriminator)``, with ``p_data`` the data's
    empirical distribution); its ``d_loss`` is the discriminator's side.

    Parameters
    ----------
    p : Distribution
        The generator, a distribution of the data variables only (marginalise the noise:
        ``(generator * prior).marginalize_var("z")``).
    discriminator : Distribution
        :math:`d(t|x)`, the probability that ``x`` is real.
    optimizer, optimizer_params
        The generator's optimizer (as for :class:`~pixyz_pyro.model.Model`).
    d_optimizer, d_optimizer_params
        The discriminator's optimizer, over the discriminator's parameters only.
    clip_grad_norm, clip_grad_value : float, optional
        Gradient clipping of the generator's step.
    loss : Loss, optional
        Another adversarial loss, e.g. ``AdversarialWassersteinDistance`` (whose
        discriminator weights are clipped after each step).
    **kwargs
        Passed to :class:`~pixyz_pyro.model.Model`.

    Examples
    --------
    A discriminator that says 1/2 everywhere has the discriminator loss
    :math:`2 \\log 2 = 1.3863`:

    >>> import torch
    >>> from torch import nn
    >>> from pixyz_pyro.dist import Deterministic, Normal
    >>> class Generator(Deterministic):
    ...     def __init__(self):
    ...         super().__init__(var=["x"], cond_var=["z"], name="p")
    ...         self.net = nn.Linear(1, 1)
    ...     def forward(self, z):
    ...         return {"x": self.net(z)}
    >>> class Discriminator(Deterministic):
    ...     def __init__(self):
    ...         super().__init__(var=["t"], cond_var=["x"], name="d")
    ...         self.net = nn.Linear(1, 1)
    ...         nn.init.zeros_(self.net.weight), nn.init.zeros_(self.net.bias)
    ...     def forward(self, x):
    ...         return {"t": torch.sigmoid(self.net(x))}
    >>> prior = Normal(loc=0., scale=1., var=["z"], features_shape=[1], name="p_{prior}")
    >>> p = (Generator() * prior).marginalize_var("z")
    >>> model = GAN(p, Discriminator())
    >>> print(model.loss_cls)
    mean(D_{JS}^{Adv} \\left[p_{data}(x)||p(x) \\right])
    >>> _ = torch.manual_seed(0)
    >>> loss, d_loss = model.train({"x": torch.randn(64, 1)})
    >>> round(float(d_loss), 4)
    1.3863
    """

    loss_cls: AdversarialLoss

    def __init__(self, p: Distribution, discriminator: Distribution, *args: Any,
                 **kwargs: Any) -> None:
        p_data = None
        if isinstance(p, EmpiricalDistribution) and args and isinstance(args[0], Distribution):
            warnings.warn("GAN(p_data, p, discriminator, ...) is the Pixyz 0.0 spelling; use "
                          "GAN(p, discriminator, ...) (Pixyz 0.3)", DeprecationWarning,
                          stacklevel=2)
            p_data, p, discriminator, args = p, discriminator, args[0], args[1:]
        (optimizer, optimizer_params, d_optimizer, d_optimizer_params, clip_grad_norm,
         clip_grad_value, loss, kwargs) = _gan_arguments(*args, **kwargs)
        check_distribution("p", p, "GAN")
        check_distribution("discriminator", discriminator, "GAN")
        check_no_closure(d_optimizer, "d_optimizer", "GAN")
        p_data = p_data if p_data is not None else EmpiricalDistribution(p.var)
        if loss is None:
            loss = AdversarialJensenShannon(p_data, p, discriminator)
        super().__init__(loss, test_loss=loss, distributions=[p], optimizer=optimizer,
                         optimizer_params=optimizer_params, clip_grad_norm=clip_grad_norm,
                         clip_grad_value=clip_grad_value, **kwargs)
        self.discriminator = discriminator
        #: The discriminator step's half of the transaction: what its forward pass
        #: changes (running statistics of every module the loss reaches, the generator's
        #: too; every parameter and buffer on the first step), put back with a refused
        #: discriminator or generator step.
        modules = self._guarded_modules([*self.distributions, discriminator])
        slots = {(id(m), n): (m, n) for d in modules for m, n in running_slots(d)}
        self._d_guard = StepGuard(modules, list(slots.values()))
        self.d_optimizer = build_optimizer(d_optimizer, unique_parameters([discriminator]),
                                           d_optimizer_params)
        if self.check_every > 1 and \
                not getattr(self.d_optimizer, "_step_supports_amp_scaling", False):
            raise ModelError(
                f"GAN(check_every={self.check_every}) skips a refused step on the device, "
                f"the discriminator's too: its optimizer must be a fused one as well, e.g. "
                f"d_optimizer_params={{'fused': True, ...}}; got "
                f"{type(self.d_optimizer).__name__} without fused=True")
        if self.ddp is not None:  # the discriminator is trained outside DDP: same start
            _dist.broadcast_from_rank0(discriminator)

    # Pixyz's GAN.train returns (loss, d_loss): not the base class's one tensor
    def train(self, train_x_dict: Optional[Dict] = None,  # type: ignore[override]
              adversarial_loss: bool = True,
              **kwargs: Any
              ) -> Union[torch.Tensor, Tuple[torch.Tensor, Optional[torch.Tensor]]]:
        kwargs = pixyz_keywords(kwargs, f"{type(self).__name__}.train()")  # warn once
        if self._deferred is not None:
            if self._deferred.due():
                self.sync()  # before this call changes anything, the discriminator included
            if adversarial_loss and not self._guard.first and not self._d_guard.first and all(
                    q in self.d_optimizer.state for q in self.discriminator.parameters()
                    if q.requires_grad):
                return self._deferred_train(train_x_dict, kwargs)
        d_loss = saved = None
        if adversarial_loss:
            d_value = self._discriminator_backward(train_x_dict, kwargs)
            if not self._discriminator_step_is_finite(d_value):
                return d_value.detach(), d_value.detach()
            saved = snapshot_module_and_optimizer(self.discriminator, self.d_optimizer)
            with deferred_interrupt():
                self.d_optimizer.step()
                self._clip_discriminator()
            d_loss = d_value.detach()
        # Generator step: the discriminator's gradients from it are discarded.  Both steps
        # are committed together, or neither: a refused or failed generator step puts the
        # discriminator back (its step, then what its forward pass changed).
        steps = self.step_count
        try:
            loss = super().train(train_x_dict, **kwargs)
        except BaseException:
            if saved is not None:
                restore_module_and_optimizer(saved)
                self._d_guard.restore()
            raise
        finally:
            self.d_optimizer.zero_grad(set_to_none=True)
        if saved is not None:
            if self.step_count == steps:  # refused and skipped
                restore_module_and_optimizer(saved)
                self._d_guard.restore()
            else:
                self._d_guard.accept()
        return (loss, d_loss) if adversarial_loss else loss

    def _discriminator_backward(self, x_dict: Optional[Dict], kwargs: Dict) -> torch.Tensor:
        """The discriminator-side loss and its gradients (all-reduced when distributed),
        from fresh ones; returns the loss.  What the forward pass changes is snapshotted
        in :attr:`_d_guard` first, and put back if this raises; the caller accepts or
        restores it with the steps' verdict."""
        self.discriminator.train()
        self.d_optimizer.zero_grad(set_to_none=True)
        self._d_guard.snapshot()  # in training mode: its running statistics are copied
        try:
            d_value = self.loss_cls.d_loss(x_dict, **kwargs)
            d_value.backward()
            if self.ddp is not None:
                _dist.average_gradients(unique_parameters([self.discriminator]))
        except BaseException:
            self._d_guard.restore()
            self.d_optimizer.zero_grad(set_to_none=True)
            raise
        return d_value

    def _clip_discriminator(self) -> None:
        """The Wasserstein critic's weight clipping after its step (idempotent)."""
        if isinstance(self.loss_cls, AdversarialWassersteinDistance):
            with torch.no_grad():
                for q in self.discriminator.parameters():
                    q.clamp_(-self.loss_cls.clip_value, self.loss_cls.clip_value)

    def _deferred_train(self, x_dict: Optional[Dict], kwargs: Dict
                        ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Both steps under ``check_every`` (:mod:`pixyz_pyro.model.deferred`): the
        discriminator's verdict stays on the device, its fused optimizer skips there, the
        generator's step is refused with it (``_linked``), and a refused generator step
        puts the discriminator back with ``where``: both steps or neither, without a
        read."""
        d_value = self._discriminator_backward(x_dict, kwargs)
        grads = [q.grad for q in self.discriminator.parameters() if q.grad is not None]
        d_bad = finite_check(d_value.detach(), grads).isfinite().logical_not()
        kept = device_snapshot(self.discriminator, self.d_optimizer)
        with deferred_interrupt():
            with skipped_where(self.d_optimizer, d_bad):
                self.d_optimizer.step()
            self._clip_discriminator()
        self._linked = (d_bad, d_value.detach())
        assert self._deferred is not None
        try:
            loss = super().train(x_dict, **kwargs)
        except BaseException:
            restore_where(kept)
            self._d_guard.restore()
            raise
        finally:
            self._linked = None
            self.d_optimizer.zero_grad(set_to_none=True)
        bad = self._deferred.pending[-1].bad
        restore_where(kept, bad)  # the discriminator's step, then its forward pass
        self._d_guard.restore_where(bad)
        self._d_guard.accept()
        return loss, d_value.detach()

    def _linked_error(self, p: PendingStep, step: int, note: str) -> Exception:
        """A pending step refused at its discriminator's step."""
        assert p.linked is not None
        return NonFiniteError(
            f"non-finite discriminator loss or gradient at step {step}: "
            f"{self.loss_cls.loss_text} (discriminator side) is {float(p.linked[1]):.4g}; "
            f"the discriminator's and the generator's steps were refused {note}).")

    def _discriminator_step_is_finite(self, d_value: torch.Tensor) -> bool:
        """The NaN guard of the discriminator step: one read of its loss and gradients;
        a non-finite step is refused (raises, or is skipped and counted with
        ``skip_nonfinite``) before the optimizer touches anything."""
        grads = [q.grad for q in self.discriminator.parameters() if q.grad is not None]
        if is_finite(finite_check(d_value.detach(), grads).item()):
            return True
        self._d_guard.restore()  # the running statistics its forward pass changed
        self.d_optimizer.zero_grad(set_to_none=True)
        if self.skip_nonfinite:
            self.skipped_steps += 1
            return False
        raise NonFiniteError(
            f"non-finite discriminator loss or gradient at step {self.step_count}: "
            f"{self.loss_cls.loss_text} (discriminator side) is {float(d_value.detach()):.4g}; the "
            f"discriminator's step was refused; parameters, buffers and optimizer state are "
            f"unchanged")

    def test(self, test_x_dict: Optional[Dict] = None,  # type: ignore[override]
             adversarial_loss: bool = True,
             **kwargs: Any) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        """The generator's test loss, and with ``adversarial_loss`` the discriminator's:
        ``(loss, d_loss)``.  Both are evaluated without gradients and with every module
        the loss reaches in eval mode (Pixyz's ``loss_test``), so running statistics never
        change and dropout is off; the listed distributions stay in eval mode (as with
        :meth:`Model.test`), the other modules get their modes back."""
        kwargs = pixyz_keywords(kwargs, f"{type(self).__name__}.test()")  # warn once
        loss = super().test(test_x_dict, **kwargs)
        if not adversarial_loss:
            return loss
        modules = {id(m): m for d in self._d_guard.modules if isinstance(d, nn.Module)
                   for m in d.modules()}
        modes = [(m, m.training) for m in modules.values()]
        try:
            for m, _ in modes:
                m.training = False
            with torch.no_grad():
                d_loss = self.loss_cls.d_loss(test_x_dict, **kwargs)
        finally:
            for m, mode in modes:
                m.training = mode
        return loss, d_loss

    def _checkpoint_extras(self) -> Dict:
        """The discriminator and its optimizer, saved and restored with the model."""
        return {"discriminator": self.discriminator, "d_optimizer": self.d_optimizer}
