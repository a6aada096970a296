"""A mixture of Normal experts (MMVAE, Shi et al. 2019).

.. math::

    p(z|x, y) = w_x\\, p(z|x) + w_y\\, p(z|y), \\qquad
    \\log p(z|x, y) = \\log \\sum_k w_k\\, p_k(z|\\cdot)

Each expert is a ``Normal`` over the same variable with its own inputs.  Experts whose
inputs are missing from a direct ``sample``/``get_log_prob`` call drop out and the weights
of the others are renormalised (inference from one modality).  Inside a loss every
input is required.
"""
from typing import Dict, List

import pyro.distributions as pd
import torch

from ..errors import VariableError
from .distribution import Distribution, DistributionList, to_dict
from .mixture import _check_same_var, _select, _union


class MixtureOfNormal(Distribution):
    """:math:`p(z|x, y) = \\sum_k w_k p_k(z|\\cdot)`, with Pixyz's constructor.

    Parameters
    ----------
    p : list of Normal
        The experts, all over the same variable.
    weight_modalities : sequence of float, optional
        Mixture weights, one per expert, summing to 1; default uniform.
    name : str
        Name used in formulas.
    features_shape : torch.Size
        Shape of one draw (see :mod:`pixyz_pyro.dist.shapes`).

    Notes
    -----
    Pixyz draws the components in fixed batch blocks (the first ``w_1 B`` batch elements
    from expert 1, ...) and scores :math:`\\mathrm{logsumexp}_k\\, w_k \\log p_k`.  Here
    each batch element draws its own expert, so every sample follows its mixture, and the
    log-density is the mixture's: :math:`\\mathrm{logsumexp}_k (\\log w_k + \\log p_k)`.

    Examples
    --------
    >>> from pixyz_pyro.dist import Normal
    >>> px = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="p_x")
    >>> py = Normal(loc="y", scale=1., var=["z"], cond_var=["y"], name="p_y")
    >>> p = MixtureOfNormal([px, py])
    >>> print(p.prob_joint_factorized_and_text)
    p(z|x,y) = \\frac{1}{2} p_{x}(z|x) + \\frac{1}{2} p_{y}(z|y)
    >>> v = {"z": torch.zeros(1, 1), "x": torch.zeros(1, 1), "y": torch.zeros(1, 1)}
    >>> p.get_log_prob(v)  # both experts are N(0, 1)
    tensor([-0.9189])
    """

    weight_modalities: torch.Tensor  # a buffer

    def __init__(self, p, weight_modalities=None, name: str = "p",
                 features_shape=torch.Size()):
        experts = list(p) if isinstance(p, (list, tuple)) else [p]
        var = _check_same_var(experts, "MixtureOfNormal")
        for e in experts:
            if e.distribution_name != "Normal":
                raise ValueError(f"MixtureOfNormal: every expert must be a Normal, got "
                                 f"{e.prob_text} ({e.distribution_name})")
        if weight_modalities is None:
            w = torch.full((len(experts),), 1.0 / len(experts))
        else:
            w = torch.as_tensor(weight_modalities, dtype=torch.get_default_dtype())
            if w.shape != (len(experts),) or bool((w <= 0).any()) or \
                    abs(float(w.sum()) - 1) > 1e-5:
                raise ValueError(f"MixtureOfNormal: weight_modalities must be {len(experts)} "
                                 f"positive weights summing to 1, got {w.tolist()}")
        super().__init__(var=var, cond_var=_union(e.cond_var for e in experts), name=name,
                         features_shape=features_shape or experts[0].features_shape)
        self.p = DistributionList(experts)
        self.register_buffer("weight_modalities", w, persistent=False)

    @property
    def distribution_name(self) -> str:
        return "Mixture of Normal"

    @property
    def has_reparam(self) -> bool:
        return all(e.has_reparam for e in self.p)

    @property
    def prob_factorized_text(self) -> str:
        w = self.weight_modalities.tolist()
        uniform = max(w) - min(w) < 1e-9
        coef = [f"\\frac{{1}}{{{len(w)}}}" if uniform else f"{x:g}" for x in w]
        return " + ".join(f"{c} {e.prob_text}" for c, e in zip(coef, self.p))

    def _available(self, values: Dict) -> List[int]:
        return [k for k, e in enumerate(self.p) if all(v in values for v in e.cond_var)]

    def _require(self, values, names, purpose) -> None:
        super()._require(values, [n for n in names if n not in self._cond_var], purpose)
        if not self._available(values):
            raise VariableError(f"{self.prob_text} needs the inputs of at least one expert "
                                f"{[e.prob_text for e in self.p]} for {purpose}, but the "
                                f"input has keys {sorted(values)}.")

    def _checked_input(self, x_dict, keys, names, purpose):
        values = to_dict(x_dict, keys)
        self._require(values, names, purpose)
        given = [n for n in names if n in values]
        return super()._checked_input(values, keys, given, purpose)

    def _log_weights(self, ks: List[int]) -> torch.Tensor:
        w = self.weight_modalities[ks]
        return (w / w.sum()).log()

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        self._require(values, self.var + self.cond_var, "log_prob")
        ks = self._available(values)
        lp = torch.stack([self.p[k]._log_prob_values(values, ctx, True, feature_dims)
                          for k in ks])
        return torch.logsumexp(lp + self._log_weights(ks).reshape(-1, 1), 0)

    def _sample_values(self, values, ctx, reparam, batch_n):
        self._require(values, self.cond_var, "sampling")
        ks = self._available(values)
        draws = torch.stack([self.p[k]._sample_values(values, ctx, reparam, batch_n)[self.var[0]]
                             for k in ks])
        logits = self._log_weights(ks).expand(draws.shape[1], len(ks))
        choice = pd.OneHotCategorical(logits=logits, validate_args=False).sample()
        return {self.var[0]: _select(choice.to(draws.dtype), draws)}

    def _expert_params(self, values, ctx=None):
        ks = self._available(values)
        params = [self.p[k]._params(values, ctx) for k in ks]
        both = torch.broadcast_tensors(*(q["loc"] for q in params),
                                       *(q["scale"] for q in params))
        return ks, torch.stack(both[:len(ks)]), torch.stack(both[len(ks):])

    def get_params(self, params_dict=None, **kwargs) -> Dict[str, torch.Tensor]:
        """The experts' parameters stacked: ``loc`` and ``scale`` of shape
        ``(n_expert, B, *features)`` and the renormalised ``weight`` ``(n_expert,)``."""
        values = to_dict(params_dict, self.cond_var)
        self._require(values, self.cond_var, "get_params")
        ks, loc, scale = self._expert_params(values)
        return {"loc": loc, "scale": scale, "weight": self._log_weights(ks).exp()}

    def pyro_dist(self, values, ctx=None):
        """``MixtureSameFamily`` of the experts, batch ``(B,)``, event = features."""
        ks, loc, scale = self._expert_params(values, ctx)
        n_feat = loc.dim() - 2
        comps = pd.Normal(loc.movedim(0, 1), scale.movedim(0, 1), validate_args=False)
        mix = pd.Categorical(logits=self._log_weights(ks).expand(loc.shape[1], len(ks)),
                             validate_args=False)
        return pd.MixtureSameFamily(mix, comps.to_event(n_feat), validate_args=False)

    def sample_mean(self, x_dict=None) -> torch.Tensor:
        """:math:`\\sum_k w_k \\mathbb{E}_k[z]`."""
        values = to_dict(x_dict, self.cond_var)
        self._require(values, self.cond_var, "sample_mean")
        ks, loc, _ = self._expert_params(values)
        w = self._log_weights(ks).exp()
        return (w.reshape(-1, *([1] * (loc.dim() - 1))) * loc).sum(0)
