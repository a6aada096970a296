"""Monte Carlo expectations, vectorised over ``sample_shape``.

.. math::

    \\mathbb{E}_{p(z|x)}[f(x, z)] \\approx \\frac{1}{S} \\sum_{s=1}^S f(x, z_s),
    \\quad z_s \\sim p(z|x)

All :math:`S` draws are taken in one call: the executor folds ``sample_shape`` into the
batch (see :mod:`pixyz_pyro.dist.shapes`), evaluates ``f`` once, and averages.
"""

import torch

from ..dist.shapes import fold, numel
from ..errors import LossError
from .base import Loss, as_loss
from .pdf import LogProb
from .values import ValueLoss


class Expectation(Loss):
    """:math:`\\mathbb{E}_{p}[f]`, reparameterised where ``p`` allows.

    Parameters
    ----------
    p : Distribution
        The distribution to draw from.
    f : Loss
        The integrand.
    sample_shape : torch.Size
        Number of draws (default one).
    reparam : bool
        Draw reparameterised samples so that gradients reach ``p``.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"])
    >>> e = Expectation(q, LogProb(p), sample_shape=[1000])
    >>> print(e)
    \\mathbb{E}_{q(z|x)} \\left[\\log p(x|z) \\right]
    >>> _ = torch.manual_seed(0)
    >>> round(float(e.eval({"x": torch.zeros(1, 1)})), 1)  # -log(2 pi)/2 - 1/2
    -1.4
    """

    def __init__(self, p, f=None, sample_shape=torch.Size([1]), reparam: bool = True,
                 _gradient_free: bool = False):
        self.p = p
        self.f = as_loss(f) if f is not None else ValueLoss(0)
        self.sample_shape = torch.Size(sample_shape if not isinstance(sample_shape, int)
                                       else [sample_shape])
        self.n = numel(self.sample_shape)
        self.reparam = reparam
        self._gradient_free = _gradient_free
        self._freeze()

    @property
    def children(self):
        return (self.f,)

    def distributions(self):
        out = [self.p]
        for d in self.f.distributions():
            if all(d is not o for o in out):
                out.append(d)
        return out

    @property
    def _input_var(self):
        out = list(self.p.input_var)
        for v in self.f.input_var:
            if v not in out and v not in self.p.var:
                out.append(v)
        return out

    def _check_reparam(self) -> None:
        if self._gradient_free or self.p.has_reparam or not torch.is_grad_enabled():
            return
        if any(t.requires_grad for t in self.p.parameters()):
            raise LossError(
                f"Expectation over {self.p.prob_text}: {self.p.distribution_name or 'it'} "
                f"cannot be reparameterised, so no gradient reaches its parameters through "
                f"samples. Use REINFORCE({self.p.prob_text.split('(')[0]}, f) for a "
                f"score-function estimator, a relaxed family (RelaxedCategorical), or "
                f"enumerate it with pixyz_pyro.infer.")

    def _eval(self, values, ctx):
        p_inputs = self.__dict__.get("_p_inputs")
        if p_inputs is None:  # the plan, once: the check and p's input names
            self._check_reparam()
            p_inputs = tuple(self.p.input_var)
            object.__setattr__(self, "_p_inputs", p_inputs)
        n, p = self.n, self.p
        batch_n = ctx.batch_n
        for v in p_inputs:  # the batch size of p's first batched input, else the call's
            t = values.get(v)
            if isinstance(t, torch.Tensor) and t.dim() > 0:
                batch_n = t.shape[0]
                break
        if n == 1:
            new = p._sample_values(values, ctx, self.reparam, batch_n)
            value, more = self.f._run({**values, **new}, ctx)
            if more:
                new = {**new, **more}
            return value, new
        b = batch_n or 1
        names = [k for k, v in values.items()
                 if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == b]
        folded = fold(values, names, n)
        # n * b draws: inputs are folded to n * b rows, and a distribution whose parameters
        # ignore its inputs (batch 1) is widened to the same n * b rows.
        new = p._sample_values(folded, ctx, self.reparam, n * b)
        value, more = self.f._run({**folded, **new}, ctx)
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            value = value.reshape(n, -1, *value.shape[1:]).mean(0)
        new.update(more)
        return value, {k: v.reshape(*self.sample_shape, -1, *v.shape[1:])
                       for k, v in new.items()}


#: The paper's spelling.
LossExpectation = Expectation


def REINFORCE(p, f, b=ValueLoss(0), sample_shape=torch.Size([1]), reparam: bool = True):  # noqa: B008 - immutable
    """The score-function estimator of :math:`\\nabla \\mathbb{E}_p[f]`:

    .. math::

        \\mathbb{E}_{p}\\left[f + (\\log p - \\mathrm{detach}(\\log p))
        \\cdot \\mathrm{detach}(f - b)\\right]

    whose value equals :math:`\\mathbb{E}_p[f]` (the second term is zero) and whose
    gradient is the REINFORCE estimator with baseline ``b``.
    """
    f = as_loss(f)
    fb = f.detach() - b if not (isinstance(b, ValueLoss) and b.value == 0) else f.detach()
    score = LogProb(p) - LogProb(p).detach()
    return Expectation(p, f + score * fb, sample_shape, reparam=reparam,
                       _gradient_free=True)
