"""Multi-sample bounds as Pyro's own ``RenyiELBO``: the IWAE / Rényi part of the map from
losses to stock Pyro ELBOs.

A loss that is, up to a constant factor and its batch reduction, one
:class:`~pixyz_pyro.loss.VRBound` (``IWAE`` is :math:`\\alpha = 0`) with the ``"reparam"``
estimator (:func:`~pixyz_pyro.infer.objective.objective` recognises it, and
:class:`~pixyz_pyro.infer.SVILoss` runs it on its own),

.. math::

    c \\sum_n \\mathcal{L}_\\alpha(x_n) \\quad\\text{or}\\quad
    c \\frac1N \\sum_n \\mathcal{L}_\\alpha(x_n), \\qquad
    \\mathcal{L}_\\alpha(x) = \\frac{1}{1-\\alpha}
    \\log \\frac1k \\sum_{i=1}^k \\left(\\frac{p(x, z_i)}{q(z_i|x)}\\right)^{1-\\alpha},

is Pyro's ``RenyiELBO(alpha, num_particles=k, vectorize_particles=True)`` on the programs
``to_pyro(p, observed=<p's variables that q does not draw>)`` and ``to_pyro(q)``: Pyro
draws the ``k`` particles in one vectorised trace, takes the log-mean-exp over them per
row of the data plate, and sums over the rows (``-IWAE(p, q, k).sum()`` is its loss; a
``.mean()`` divides the value and the gradient by the number of rows).  On the same draws
the two executors give the same value and the same gradients.

``"stl"`` and ``"dreg"`` have no Pyro counterpart (``RenyiELBO`` differentiates the
value), so those losses do not map (:func:`renyi_objective` returns ``None``) and stay on
the direct executor.
"""
import math
from typing import Any, Optional

import torch
from pyro.infer import RenyiELBO

from ..errors import LossError
from ..loss.base import Loss
from ..loss.bounds import VRBound
from .objective import objective
from .program import PyroProgram, to_pyro


class RenyiObjective:
    """A multi-sample bound as Pyro runs it: ``model``, ``guide`` and ``elbo``.

    ``elbo`` is the stock ``pyro.infer.RenyiELBO``; :meth:`loss` and
    :meth:`loss_and_grads` give the pixyz_pyro loss's value (its sign and reduction
    applied) from Pyro's computation, with the gradient of that value.

    Parameters
    ----------
    bound : VRBound
        The bound (``IWAE`` is ``VRBound`` at :math:`\\alpha = 0`).
    sign : float
        The loss is ``sign`` times the reduced bound (``-1.0`` for ``-IWAE(...).sum()``).
    reduction : str
        ``"sum"`` or ``"mean"`` over the batch.

    Examples
    --------
    >>> import torch, pyro
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import IWAE
    >>> q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], features_shape=[1],
    ...            name="q")
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"], features_shape=[1]) * Normal(
    ...     loc=0., scale=1., var=["z"], features_shape=[1])
    >>> obj = renyi_objective(-IWAE(p, q, k=50).sum())
    >>> obj.elbo.num_particles, obj.elbo.alpha, obj.model.observed
    (50, 0.0, ['x'])
    >>> x = torch.zeros(3, 1)
    >>> _ = torch.manual_seed(0)
    >>> ours = float((-IWAE(p, q, k=50).sum()).eval({"x": x}))
    >>> _ = torch.manual_seed(0)
    >>> abs(obj.loss(x=x) - ours) < 1e-5
    True
    """

    def __init__(self, bound: VRBound, sign: float, reduction: str):
        self.bound = bound
        self.sign = sign
        self.reduction = reduction
        data = [v for v in bound.p.var if v not in bound.q.var]
        self.model: PyroProgram = to_pyro(bound.p, observed=data)
        self.guide: PyroProgram = to_pyro(bound.q)
        self.elbo = RenyiELBO(alpha=bound.alpha, num_particles=bound.k,
                              vectorize_particles=True, max_plate_nesting=1)

    def __repr__(self) -> str:
        return (f"RenyiObjective(alpha={self.bound.alpha}, num_particles={self.bound.k}, "
                f"sign={self.sign:+g}, reduction={self.reduction!r})")

    def _factor(self, args, data) -> float:
        """Pyro's loss is ``-sum_n bound_n``: the factor that turns it into this loss."""
        factor = -self.sign
        if self.reduction == "mean":
            rows = next((v.shape[0] for v in list(args) + list(data.values())
                         if isinstance(v, torch.Tensor) and v.dim() > 0), 1)
            factor /= rows
        return factor

    def loss(self, model=None, guide=None, *args, **data) -> float:
        """The loss's value, from ``RenyiELBO.loss`` (no gradient)."""
        with torch.no_grad():
            value = self.elbo.loss(model or self.model, guide or self.guide, *args, **data)
        return self._factor(args, data) * value

    def loss_and_grads(self, model=None, guide=None, *args, **data) -> float:
        """The loss's value, from ``RenyiELBO.loss_and_grads``, whose backward pass adds
        the loss's gradient to the parameters' ``.grad`` (rescaled for the sign and the
        reduction; gradients already there are kept)."""
        params = [t for d in self.bound.distributions() for t in d.parameters()]
        return scaled_loss_and_grads(self.elbo, self._factor(args, data), params,
                                     model or self.model, guide or self.guide, args, data)


