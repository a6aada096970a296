"""Autoregressive distributions over a binary or a categorical vector: a MADE-masked
network (the image version, a PixelCNN, is in :mod:`pixyz_pyro.dist.pixelcnn`).

.. math::

    p(x|y) = \\prod_{d=1}^{D} \\mathrm{Bern}\\left(x_d \\,\\middle|\\,
    \\sigma(f_d(x_{<d}, y))\\right)

One masked network (Germain et al. 2015) gives all ``D`` logits at once, each reading only
the features before it, so ``log_prob`` is exact and takes one pass; ``sample`` takes
``D`` passes, filling one feature per pass, through the same modules.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ShapeError
from .distribution import Distribution
from .shapes import SHAPES, shape_str


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 ``mask`` (a buffer)."""

    mask: torch.Tensor  # a buffer

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Logits :math:`f_d(x_{<d}, y)` for ``d = 1..D`` in one pass (natural order).

    Hidden unit ``k`` has degree :math:`m_k \\in \\{1..D-1\\}` and reads the inputs
    :math:`d \\le m_k`; output ``d`` reads the hidden units with :math:`m_k < d`; a
    conditioning input ``y`` (``cond_dim`` features) feeds every hidden unit.  Each
    feature may be ``in_per_dim`` inputs (a one-hot code) and ``out_per_dim`` outputs (one
    logit per category), in blocks, feature-major.
    """

    def __init__(self, dim: int, hidden: int, cond_dim: int = 0, in_per_dim: int = 1,
                 out_per_dim: int = 1):
        super().__init__()
        degrees = torch.arange(hidden) % max(dim - 1, 1) + 1
        inputs = torch.arange(1, dim + 1)
        ins, outs = inputs.repeat_interleave(in_per_dim), inputs.repeat_interleave(out_per_dim)
        self.inp = MaskedLinear(dim * in_per_dim, hidden, (degrees[:, None] >= ins[None, :]))
        self.out = MaskedLinear(hidden, dim * out_per_dim, (outs[:, None] > degrees[None, :]))
        self.cond = nn.Linear(cond_dim, hidden, bias=False) if cond_dim else None

    def forward(self, x: torch.Tensor, y=None) -> torch.Tensor:
        h = self.inp(x)
        if self.cond is not None:
            h = h + self.cond(y)
        return self.out(torch.relu(h))


class AutoregressiveBernoulli(Distribution):
    """:math:`p(x|y) = \\prod_d \\mathrm{Bern}(x_d | \\sigma(f_d(x_{<d}, y)))` over ``D``
    binary features, with a :class:`MADE` network.

    .. math::

        \\log p(x|y) = \\sum_{d=1}^{D} x_d \\log \\sigma(f_d) + (1 - x_d) \\log(1 - \\sigma(f_d))

    Parameters
    ----------
    dim : int
        ``D``, the number of features (``features_shape = [D]``).
    hidden : int
        Hidden units of the masked network.
    var, cond_var, name
        As for every distribution; at most one conditioning variable, a vector of
        ``cond_dim`` features (e.g. the latent ``z`` of a VAE decoder).
    cond_dim : int
        Features of the conditioning variable.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> p = AutoregressiveBernoulli(dim=3, hidden=8)
    >>> x = p.sample(batch_n=2)["x"]
    >>> x.shape
    torch.Size([2, 3])
    >>> grid = torch.tensor([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)]).float()
    >>> with torch.no_grad():
    ...     lp = p.get_log_prob({"x": grid})
    >>> round(float(lp.exp().sum()), 4)  # normalised exactly
    1.0
    >>> round(float(lp[0]), 4)
    -1.8898
    """

    def __init__(self, dim: int, hidden: int = 32, var=("x",), cond_var=(), name: str = "p",
                 cond_dim: int = 0):
        super().__init__(var, cond_var, name, torch.Size([dim]))
        if len(self._var) != 1 or len(self._cond_var) > 1:
            raise ShapeError(f"{self.prob_text}: an {type(self).__name__} defines one "
                             f"variable and takes at most one conditioning variable")
        if bool(self._cond_var) != bool(cond_dim):
            raise ShapeError(f"{self.prob_text}: give cond_dim (the features of "
                             f"{self._cond_var or 'the conditioning variable'}) exactly when "
                             f"there is a conditioning variable")
        self.dim = dim
        self.made = MADE(dim, hidden, cond_dim)

    @property
    def distribution_name(self) -> str:
        return "AutoregressiveBernoulli"

    def _cond(self, values):
        return values[self._cond_var[0]] if self._cond_var else None

    def _check(self, x: torch.Tensor, what: str) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.dim:
            got = shape_str(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ShapeError(f'{self.prob_text}: "{what}" must have shape (batch, '
                             f"{self.dim}), got {got} ({SHAPES})")

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        self._require(values, self._var + self._cond_var, "log_prob")
        x = values[self._var[0]]
        self._check(x, self._var[0])
        logits = self.made(x, self._cond(values))
        lp = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        if not sum_features or (feature_dims is not None and not len(feature_dims)):
            return lp
        return lp.sum(dim=tuple(feature_dims) if feature_dims is not None else -1)

    def _sample_values(self, values, ctx, reparam, batch_n):
        """``D`` passes of the network: pass ``d`` fixes feature ``d`` (a new tensor per
        pass, so nothing is written in place)."""
        self._require(values, self._cond_var, "sampling")
        y = self._cond(values)
        rows = y.shape[0] if y is not None else (batch_n or 1)
        ref = self.made.out.bias
        x = torch.zeros(rows, self.dim, dtype=ref.dtype, device=ref.device)
        columns = torch.arange(self.dim, device=ref.device)
        with torch.no_grad():
            for d in range(self.dim):
                probs = torch.sigmoid(self.made(x, y)[:, d])
                x = torch.where(columns == d, torch.bernoulli(probs)[:, None], x)
        return {self._var[0]: x}


class AutoregressiveCategorical(AutoregressiveBernoulli):
    """:math:`p(x|y) = \\prod_d \\mathrm{Cat}(x_d | \\mathrm{softmax}(f_d(x_{<d}, y)))` over
    ``D`` features with ``K`` categories each, with a :class:`MADE` network that reads the
    one-hot code of :math:`x_{<d}` and gives ``K`` logits per feature.

    .. math::

        \\log p(x|y) = \\sum_{d=1}^{D} \\log \\mathrm{softmax}(f_d(x_{<d}, y))_{x_d}

    Values are the category indices ``0..K-1``, shape ``(batch, D)`` (any dtype; samples
    come as floats of the default dtype).  ``log_prob`` is one pass; ``sample`` ``D``.

    Parameters
    ----------
    dim : int
        ``D``, the number of features.
    num_categories : int
        ``K``, the categories of each feature.
    hidden, var, cond_var, name, cond_dim
        As for :class:`AutoregressiveBernoulli`.

    Examples
    --------
    >>> import itertools
    >>> _ = torch.manual_seed(0)
    >>> p = AutoregressiveCategorical(dim=2, num_categories=3, hidden=8)
    >>> p.sample(batch_n=4)["x"].shape
    torch.Size([4, 2])
    >>> grid = torch.tensor(list(itertools.product(range(3), repeat=2)))
    >>> with torch.no_grad():
    ...     lp = p.get_log_prob({"x": grid})
    >>> round(float(lp.exp().sum()), 4)  # normalised exactly over the 9 outcomes
    1.0
    """

    def __init__(self, dim: int, num_categories: int, hidden: int = 32, var=("x",),
                 cond_var=(), name: str = "p", cond_dim: int = 0):
        if isinstance(num_categories, bool) or not isinstance(num_categories, int) or \
                num_categories < 2:
            raise ShapeError(f"AutoregressiveCategorical: num_categories must be an integer "
                             f">= 2, got {num_categories!r}")
        super().__init__(dim, hidden, var, cond_var, name, cond_dim)
        self.num_categories = num_categories
        self.made = MADE(dim, hidden, cond_dim, num_categories, num_categories)

    @property
    def distribution_name(self) -> str:
        return "AutoregressiveCategorical"

    def _logits(self, x: torch.Tensor, y) -> torch.Tensor:
        """``(batch, D, K)`` logits of every conditional, from the one-hot code of ``x``."""
        k = self.num_categories
        code = F.one_hot(x.long(), k).to(self.made.out.weight.dtype).reshape(x.shape[0], -1)
        return self.made(code, y).reshape(x.shape[0], self.dim, k)

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        self._require(values, self._var + self._cond_var, "log_prob")
        x = values[self._var[0]]
        self._check(x, self._var[0])
        logits = self._logits(x, self._cond(values))
        lp = torch.log_softmax(logits, -1).gather(-1, x.long()[..., None])[..., 0]
        if not sum_features:
            return lp
        return lp.sum(dim=feature_dims if feature_dims is not None else -1)

    def _sample_values(self, values, ctx, reparam, batch_n):
        """``D`` passes of the network: pass ``d`` fixes feature ``d``."""
        self._require(values, self._cond_var, "sampling")
        y = self._cond(values)
        rows = y.shape[0] if y is not None else (batch_n or 1)
        ref = self.made.out.bias
        x = torch.zeros(rows, self.dim, dtype=ref.dtype, device=ref.device)
        columns = torch.arange(self.dim, device=ref.device)
        with torch.no_grad():
            for d in range(self.dim):
                logits = self._logits(x, y)[:, d]
                draw = torch.multinomial(torch.softmax(logits, -1), 1).to(x.dtype)
                x = torch.where(columns == d, draw, x)
        return {self._var[0]: x}
