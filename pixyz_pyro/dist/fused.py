"""Fused scores: the log-density of a common likelihood as ONE autograd node.

Two of them: :class:`BernoulliLogProb` (a Bernoulli scored from probabilities) and
:class:`NormalLogProb` (a Normal, the usual decoder of continuous data, most often with a
fixed scale).

Scoring a Bernoulli from probabilities the way Pyro does (clamp, logit, then
binary cross-entropy with logits) records three autograd nodes, which keep the logits
of the whole batch alive until backward and allocate two more batch-sized buffers
there.  :class:`BernoulliLogProb` computes the log-likelihood outside autograd, written
out as

.. math::

    \\log p(x | \\pi) = x \\log \\pi_c + (1 - x) \\log (1 - \\pi_c), \\qquad
    \\pi_c = \\mathrm{clamp}(\\pi, \\epsilon, 1 - \\epsilon),

in six kernels with one logarithm and one ``log1p`` (the ``torch.compile`` form of
:func:`~pixyz_pyro.dist.family._bernoulli_log_prob`; a third faster than the logit and
``log_sigmoid`` of Pyro's form on a 128 x 784 batch: 0.20 against 0.31 ms on one CPU
thread; in place, so that two batch-sized buffers, the clamped probabilities and the
result, are alive at its peak, as in the logit form), and writes the gradient in closed form,

.. math::

    \\frac{\\partial}{\\partial \\pi} \\log p(x | \\pi)
    = \\frac{x - \\pi}{\\pi (1 - \\pi)} \\, \\mathbb{1}[\\epsilon \\le \\pi \\le 1 - \\epsilon],

which is ``torch.logit``'s own backward (zero where the clamp is active) applied to
:math:`x - \\pi`.  It saves only the probabilities and the value, which the network's
sigmoid and the data keep alive anyway.  Under ``create_graph`` the backward is written
in differentiable operations, so gradients of gradients work.

Both forms are the same function; in float32 they differ by rounding.  The written-out
form is the accurate one: each element is within 1.5e-7 of the float64 value relative to
itself, where Pyro's form, :math:`(1 - x)\\,\\mathrm{logit}(\\pi_c) -
\\log\\sigma(\\mathrm{logit}(\\pi_c))`, cancels two numbers of size
:math:`|\\log \\pi_c|` to give a background pixel's :math:`\\log(1 - \\pi_c) \\approx
-\\pi_c` and keeps only about 1e-6 of it absolutely.  The two agree to 2e-6 per element
(one float32 step where :math:`|\\log p| \\approx 16`; ``tests/test_fused.py`` checks both
against float64).

A Python node costs a few tens of microseconds per call, more than it saves on a small
tensor (a step of a sequence model), so :data:`FUSED_MIN` decides: the fused node for a
batch of images, Pyro's form in two kernels below it (``torch.logit`` and
``binary_cross_entropy_with_logits``, Pyro's expression).

>>> p = torch.tensor([[0.2, 0.9]], requires_grad=True)
>>> x = torch.tensor([[0., 1.]])
>>> lp = BernoulliLogProb.apply(p, x, 1e-6)
>>> [round(v, 4) for v in lp.tolist()[0]]
[-0.2231, -0.1054]
>>> lp.sum().backward()
>>> [round(v, 4) for v in p.grad.tolist()[0]]
[-1.25, 1.1111]
"""
import math
from typing import Any, Optional, Tuple

import torch

#: Elements from which a Bernoulli or Normal score is one fused node (a 128 x 784 batch
#: has 100352).
FUSED_MIN = 32768
_LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


def normal_log_density(x: torch.Tensor, loc: torch.Tensor,
                       scale: torch.Tensor) -> torch.Tensor:
    """:math:`\\log \\mathcal{N}(x | \\mu, \\sigma) = -\\frac12 z^2 - \\log\\sigma
    - \\log\\sqrt{2\\pi}` with :math:`z = (x - \\mu) / \\sigma`, in five kernels:
    the square and its factor folded into one ``addcmul``, the constants into one
    ``rsub``.  torch's ``Normal.log_prob`` writes
    :math:`-(x - \\mu)^2 / (2\\sigma^2)` and takes nine, which on a small tensor (a step of
    a sequence model, a latent code) costs a quarter more forward and backward; the values
    agree to float32 rounding (``tests/test_family_closed_forms.py``)."""
    z = (x - loc) / scale
    return torch.addcmul(torch.rsub(scale.log(), -_LOG_SQRT_2PI), z, z, value=-0.5)


