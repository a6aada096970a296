"""Mixtures: a mixture model over a categorical latent, and a mixture of Normal experts.

.. math::

    p(x) = \\sum_{k=1}^K p(z=k)\\, p(x|z=k)

:class:`MixtureModel` takes its components and a ``Categorical`` prior over the hidden
variable :math:`z` (one-hot, as Pixyz's ``Categorical``).  Its log-density is exact (a
``logsumexp`` over the :math:`K` components, vectorised over the batch), and
:meth:`MixtureModel.posterior` is :math:`p(z|x) = p(x, z) / p(x)`.

:class:`MixtureOfNormal` is the mixture of experts of MMVAE (Shi et al., 2019),
:math:`p(z|x, y) = w_x p(z|x) + w_y p(z|y)`.

Both draw the component of each batch element at random and then a reparameterised draw
from it, so gradients reach the chosen component's parameters; the component choice
itself is discrete (``has_reparam`` is ``False`` for ``MixtureModel`` as in Pixyz).
"""
from typing import Dict, List

import pyro.distributions as pd
import torch

from ..errors import VariableError
from .distribution import Distribution, DistributionList, to_dict
from .naming import latex_name
from .shapes import broadcast_shapes


def _check_same_var(dists, who: str) -> List[str]:
    if not isinstance(dists, (list, tuple)) or not dists:
        raise ValueError(f"{who} takes a non-empty list of distributions, got {dists!r}")
    var = dists[0].var
    for d in dists:
        if d.var != var or len(var) != 1:
            raise VariableError(f"{who}: all components must define the same single variable; "
                                f"got {[c.prob_text for c in dists]}")
    return var


def _union(lists) -> List[str]:
    out: List[str] = []
    for names in lists:
        out.extend(v for v in names if v not in out)
    return out