def scaled_loss_and_grads(elbo, factor: float, params, model, guide, args, kwargs) -> float:
    """``factor * elbo.loss_and_grads(model, guide, ...)``, with the gradient it adds to each
    parameter's ``.grad`` scaled by ``factor`` as well (gradients already there are kept).

    The parameters are ``params`` (the loss's modules), those in Pyro's store, and any that
    the run creates (a guide's first ``pyro.param``), found by tracing its param sites."""
    from pyro import get_param_store, poutine

    known = {id(t): t for t in list(params) + [t for _, t in
                                               get_param_store().named_parameters()]}
    before = {i: t.grad for i, t in known.items()}
    for t in known.values():
        t.grad = None
    with poutine.trace(param_only=True) as seen:
        value = elbo.loss_and_grads(model, guide, *args, **kwargs)
    for site in seen.trace.nodes.values():
        v: Any = site["value"]
        t = v.unconstrained() if hasattr(v, "unconstrained") else v
        known.setdefault(id(t), t)
    for i, t in known.items():
        old = before.get(i)
        if t.grad is not None:
            t.grad.mul_(factor)
            if old is not None:
                t.grad.add_(old)
        else:
            t.grad = old
    return factor * value


def renyi_differentiable_loss(elbo: RenyiELBO, model, guide, args, kwargs) -> torch.Tensor:
    """Pyro's ``RenyiELBO`` loss as a tensor, which ``RenyiELBO`` itself does not give: the
    value of ``elbo.loss`` and the gradient of ``elbo.loss_and_grads``, from one set of
    traces (the same draws as either of them on the same random state).

    .. math::

        -\\frac{1}{1-\\alpha} \\sum \\log \\frac1k \\sum_{i=1}^k
        e^{(1-\\alpha)\\,\\ell_i}, \\qquad
        \\ell_i = \\log p(x, z_i) - \\log q(z_i|x),

    summed over the rows of a data plate that every site shares (over nothing when a
    site is global).  The gradient is Pyro's surrogate: the normalised weights times the
    particles' reparameterised terms, and :math:`\\frac{\\alpha}{1-\\alpha} \\log q` for a
    site without ``rsample``.

    Examples
    --------
    >>> import torch, pyro, pyro.distributions as pd
    >>> from pyro.infer import RenyiELBO
    >>> def model(x):
    ...     w = pyro.sample("w", pd.Normal(0., 1.))
    ...     with pyro.plate("data", x.shape[0]):
    ...         pyro.sample("x", pd.Normal(w, 1.), obs=x)
    >>> def guide(x):
    ...     pyro.sample("w", pd.Normal(0.5, 0.3))
    >>> elbo = RenyiELBO(0., num_particles=4, vectorize_particles=True, max_plate_nesting=1)
    >>> x = torch.ones(3)
    >>> _ = torch.manual_seed(0); a = renyi_differentiable_loss(elbo, model, guide, (x,), {})
    >>> _ = torch.manual_seed(0); b = elbo.loss(model, guide, x)
    >>> abs(float(a) - b) < 1e-5
    True
    """
    from pyro.infer.util import get_dependent_plate_dims, is_identically_zero, torch_sum

    alpha = elbo.alpha
    values, scores = [], []
    for model_trace, guide_trace in elbo._get_traces(model, guide, args, kwargs):
        value: Any = 0.0  # its gradient: the reparameterised terms only
        score: Any = 0.0  # the score-function terms, with no value
        dims = get_dependent_plate_dims(model_trace.nodes.values())
        for site in model_trace.nodes.values():
            if site["type"] == "sample":
                value = value + torch_sum(site["log_prob"], dims)
        for site in guide_trace.nodes.values():
            if site["type"] == "sample":
                _, score_term, entropy = site["score_parts"]
                lp = torch_sum(site["log_prob"], dims)
                value = value - (lp if not is_identically_zero(entropy) else lp.detach())
                if not is_identically_zero(score_term):
                    score = score + (alpha / (1.0 - alpha)) * (lp - lp.detach())
        values.append(torch.as_tensor(value))
        scores.append(torch.as_tensor(score))
    vectorized = elbo.vectorize_particles and elbo.num_particles > 1
    ell = values[0] if vectorized else torch.stack(values)
    score = scores[0] if vectorized else torch.stack(scores)
    log_w = (1.0 - alpha) * ell
    bound = (torch.logsumexp(log_w, dim=0) - math.log(elbo.num_particles)).sum() / (1.0 - alpha)
    return -(bound + (torch.softmax(log_w.detach(), dim=0) * score).sum())


def renyi_objective(loss: Loss) -> Optional[RenyiObjective]:
    """``loss`` as Pyro's ``RenyiELBO``, or ``None`` where it is not one.

    It maps ``c * VRBound(p, q, k, alpha).sum()`` and ``.mean()`` (``IWAE`` included, ``c``
    a number) with ``estimator="reparam"``, as :func:`~pixyz_pyro.infer.objective.objective`
    reads it; any other loss, a bound without a batch reduction, ``alpha = 1`` (the ELBO:
    ``Trace_ELBO``), and the ``"stl"`` / ``"dreg"`` estimators (which ``RenyiELBO`` does
    not have) give ``None``.

    Parameters
    ----------
    loss : Loss
        The pixyz_pyro loss.

    Examples
    --------
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import IWAE
    >>> q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], features_shape=[1],
    ...            name="q")
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"], features_shape=[1]) * Normal(
    ...     loc=0., scale=1., var=["z"], features_shape=[1])
    >>> type(renyi_objective(-IWAE(p, q, k=8).mean())).__name__
    'RenyiObjective'
    >>> renyi_objective(-IWAE(p, q, k=8, estimator="dreg").mean()) is None
    True
    """
    if not isinstance(loss, Loss):
        raise LossError(f"renyi_objective needs a pixyz_pyro loss, got {type(loss).__name__}")
    mapping = objective(loss)
    if mapping.elbo != "RenyiELBO" or mapping.bound is None:
        return None
    return RenyiObjective(mapping.bound, -mapping.scale,
                          "mean" if mapping.mean else "sum")
