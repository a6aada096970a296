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
from typing import Any, Dict, List, Optional, Tuple, Type

import torch
import torch.nn.functional as F

from ..dist.distribution import Distribution
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
    default_optimizer: Type[torch.optim.Optimizer] = torch.optim.Adam

    def __init__(self, p: Distribution, q: Distribution, discriminator: Distribution,
                 optimizer: Optional[Type[torch.optim.Optimizer]] = None,
                 optimizer_params: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
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

    def distributions(self) -> List[Distribution]:
        return [self.p, self.q, self.d]

    @property
    def _input_var(self) -> List[str]:
        out = list(self.p.input_var)
        out += [v for v in self.q.input_var if v not in out]
        return out

    def d_loss(self, x_dict: Optional[Dict[str, object]] = None, **kwargs: Any) -> torch.Tensor:
        """The discriminator-side loss (samples detached)."""
        return self.eval(x_dict, discriminator=True, **kwargs)

    def loss_train(self, train_x_dict: Optional[Dict[str, object]] = None,
                   **kwargs: Any) -> torch.Tensor:
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

    def loss_test(self, test_x_dict: Optional[Dict[str, object]] = None,
                  **kwargs: Any) -> torch.Tensor:
        """The discriminator-side loss in evaluation mode, without gradients."""
        self.d.eval()
        with torch.no_grad():
            return self.d_loss(test_x_dict, **kwargs)

    def train(self, mode: Any = True, **kwargs: Any) -> Any:
        """``train(mode)`` sets training mode (``nn.Module.train``); ``train(x_dict)`` is
        Pixyz 0.1/0.2's spelling of :meth:`loss_train` (deprecated)."""
        if hasattr(mode, "keys"):
            _old_spelling("train", "loss_train")
            return self.loss_train(mode, **kwargs)
        return super().train(mode)

    def test(self, test_x_dict: Optional[Dict[str, Any]] = None, **kwargs: Any) -> Any:
        """Pixyz 0.1/0.2's spelling of :meth:`loss_test` (deprecated)."""
        _old_spelling("test", "loss_test")
        return self.loss_test(test_x_dict, **kwargs)

    def _after_step(self) -> None:
        """Called after each :meth:`loss_train` step (the critic's weight clipping)."""

    def _no_grad_data(self, yp: torch.Tensor, yq: torch.Tensor
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.p.distribution_name == "Data distribution":
            yp = yp.detach()
        if self.q.distribution_name == "Data distribution":
            yq = yq.detach()
        return yp, yq


def _bce(y: torch.Tensor, target: float) -> torch.Tensor:
    """``F.binary_cross_entropy(y, target)`` (its clamps and saturation gradients), except
    that a NaN in ``y`` makes the value NaN -- for the NaN guard -- instead of raising."""
    safe = torch.nan_to_num(y, nan=0.5)
    return F.binary_cross_entropy(safe, torch.full_like(y, target)) + 0.0 * y.sum()


class AdversarialJensenShannon(AdversarialLoss):
    """:math:`2 D_{JS}[p\\|q] - 2\\log 2 = \\max_d \\mathbb{E}_p[\\log d] +
    \\mathbb{E}_q[\\log(1 - d)]`, with the non-saturating generator loss by default
    (``inverse_g_loss=True``).

    .. math::

        \\mathcal{L}_d = -\\mathbb{E}_p[\\log d(x)] - \\mathbb{E}_q[\\log(1 - d(x))]

    Parameters
    ----------
    p, q : Distribution
        The two distributions compared (``p`` is usually the data's
        :class:`~pixyz_pyro.dist.EmpiricalDistribution`).
    discriminator : Distribution
        :math:`d(x)`, a :class:`~pixyz_pyro.dist.Deterministic` network with values in
        :math:`(0, 1)` (any real value for the Wasserstein critic).
    optimizer : type, optional
        The discriminator's optimizer class for ``loss_train`` (Pixyz's API).
    optimizer_params : dict, optional
        Its keyword arguments.
    inverse_g_loss : bool
        The generator minimises :math:`-\\log d` on its samples instead of
        :math:`\\log(1 - d)`.

    Examples
    --------
    A discriminator that says 1/2 everywhere: both sides are :math:`2 \\log 2`.

    >>> import torch
    >>> from torch import nn
    >>> from pixyz_pyro.dist import Deterministic, EmpiricalDistribution, Normal
    >>> class Discriminator(Deterministic):
    ...     def __init__(self):
    ...         super().__init__(var=["t"], cond_var=["x"], name="d")
    ...         self.net = nn.Linear(1, 1)
    ...         nn.init.zeros_(self.net.weight), nn.init.zeros_(self.net.bias)
    ...     def forward(self, x):
    ...         return {"t": torch.sigmoid(self.net(x))}
    >>> p_data = EmpiricalDistribution(["x"])
    >>> q = Normal(loc=0., scale=1., var=["x"], features_shape=[1], name="q")
    >>> x = {"x": torch.randn(8, 1)}
    >>> loss = AdversarialJensenShannon(p_data, q, Discriminator())
    >>> print(loss)
    mean(D_{JS}^{Adv} \\left[p_{data}(x)||q(x) \\right])
    >>> round(float(loss.eval(x).detach()), 4), round(float(loss.d_loss(x).detach()), 4)
    (1.3863, 1.3863)
    """

    def __init__(self, p: Distribution, q: Distribution, discriminator: Distribution,
                 optimizer: Optional[Type[torch.optim.Optimizer]] = None,
                 optimizer_params: Optional[Dict[str, Any]] = None,
                 inverse_g_loss: bool = True) -> None:
        super().__init__(p, q, discriminator, optimizer, optimizer_params)
        self.inverse_g_loss = inverse_g_loss
        self._freeze()

    def _latex_text(self) -> str:
        return f"mean(D_{{JS}}^{{Adv}} \\left[{self.p.prob_text}||{self.q.prob_text} \\right])"

    def _d_loss(self, yp: torch.Tensor, yq: torch.Tensor) -> torch.Tensor:
        return _bce(yp, 1.0) + _bce(yq, 0.0)

    def _g_loss(self, yp: torch.Tensor, yq: torch.Tensor) -> torch.Tensor:
        if self.inverse_g_loss:
            lp, lq = _bce(yp, 0.0), _bce(yq, 1.0)
        else:
            lp, lq = -_bce(yp, 1.0), -_bce(yq, 0.0)
        lp, lq = self._no_grad_data(lp, lq)
        return lp + lq


class AdversarialKullbackLeibler(AdversarialLoss):
    """:math:`D_{KL}[p\\|q] \\approx \\mathbb{E}_p[\\log \\frac{d}{1-d}]` with
    :math:`d^* = \\arg\\max_d \\mathbb{E}_q[\\log d] + \\mathbb{E}_p[\\log(1-d)]`.

    .. math::

        D_{KL}[p\\|q] \\approx \\mathbb{E}_p\\left[\\log \\frac{d(x)}{1 - d(x)}\\right]

    Parameters
    ----------
    p, q : Distribution
        The two distributions compared (``p`` is usually the data's
        :class:`~pixyz_pyro.dist.EmpiricalDistribution`).
    discriminator : Distribution
        :math:`d(x)`, a :class:`~pixyz_pyro.dist.Deterministic` network with values in
        :math:`(0, 1)` (any real value for the Wasserstein critic).
    optimizer : type, optional
        The discriminator's optimizer class for ``loss_train`` (Pixyz's API).
    optimizer_params : dict, optional
        Its keyword arguments.

    Examples
    --------
    A discriminator that says 1/2 everywhere estimates the KL as 0:

    >>> import torch
    >>> from torch import nn
    >>> from pixyz_pyro.dist import Deterministic, EmpiricalDistribution, Normal
    >>> class Discriminator(Deterministic):
    ...     def __init__(self):
    ...         super().__init__(var=["t"], cond_var=["x"], name="d")
    ...         self.net = nn.Linear(1, 1)
    ...         nn.init.zeros_(self.net.weight), nn.init.zeros_(self.net.bias)
    ...     def forward(self, x):
    ...         return {"t": torch.sigmoid(self.net(x))}
    >>> p_data = EmpiricalDistribution(["x"])
    >>> q = Normal(loc=0., scale=1., var=["x"], features_shape=[1], name="q")
    >>> x = {"x": torch.randn(8, 1)}
    >>> loss = AdversarialKullbackLeibler(p_data, q, Discriminator())
    >>> print(loss)
    mean(D_{KL}^{Adv} \\left[p_{data}(x)||q(x) \\right])
    >>> round(float(loss.eval(x).detach()), 4), round(float(loss.d_loss(x).detach()), 4)
    (0.0, 1.3863)
    """

    def __init__(self, p: Distribution, q: Distribution, discriminator: Distribution,
                 **kwargs: Any) -> None:
        super().__init__(p, q, discriminator, **kwargs)
        self._freeze()

    def _latex_text(self) -> str:
        return f"mean(D_{{KL}}^{{Adv}} \\left[{self.p.prob_text}||{self.q.prob_text} \\right])"

    def _d_loss(self, yp: torch.Tensor, yq: torch.Tensor) -> torch.Tensor:
        return _bce(yp, 1.0) + _bce(yq, 0.0)

    def _g_loss(self, yp: torch.Tensor, yq: torch.Tensor) -> torch.Tensor:
        return -_bce(yp, 1.0) + _bce(yp, 0.0)


class AdversarialWassersteinDistance(AdversarialJensenShannon):
    """:math:`W(p, q) = \\sup_{\\|d\\|_L \\le 1} \\mathbb{E}_p[d] - \\mathbb{E}_q[d]`.
    The critic's weights are clipped to ``clip_value`` by the GAN model after each step.

    .. math::

        W(p, q) \\approx \\mathbb{E}_p[d(x)] - \\mathbb{E}_q[d(x)]

    Parameters
    ----------
    p, q : Distribution
        The two distributions compared (``p`` is usually the data's
        :class:`~pixyz_pyro.dist.EmpiricalDistribution`).
    discriminator : Distribution
        :math:`d(x)`, a :class:`~pixyz_pyro.dist.Deterministic` network with values in
        :math:`(0, 1)` (any real value for the Wasserstein critic).
    optimizer : type, optional
        The discriminator's optimizer class for ``loss_train`` (Pixyz's API).
    optimizer_params : dict, optional
        Its keyword arguments.
    clip_value : float
        The critic's weights are clamped to :math:`[-c, c]` after each step.

    Raises
    ------
    ValueError
        If ``clip_value`` is not a positive number.

    Examples
    --------
    A constant critic sees no difference between the two:

    >>> import torch
    >>> from torch import nn
    >>> from pixyz_pyro.dist import Deterministic, EmpiricalDistribution, Normal
    >>> class Discriminator(Deterministic):
    ...     def __init__(self):
    ...         super().__init__(var=["t"], cond_var=["x"], name="d")
    ...         self.net = nn.Linear(1, 1)
    ...         nn.init.zeros_(self.net.weight), nn.init.zeros_(self.net.bias)
    ...     def forward(self, x):
    ...         return {"t": torch.sigmoid(self.net(x))}
    >>> p_data = EmpiricalDistribution(["x"])
    >>> q = Normal(loc=0., scale=1., var=["x"], features_shape=[1], name="q")
    >>> x = {"x": torch.randn(8, 1)}
    >>> loss = AdversarialWassersteinDistance(p_data, q, Discriminator())
    >>> print(loss)
    mean(W^{Adv} \\left(p_{data}(x), q(x) \\right))
    >>> round(abs(float(loss.eval(x).detach())), 4)
    0.0
    """

    #: The WGAN paper's optimizer of the critic.
    default_optimizer = torch.optim.RMSprop

    def __init__(self, p: Distribution, q: Distribution, discriminator: Distribution,
                 clip_value: float = 0.01, **kwargs: Any) -> None:
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

    def _latex_text(self) -> str:
        return f"mean(W^{{Adv}} \\left({self.p.prob_text}, {self.q.prob_text} \\right))"

    def _d_loss(self, yp: torch.Tensor, yq: torch.Tensor) -> torch.Tensor:
        return -(yp.mean() - yq.mean())

    def _g_loss(self, yp: torch.Tensor, yq: torch.Tensor) -> torch.Tensor:
        yp, yq = self._no_grad_data(yp, yq)
        return yp.mean() - yq.mean()