def _select(onehot: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """``draws[k, b]`` where ``onehot[b, k] == 1``: ``(B, K)`` x ``(K, B, *F) -> (B, *F)``."""
    w = onehot.transpose(0, 1).reshape(*onehot.shape[::-1], *([1] * (draws.dim() - 2)))
    return (w * draws).sum(0)


class MixtureModel(Distribution):
    """:math:`p(x) = \\sum_k p(x|z=k) p(z=k)`, with Pixyz's constructor.

    Parameters
    ----------
    distributions : list of Distribution
        The components :math:`p(x|z=k)`, all defining the same variable.
    prior : Categorical
        :math:`p(z)` over ``len(distributions)`` categories (one-hot).
    name : str
        Name used in formulas.

    Examples
    --------
    >>> from pixyz_pyro.dist import Categorical, Normal
    >>> comps = [Normal(loc=float(m), scale=1., var=["x"], name=f"p_{i}")
    ...          for i, m in enumerate([-2, 2])]
    >>> prior = Categorical(probs=torch.tensor([0.5, 0.5]), var=["z"], name="prior")
    >>> p = MixtureModel(distributions=comps, prior=prior)
    >>> print(p.prob_joint_factorized_and_text)
    p(x) = p_{0}(x|z=0)prior(z=0) + p_{1}(x|z=1)prior(z=1)
    >>> p.get_log_prob({"x": torch.zeros(1, 1)})  # log N(0; 2, 1)
    tensor([-2.9189])
    """

    def __init__(self, distributions, prior, name: str = "p"):
        var = _check_same_var(distributions, "MixtureModel")
        if prior.distribution_name != "Categorical":
            raise ValueError(f"The prior must be the categorical distribution; got "
                             f"{prior.prob_text} ({prior.distribution_name})")
        k = _num_categories(prior)
        if k is not None and k != len(distributions):
            raise ValueError(f"The number of its category must be the same as the length of "
                             f"the distribution list: {prior.prob_text} has {k} categories, "
                             f"but {len(distributions)} distributions were given")
        cond = _union([d.cond_var for d in distributions] + [prior.cond_var])
        # As in Pixyz, the mixture declares no features of its own: each component checks
        # its values against its own features_shape.
        super().__init__(var=var, cond_var=cond, name=name)
        self.distributions = DistributionList(distributions)
        self.prior = prior
        self._hidden_var = prior.var
        self._with_hidden = False

    @property
    def hidden_var(self) -> List[str]:
        """The hidden (component) variable, ``prior.var``."""
        return list(self._hidden_var)

    @property
    def distribution_name(self) -> str:
        return "Mixture Model"

    @property
    def prob_factorized_text(self) -> str:
        x, z = latex_name(self.var[0]), latex_name(self._hidden_var[0])
        return " + ".join(f"{d.name}({x}|{z}={i}){self.prior.name}({z}={i})"
                          for i, d in enumerate(self.distributions))

    def _check_hidden_named_apart(self, purpose: str) -> None:
        """The hidden variable may share the observed one's name (as in Pixyz) until it is
        returned or conditioned on: then the two would be one key."""
        if self._hidden_var[0] in self.var:
            raise VariableError(f"MixtureModel: {purpose} needs the hidden variable "
                                f"{self.hidden_var} of the prior {self.prior.prob_text} to be "
                                f"named apart from the observed variable {self.var}; give the "
                                f"prior another var")

    def posterior(self, name=None) -> "PosteriorMixtureModel":
        """:math:`p(z|x)`, the responsibility of each component."""
        self._check_hidden_named_apart("posterior()")
        return PosteriorMixtureModel(self, name=name)

    # --- executor protocol ------------------------------------------------------------
    def _joint_table(self, values: Dict, ctx) -> torch.Tensor:
        """``(K, B)``: :math:`\\log p(x, z=k)` for every component ``k``."""
        comp = torch.stack([d._log_prob_values(values, ctx, True, None)
                            for d in self.distributions])
        log_prior = self.prior.pyro_dist(values, ctx).logits  # normalised, (1 or B, K)
        return comp + log_prior.reshape(-1, log_prior.shape[-1]).transpose(0, 1)

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        self._require(values, self.var + self.cond_var, "log_prob")
        return torch.logsumexp(self._joint_table(values, ctx), 0)

    def _sample_values(self, values, ctx, reparam, batch_n):
        z = self.prior._sample_values(values, ctx, False, batch_n)[self._hidden_var[0]]
        draws = [d._sample_values(values, ctx, reparam, batch_n)[self.var[0]]
                 for d in self.distributions]
        out = {self.var[0]: _select(z.to(draws[0].dtype), torch.stack(draws))}
        if self._with_hidden:
            out[self._hidden_var[0]] = z
        return out

    def pyro_dist(self, values, ctx=None):
        """The mixture as one ``pyro.distributions`` object (batch ``(B,)``, event = the
        components' features), for :func:`pixyz_pyro.infer.to_pyro`."""
        comps = []
        for d in self.distributions:
            if not hasattr(d, "pyro_dist"):
                raise NotImplementedError(f"{self.prob_text}: component {d.prob_text} has no "
                                          f"pyro.distributions form")
            c = d.pyro_dist(values, ctx)
            comps.append(c.to_event(len(c.batch_shape) - 1) if len(c.batch_shape) > 1 else c)
        logits = self.prior.pyro_dist(values, ctx).logits
        return _PyroMixture(logits.reshape(-1, logits.shape[-1]), comps)

    # --- public API -------------------------------------------------------------------
    # Pixyz's positional order: return_hidden comes before sample_mean
    def sample(self, x_dict=None, batch_n=None, sample_shape=torch.Size(),  # type: ignore[override]
               return_all=True, reparam=False, return_hidden=False, sample_mean=False,
               **options):
        """Draw :math:`x` (and, with ``return_hidden``, the one-hot component :math:`z`).
        ``sample_mean=True`` returns the mean of the most probable component
        (:mod:`pixyz_pyro.dist.mean_sample`)."""
        if sample_mean:
            return super().sample(x_dict, return_all=return_all, sample_mean=True)
        if return_hidden:
            self._check_hidden_named_apart("sample(return_hidden=True)")
        self._with_hidden = bool(return_hidden)
        try:
            out = super().sample(x_dict, batch_n, sample_shape, True, reparam)
        finally:
            self._with_hidden = False
        if return_all:
            return out
        return {k: out[k] for k in self.var + (self.hidden_var if return_hidden else [])}

    def get_log_prob(self, x_dict, sum_features=True, feature_dims=None, return_hidden=False,
                     **kwargs):
        """:math:`\\log p(x)`, shape ``(B,)``; with ``return_hidden`` the table
        :math:`\\log p(x, z=k)` of shape ``(K, B)``, as in Pixyz."""
        if not return_hidden:
            return super().get_log_prob(x_dict, sum_features, feature_dims)
        values = to_dict(x_dict, self.var)
        self._require(values, self.var + self.cond_var, "log_prob")
        from .context import Context
        return self._joint_table(values, Context())

    def sample_mean(self, x_dict=None) -> torch.Tensor:
        """:math:`\\sum_k p(z=k) \\mathbb{E}[x|z=k]`."""
        values = to_dict(x_dict, self.cond_var)
        probs = self.prior.pyro_dist(values).probs
        probs = probs.reshape(-1, probs.shape[-1]).transpose(0, 1)
        means = torch.stack([d.sample_mean(values) for d in self.distributions])
        return (probs.reshape(*probs.shape, *([1] * (means.dim() - 2))) * means).sum(0)


class PosteriorMixtureModel(Distribution):
    """:math:`p(z|x) = p(x, z) / p(x)` of a :class:`MixtureModel` ``p``.

    ``get_log_prob({"x": x})`` returns the ``(K, B)`` table :math:`\\log p(z=k|x)` as in
    Pixyz; given a one-hot ``z`` as well it returns :math:`\\log p(z|x)`, shape ``(B,)``.
    Unlike Pixyz it can be sampled (a one-hot draw of the responsibilities).

    Parameters
    ----------
    p : MixtureModel
        The mixture.
    name : str, optional
        The name in formulas (default: the mixture's).

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Categorical, MixtureModel, Normal
    >>> comps = [Normal(loc=float(m), scale=1., var=["x"], name=f"p_{i}")
    ...          for i, m in enumerate([-2, 2])]
    >>> prior = Categorical(probs=torch.tensor([0.5, 0.5]), var=["z"], name="prior")
    >>> post = MixtureModel(distributions=comps, prior=prior).posterior()
    >>> post.prob_text
    'p(z|x)'
    >>> post.get_log_prob({"x": torch.zeros(1, 1), "z": torch.tensor([[1., 0.]])}).exp()
    tensor([0.5000])
    """

    def __init__(self, p: MixtureModel, name=None):
        super().__init__(var=p.hidden_var, cond_var=p.var + p.cond_var,
                         name=p.name if name is None else name)
        self.p = p

    @property
    def hidden_var(self) -> List[str]:
        return self.p.hidden_var

    @property
    def distribution_name(self) -> str:
        return "Mixture Model (Posterior)"

    @property
    def prob_factorized_text(self) -> str:
        x, z = latex_name(self.p.var[0]), latex_name(self.var[0])
        return f"\\frac{{{self.name}({z},{x})}}{{{self.name}({x})}}"

    def _logits(self, values, ctx) -> torch.Tensor:
        table = self.p._joint_table(values, ctx)
        return (table - torch.logsumexp(table, 0)).transpose(0, 1)

    def pyro_dist(self, values, ctx=None):
        """``OneHotCategorical`` over the responsibilities, batch ``(B,)``."""
        return pd.OneHotCategorical(logits=self._logits(values, ctx), validate_args=False)

    @property
    def density_input_var(self) -> List[str]:
        """What the log-density needs: only ``x`` (without ``z`` it is the ``(K, B)``
        table of responsibilities, as Pixyz's ``posterior().prob().eval({"x": x})``)."""
        return self.cond_var

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        self._require(values, self.cond_var, "log_prob")
        logits = self._logits(values, ctx)
        if self.var[0] not in values:
            return logits.transpose(0, 1)
        return (logits * values[self.var[0]].to(logits.dtype)).sum(-1)

    def _sample_values(self, values, ctx, reparam, batch_n):
        self._require(values, self.cond_var, "sampling")
        return {self.var[0]: self.pyro_dist(values, ctx).sample()}

    def get_log_prob(self, x_dict, sum_features=True, feature_dims=None, **kwargs):
        values = to_dict(x_dict, self.cond_var)
        if self.var[0] in values:
            return super().get_log_prob(values, sum_features, feature_dims)
        self._require(values, self.cond_var, "log_prob")
        from .context import Context
        return self._log_prob_values(values, Context())


def _num_categories(prior):
    if prior.features_shape:
        return prior.features_shape[-1]
    if prior.cond_var:
        return None
    params = prior.get_params()
    t = params.get("probs", params.get("logits"))
    return t.shape[-1] if isinstance(t, torch.Tensor) else None


class _PyroMixture(pd.TorchDistribution):
    """:math:`\\sum_k \\pi_k p_k(x)` over arbitrary component distributions."""

    arg_constraints: Dict = {}

    def __init__(self, logits: torch.Tensor, components):
        self.logits = logits
        self.components = components
        batch = broadcast_shapes(logits.shape[:-1], *(c.batch_shape for c in components))
        super().__init__(batch, components[0].event_shape, validate_args=False)

    @property
    def support(self):
        return self.components[0].support

    def log_prob(self, x):
        table = torch.stack([c.log_prob(x) for c in self.components], -1)
        return torch.logsumexp(table + self.logits, -1)

    def sample(self, sample_shape=torch.Size()):
        shape = torch.Size(sample_shape) + self.batch_shape
        k = pd.Categorical(logits=self.logits.expand(*shape, self.logits.shape[-1])).sample()
        draws = torch.stack([c.sample(sample_shape).expand(shape + self.event_shape)
                             for c in self.components], -1 - len(self.event_shape))
        index = k.reshape(*shape, 1, *([1] * len(self.event_shape)))
        index = index.expand(*shape, 1, *self.event_shape)
        return draws.gather(len(shape), index).squeeze(len(shape))
