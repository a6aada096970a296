"""Products of Gaussian experts: ``ProductOfNormal`` and ``ElementWiseProductOfNormal``.

A product of diagonal Gaussians with a standard-normal prior expert is again a diagonal
Gaussian (Vedantam et al. 2017; Wu & Goodman 2018, MVAE). With expert weights
:math:`w_0` (the prior) and :math:`w_i`:

.. math::

    q(z|x_1, \\dots, x_n) \\propto p(z)^{w_0} \\prod_i q_i(z|x_i)^{w_i}, \\qquad
    \\sigma^{-2} = w_0 + \\sum_i w_i \\sigma_i^{-2}, \\qquad
    \\mu = \\sigma^2 \\sum_i w_i \\sigma_i^{-2} \\mu_i .

Experts whose inputs are missing from the input dict drop out of the product (so
``q.sample({"y": y})`` samples :math:`q(z|y) \\propto p(z) q_y(z|y)`); with no input at
all it is the prior :math:`\\mathcal{N}(0, I)`. An expert whose ``scale`` is exactly 0 also
drops out (precision 0), as in Pixyz. Losses still ask for every input, as in Pixyz; for a
loss over a subset of modalities build a product of those experts (they share networks).

Unlike Pixyz 0.3.3, the product has a log-density (it is a ``Normal``), and
``ElementWiseProductOfNormal`` runs its experts in one batched call.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..errors import ParameterError, ShapeError, VariableError
from .context import Context
from .distribution import Distribution, DistributionList, to_dict
from .families import Normal
from .shapes import SHAPES
from .validation import checking


def _precision(scale: torch.Tensor) -> torch.Tensor:
    """:math:`\\sigma^{-2}`, and 0 where :math:`\\sigma = 0` (an absent expert)."""
    absent = scale == 0
    safe = torch.where(absent, torch.ones_like(scale), scale)
    return torch.where(absent, torch.zeros_like(scale), safe.pow(-2))


def product_params(loc: torch.Tensor, scale: torch.Tensor, weight: torch.Tensor,
                   prior_weight: float = 1.0):
    """Combine experts stacked on dim 0 with a :math:`\\mathcal{N}(0, I)` prior expert.

    Parameters
    ----------
    loc, scale : torch.Tensor
        ``(n_experts, batch, *features)``.
    weight : torch.Tensor
        ``(n_experts,)`` expert weights.
    prior_weight : float
        Weight of the prior expert.

    Returns
    -------
    loc, scale : torch.Tensor
        ``(batch, *features)``: the product's mean and standard deviation.

    Examples
    --------
    >>> loc, scale = product_params(torch.ones(1, 1, 1), torch.ones(1, 1, 1), torch.ones(1))
    >>> float(loc), round(float(scale) ** 2, 4)  # N(0,1) N(1,1) -> N(1/2, 1/2)
    (0.5, 0.5)
    """
    w = weight.reshape(-1, *([1] * (loc.dim() - 1))).to(loc)
    prec = w * _precision(scale)
    total = prec.sum(0) + prior_weight
    return (prec * loc).sum(0) / total, total.rsqrt()


class ProductOfNormal(Normal):
    """:math:`p(z|x, y) \\propto p(z) p(z|x) p(z|y)`: a product of Normal experts.

    Parameters
    ----------
    p : list of Normal
        The experts; each defines the same single variable.
    weight_modalities : list of float, optional
        ``len(p) + 1`` weights, the prior's first (default all 1).
    name : str
        Name in formulas.
    features_shape : torch.Size
        Shape of one draw, used when no expert is given (sampling from the prior).

    Examples
    --------
    >>> qx = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q_x")
    >>> qy = Normal(loc="y", scale=1., var=["z"], cond_var=["y"], name="q_y")
    >>> q = ProductOfNormal([qx, qy], name="q")
    >>> print(q.prob_joint_factorized_and_text)
    q(z|x,y) \\propto p(z)q_{x}(z|x)q_{y}(z|y)
    >>> q.get_params({"x": torch.ones(1, 1), "y": torch.ones(1, 1) * 4})["loc"]
    tensor([[1.6667]])
    >>> q.get_params({"y": torch.ones(1, 1) * 4})["loc"]  # q_x drops out
    tensor([[2.]])
    """

    _expert_weights: torch.Tensor  # a buffer

    def __init__(self, p: Union[Normal, Sequence[Normal]] = (),
                 weight_modalities: Optional[Sequence] = None,
                 name: str = "p", features_shape=torch.Size()):
        experts: List[Distribution] = [p] if isinstance(p, nn.Module) else list(p)
        if not experts:
            raise ParameterError("ProductOfNormal needs at least one expert, got none")
        var = experts[0].var
        cond_var = []
        for e in experts:
            if getattr(e, "distribution_name", None) != "Normal":
                raise ParameterError(
                    f"ProductOfNormal: every expert must be a Normal; {e.prob_text} is a "
                    f"{getattr(e, 'distribution_name', type(e).__name__) or type(e).__name__}")
            if e.var != var:
                raise VariableError(f"ProductOfNormal: every expert must define {var}; "
                                    f"{e.prob_text} defines {e.var}")
            cond_var += [v for v in e.cond_var if v not in cond_var]
        weights = [1.0] * (len(experts) + 1) if weight_modalities is None \
            else [float(w) for w in weight_modalities]
        if len(weights) != len(experts) + 1:
            raise ParameterError(
                f"ProductOfNormal: weight_modalities needs {len(experts) + 1} weights (the "
                f"prior's first, then one per expert), got {len(weights)}")
        super().__init__(var=var, cond_var=cond_var, name=name, features_shape=features_shape)
        self.p = DistributionList(experts)
        self.weight_modalities = weights
        # The experts' weights as a tensor that .to()/.double() move (not saved): no host
        # tensor is built, and nothing is copied to the device, per evaluation.
        self.register_buffer("_expert_weights", torch.tensor(weights[1:]), persistent=False)

    @property
    def prob_factorized_text(self) -> str:
        return f"p({','.join(self._var)})" + "".join(e.prob_text for e in self.p)

    @property
    def prob_joint_factorized_and_text(self) -> str:
        return f"{self.prob_text} \\propto {self.prob_factorized_text}"

    def _require(self, values, names, purpose) -> None:
        # Any subset of the experts' inputs may be missing: those experts drop out.
        super()._require(values, [n for n in names if n not in self._cond_var], purpose)

    def _checked_input(self, x_dict, keys, names, purpose):
        given = set(to_dict(x_dict, keys))
        names = [n for n in names if n not in self._cond_var or n in given]
        return super()._checked_input(x_dict, keys, names, purpose)

    def _expert_params(self, values: Dict, ctx: Optional[Context]
                       ) -> Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """``loc, scale`` stacked over the experts whose inputs are all given, and their
        weights; ``None`` when no expert is given."""
        locs: List[torch.Tensor] = []
        scales: List[torch.Tensor] = []
        weights: List[torch.Tensor] = []
        used: List[Distribution] = []
        for i, e in enumerate(self.p):
            if all(v in values for v in e.cond_var):
                params = e._params(values, ctx)
                locs.append(params["loc"])
                scales.append(params["scale"])
                weights.append(self._expert_weights[i])
                used.append(e)
        if not locs:
            return None
        try:
            both = torch.broadcast_tensors(*locs, *scales)
        except RuntimeError:
            raise ShapeError(self._mismatch_message(used, locs, scales)) from None
        n = len(weights)
        return torch.stack(both[:n]), torch.stack(both[n:]), torch.stack(weights)

    def _mismatch_message(self, experts: Sequence[Distribution], locs: Sequence[torch.Tensor],
                          scales: Sequence[torch.Tensor]) -> str:
        """The error of experts whose parameters do not broadcast: each one's batch and
        shapes."""
        def batch(loc: torch.Tensor, scale: torch.Tensor) -> str:
            rows = [t.shape[0] for t in (loc, scale) if t.dim()]
            return str(max(rows)) if rows else "none"
        shown = "; ".join(f"{e.prob_text}: batch {batch(loc, scale)} (loc {tuple(loc.shape)}, "
                          f"scale {tuple(scale.shape)})"
                          for e, loc, scale in zip(experts, locs, scales))
        batches = {t.shape[0] for t in (*locs, *scales) if t.dim()} - {1}
        hint = "give the experts' inputs the same batch (a batch of 1 broadcasts)" \
            if len(batches) > 1 else "the experts must have the same features_shape"
        return (f"{self.prob_text}: the experts' parameters do not broadcast ({shown}); "
                f"{hint} ({SHAPES})")

    def _params(self, values, ctx):
        # A missing input is None in the key, so each subset of experts has its own entry.
        given = tuple([values.get(v) for v in self._cond_var])
        if ctx is not None:
            hit = ctx.recall(self, given)
            if hit is not None:
                return hit
        experts = self._expert_params(values, ctx)
        if experts is None:
            zeros = self._expert_weights.new_zeros(1, *self._features_shape)
            params = {"loc": zeros, "scale": (zeros + 1.0) / self.weight_modalities[0] ** 0.5}
        else:
            loc, scale = product_params(*experts, prior_weight=self.weight_modalities[0])
            params = {"loc": loc, "scale": scale}
        if checking():
            self._check_params(params, ctx)
        if ctx is not None:
            ctx.remember(self, given, params)
        return params


class ElementWiseProductOfNormal(ProductOfNormal):
    """Each element of the input is an expert: :math:`p(z|x) \\propto p(z) \\prod_k
    p(z|x_k)`, where :math:`p(z|x_k)` is the network ``p`` run on ``x`` with every other
    element set to 0, and elements equal to 0 are absent experts.

    Parameters
    ----------
    p : Normal
        One expert whose input's elements each stand for a modality (zero: absent).
    name : str
        The name in formulas.
    features_shape : sequence of int
        The shape of one draw.

    Examples
    --------
    >>> class Expert(Normal):
    ...     def __init__(self):
    ...         super().__init__(var=["z"], cond_var=["y"], name="e")
    ...     def forward(self, y):
    ...         return {"loc": y.sum(-1, keepdim=True), "scale": torch.ones(len(y), 1)}
    >>> q = ElementWiseProductOfNormal(Expert(), name="q")
    >>> q.get_params({"y": torch.tensor([[2., 0., 4.]])})["loc"]  # (2 + 4) / (1 + 2)
    tensor([[2.]])
    """

    def __init__(self, p: Normal, name: str = "p", features_shape=torch.Size()):
        if len(p.cond_var) != 1:
            raise VariableError(f"ElementWiseProductOfNormal needs an expert with one "
                                f"conditioning variable; {p.prob_text} has {p.cond_var}")
        super().__init__(p=[p], name=name, features_shape=features_shape)

    def _expert_params(self, values: Dict, ctx: Optional[Context]
                       ) -> Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        x = values.get(self._cond_var[0])
        if x is None:
            return None
        b, k = x.shape[0], x.shape[-1]
        eye = torch.eye(k, dtype=x.dtype, device=x.device)
        masked = (x.unsqueeze(0) * eye.unsqueeze(1)).reshape(k * b, k)  # expert-major
        params = self.p[0]._params({self._cond_var[0]: masked}, None)
        loc, scale = torch.broadcast_tensors(params["loc"], params["scale"])
        loc, scale = loc.reshape(k, b, *loc.shape[1:]), scale.reshape(k, b, *scale.shape[1:])
        present = (x != 0).T.reshape(k, b, *([1] * (loc.dim() - 2)))
        scale = torch.where(present, scale, torch.zeros_like(scale))
        return loc, scale, torch.full((k,), self.weight_modalities[1], dtype=loc.dtype,
                                      device=loc.device)