def normal_neg_log_density(x: torch.Tensor, loc: torch.Tensor,
                           scale: torch.Tensor) -> torch.Tensor:
    """:math:`-\\log \\mathcal{N}(x | \\mu, \\sigma)` with the bits of
    ``-normal_log_density``: the same operations with the signs moved inwards (IEEE
    rounding is symmetric, so :math:`-(-c - l) = l + c` and
    :math:`-(a - \\frac12 z z) = -a + \\frac12 z z` exactly) and no negation."""
    z = (x - loc) / scale
    return torch.addcmul(scale.log().add(_LOG_SQRT_2PI), z, z, value=0.5)


class BernoulliLogProb(torch.autograd.Function):
    """:math:`\\log p(x|\\pi)` elementwise, from probabilities ``probs`` clamped to
    :math:`[\\epsilon, 1 - \\epsilon]` (see the module docstring)."""

    @staticmethod
    def forward(ctx: Any, probs: torch.Tensor, x: torch.Tensor,
                eps: float) -> torch.Tensor:
        ctx.save_for_backward(probs, x)
        ctx.eps = eps
        clamped = probs.clamp(eps, 1 - eps)
        out = clamped.neg().log1p_()  # log(1 - pi_c)
        # (1 - x) log(1 - pi_c) as l - l x, exact at x = 0 and x = 1, then + x log pi_c;
        # in place, so that two batch-sized buffers are alive at once, not three
        return out.addcmul_(out, x, value=-1).addcmul_(x, clamped.log_())

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor
                 ) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor], None]:
        probs, x = ctx.saved_tensors
        grad_probs = grad_x = None
        if ctx.needs_input_grad[0]:
            eps = ctx.eps
            if torch.is_grad_enabled():  # create_graph: differentiable operations
                inside = (probs >= eps) & (probs <= 1 - eps)
                grad_probs = torch.where(inside, grad * (x - probs) / (probs * (1 - probs)),
                                         torch.zeros_like(probs))
            else:  # torch.logit's own backward kernel (it has no derivative itself)
                grad_probs = torch.ops.aten.logit_backward(grad * (x - probs), probs, eps)
        if ctx.needs_input_grad[1]:  # d/dx = logit(pi_c)
            grad_x = grad * torch.logit(probs, ctx.eps)
        return grad_probs, grad_x, None


def _reduced(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``grad`` summed over the dimensions that broadcasting added to an input of
    ``shape``."""
    if grad.shape == shape:
        return grad
    lead = grad.dim() - len(shape)
    dims = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape)
                                      if n == 1 and grad.shape[i + lead] != 1)
    return grad.sum(dims, keepdim=True).reshape(shape) if dims else grad.reshape(shape)


class NormalLogProb(torch.autograd.Function):
    """:math:`\\log \\mathcal{N}(x | \\mu, \\sigma)` elementwise, as ONE autograd node.

    The value is :func:`normal_log_density`'s, kernel for kernel (the same bits as the
    composed score); the gradients are written in closed form,

    .. math::

        \\frac{\\partial}{\\partial \\mu} = \\frac{x - \\mu}{\\sigma^2}
        = -\\frac{\\partial}{\\partial x}, \\qquad
        \\frac{\\partial}{\\partial \\sigma} = \\frac{(x - \\mu)^2}{\\sigma^3}
        - \\frac{1}{\\sigma},

    each computed only for the inputs that need it (a fixed scale needs none), and summed
    back over broadcast dimensions.  Composed, the score records five batch-sized nodes
    whose backward keeps the squared residual and its quotient alive and runs about ten
    batch-sized kernels; this node saves only its inputs, which the network and the data
    keep alive anyway.  Its backward is made of differentiable operations, so gradients
    of gradients work.

    >>> x, loc = torch.tensor([[0.5, 1.0]]), torch.zeros(1, 2, requires_grad=True)
    >>> lp = NormalLogProb.apply(x, loc, torch.tensor(2.0))
    >>> [round(v, 4) for v in lp.tolist()[0]]
    [-1.6433, -1.7371]
    >>> lp.sum().backward()
    >>> loc.grad.tolist()
    [[0.125, 0.25]]
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, loc: torch.Tensor,
                scale: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, loc, scale)
        return normal_log_density(x, loc, scale)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor
                 ) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor],
                            Optional[torch.Tensor]]:
        x, loc, scale = ctx.saved_tensors
        need_x, need_loc, need_scale = ctx.needs_input_grad
        z = (x - loc) / scale
        g_mean = grad * z / scale  # d/d loc
        g_x = _reduced(-g_mean, x.shape) if need_x else None
        g_loc = _reduced(g_mean, loc.shape) if need_loc else None
        g_scale = _reduced(grad * (z * z - 1) / scale, scale.shape) if need_scale else None
        return g_x, g_loc, g_scale
