"""Flows as distributions.

``TransformedDistribution(prior, flow, var)``: :math:`z = f(x)`, :math:`x \\sim p(x)`,

.. math::

    \\log p(z) = \\log p_{prior}(f^{-1}(z)) - \\log \\left|\\det \\frac{\\partial f}{\\partial x}
    \\right|_{x = f^{-1}(z)}

``InverseTransformedDistribution(prior, flow, var, cond_var)``: :math:`x = f^{-1}(z, y)`,
:math:`z \\sim p(z)`, scored by the change of variables through the forward flow,

.. math::

    \\log p(x|y) = \\log p_{prior}(f(x, y)) + \\log \\left|\\det \\frac{\\partial f(x, y)}
    {\\partial x}\\right|

Sampling returns the latent as well, as in Pixyz.  The flow is any
:class:`pixyz_pyro.flows.Flow` (every one of which is a Pyro transform), so any Pyro
``TransformModule`` works through ``Flow.from_pyro``.
"""
import pyro.distributions as pd
import torch

from ..errors import VariableError
from .context import Context
from .distribution import Distribution


def _features(flow) -> torch.Size:
    n = getattr(flow, "in_features", None)
    return torch.Size([n]) if isinstance(n, int) else torch.Size()


def _inverse_and_logdet(flow, z: torch.Tensor, y=None):
    """``flow.inverse_and_logdet(z)`` (one inverse pass); a module with only Pixyz's
    ``inverse``/``forward``/``logdet_jacobian`` is inverted, then run forward."""
    if hasattr(flow, "inverse_and_logdet"):
        return flow.inverse_and_logdet(z) if y is None else flow.inverse_and_logdet(z, y)
    x = flow.inverse(z)
    flow(x, compute_jacobian=True)
    return x, flow.logdet_jacobian


def _draw_logdet_is_exact(flow) -> bool:
    """Whether the log-determinant of a draw's forward pass is the one that scoring the
    draw would compute: yes unless some flow in ``flow`` keeps effects of its forward pass
    in the density (batch normalisation's running statistics, ``_logdet_from_inverse``)."""
    parts = getattr(flow, "flow_list", None)
    if parts is not None:
        return all(_draw_logdet_is_exact(f) for f in parts)
    return bool(getattr(flow, "_logdet_from_inverse", True)) and \
        hasattr(flow, "logdet_jacobian")


class FlowDistribution(Distribution):
    """What both flow distributions share: a prior, a flow, and the flow's two directions."""

    def __init__(self, prior: Distribution, flow, var, cond_var, name: str):
        super().__init__(var, cond_var, name, _features(flow))
        self.prior = prior
        self.flow = flow

    @property
    def distribution_name(self) -> str:
        return type(self).__name__

    @property
    def has_reparam(self) -> bool:
        return self.prior.has_reparam

    @property
    def logdet_jacobian(self):
        return self.flow.logdet_jacobian

    def forward(self, x, y=None, compute_jacobian: bool = True):
        """:math:`f(x, y)`; stores the log-determinant in ``logdet_jacobian``."""
        if y is None:
            return self.flow(x, compute_jacobian=compute_jacobian)
        return self.flow(x, y=y, compute_jacobian=compute_jacobian)

    def inverse(self, z, y=None):
        """:math:`f^{-1}(z, y)`."""
        return self.flow.inverse(z) if y is None else self.flow.inverse(z, y=y)

    def pyro_dist(self, values, ctx=None):
        """This flow distribution as one ``pyro.distributions`` object over its variable,
        for ``to_pyro``: it samples and scores through the direct executor, so both
        executors agree by construction."""
        return _FlowSite(self, values, ctx)


class _FlowSite(pd.TorchDistribution):
    """A Pyro distribution over ``dist.var[0]`` that delegates to a flow distribution.

    Without an evaluation's context it keeps one of its own, for the one site it is: a
    draw it gives is scored from its forward pass (no inversion of an IAF)."""

    arg_constraints = {}
    support = pd.constraints.real_vector

    def __init__(self, dist: FlowDistribution, values, ctx):
        self.dist, self.values = dist, values
        self.ctx = ctx if ctx is not None else Context()
        self.has_rsample = dist.has_reparam
        batch = next((v.shape[:1] for v in values.values()
                      if isinstance(v, torch.Tensor) and v.dim() > 0), torch.Size([1]))
        super().__init__(batch, dist.features_shape, validate_args=False)

    def expand(self, batch_shape, _instance=None):
        """Itself when the shape is its own (a plate of its rows), so that the value it
        draws is the value scored; Pyro's expanded view otherwise."""
        if torch.Size(batch_shape) == self.batch_shape:
            return self
        return super().expand(batch_shape, _instance)

    def rsample(self, sample_shape=torch.Size()):
        if sample_shape:
            raise NotImplementedError("flow sites draw one sample per call")
        n = self.batch_shape[0]
        return self.dist._sample_values(self.values, self.ctx, True, n)[self.dist.var[0]]

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value):
        return self.dist._log_prob_values({**self.values, self.dist.var[0]: value}, self.ctx)


class TransformedDistribution(FlowDistribution):
    """:math:`p(z = f_{flow}(x))` with :math:`x \\sim p_{prior}(x)`.

    ``flow_cond_var``, one of the prior's conditioning variables, conditions the flow as
    well, :math:`z = f_{flow}(x, y)` (an :class:`~pixyz_pyro.flows.IAF` posterior
    conditioned on the data, say).

    Parameters
    ----------
    prior : Distribution
        The base distribution :math:`p(z)`.
    flow : Flow
        The invertible map :math:`x = f(z)`.
    var : list of str
        The variable of :math:`x`.
    name : str
        The name in formulas.
    flow_cond_var : str, optional
        One of the prior's conditioning variables, given to the flow as its context.

    Examples
    --------
    Reversing the features of a standard normal keeps its density:

    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.flows import Reverse
    >>> prior = Normal(loc=torch.zeros(3), scale=torch.ones(3), var=["z"], features_shape=[3])
    >>> p = TransformedDistribution(prior, Reverse(3), var=["x"])
    >>> x = torch.tensor([[1., 2., 3.]])
    >>> p.get_log_prob({"x": x}), prior.get_log_prob({"z": x.flip(-1)})
    (tensor([-9.7568]), tensor([-9.7568]))
    """

    _inverse = False

    def __init__(self, prior: Distribution, flow, var, name: str = "p",
                 flow_cond_var=None):
        super().__init__(prior, flow, var, prior.cond_var, name)
        if flow_cond_var is not None and flow_cond_var not in prior.cond_var:
            raise VariableError(f"{self.prob_text}: flow_cond_var must be one of the "
                                f"prior's conditioning variables {prior.cond_var}, got "
                                f"{flow_cond_var!r}")
        self.flow_cond_var = flow_cond_var

    def _flow_y(self, values):
        return values[self.flow_cond_var] if self.flow_cond_var is not None else None

    @property
    def flow_input_var(self):
        return list(self.prior.var)

    @property
    def prob_factorized_text(self) -> str:
        return f"{self.name}({self.var[0]}=f_{{flow}}({self.flow_input_var[0]}))"

    def _sample_values(self, values, ctx, reparam, batch_n):
        """Draw ``x`` from the prior and map it, ``z = f(x, y)``: one forward pass.  Within
        an evaluation (``ctx``) the pass's ``(x, log|det|)`` is left in the context under
        the draw ``z``, so that scoring this very draw there (an ELBO's
        :math:`\\mathbb{E}_q[\\log q(z|x)]`) needs no inversion."""
        latent = self.prior._sample_values(values, ctx, reparam, batch_n)
        x = latent[self.flow_input_var[0]]
        y = self._flow_y(values)
        keep = ctx is not None and _draw_logdet_is_exact(self.flow)
        z = self.flow(x, compute_jacobian=keep) if y is None else \
            self.flow(x, y=y, compute_jacobian=keep)
        if keep:
            ctx.remember(self.flow, (z,) if y is None else (z, y),
                         (x, self.flow.logdet_jacobian))
        return {self.var[0]: z, **latent}

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        """:math:`\\log p_{prior}(f^{-1}(z)) - \\log|\\det J_f|`: a draw of this
        evaluation takes both from its own forward pass; any other value is inverted."""
        self._require(values, self.var + self.cond_var, "log_prob")
        z = values[self.var[0]]
        y = self._flow_y(values)
        drawn = ctx.recall(self.flow, (z,) if y is None else (z, y)) \
            if ctx is not None else None
        x, logdet = drawn if drawn is not None else _inverse_and_logdet(self.flow, z, y)
        lp = self.prior._log_prob_values({**values, self.flow_input_var[0]: x}, ctx,
                                         sum_features, feature_dims)
        return lp - logdet


class InverseTransformedDistribution(FlowDistribution):
    """:math:`p(x = f^{-1}_{flow}(z, y))` with :math:`z \\sim p_{prior}(z)`.

    Parameters
    ----------
    prior : Distribution
        The base distribution :math:`p(z)`.
    flow : Flow
        The invertible map :math:`z = f(x)`.
    var : list of str
        The variable of :math:`x`.
    cond_var : list of str
        The flow's conditioning variables.
    name : str
        The name in formulas.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.flows import Reverse
    >>> prior = Normal(loc=torch.zeros(3), scale=torch.ones(3), var=["z"], features_shape=[3])
    >>> p = InverseTransformedDistribution(prior, Reverse(3), var=["x"])
    >>> p.get_log_prob({"x": torch.tensor([[1., 2., 3.]])})  # -3 log(2 pi)/2 - 14/2
    tensor([-9.7568])
    """

    _inverse = True

    def __init__(self, prior: Distribution, flow, var, cond_var=(), name: str = "p"):
        super().__init__(prior, flow, var, cond_var, name)

    @property
    def flow_output_var(self):
        return list(self.prior.var)

    @property
    def prob_factorized_text(self) -> str:
        args = ",".join(self.flow_output_var + self.cond_var)
        return f"{self.name}({self.var[0]}=f^{{-1}}_{{flow}}({args}))"

    def _y(self, values):
        return values[self.cond_var[0]] if self.cond_var else None

    def inference(self, x_dict, return_all: bool = True, compute_jacobian: bool = False):
        """``{z: f(x, y)}`` (and the inputs with ``return_all``)."""
        z = self.forward(x_dict[self.var[0]], self._y(x_dict), compute_jacobian)
        out = {self.flow_output_var[0]: z}
        return {**x_dict, **out} if return_all else out

    def _sample_values(self, values, ctx, reparam, batch_n):
        self._require(values, self.cond_var, "sampling")
        if batch_n is None and self.cond_var:
            batch_n = values[self.cond_var[0]].shape[0]
        latent = self.prior._sample_values(values, ctx, reparam, batch_n)
        x = self.inverse(latent[self.flow_output_var[0]], self._y(values))
        return {self.var[0]: x, **latent}

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        self._require(values, self.var + self.cond_var, "log_prob")
        z = self.forward(values[self.var[0]], self._y(values), compute_jacobian=True)
        logdet = self.flow.logdet_jacobian
        lp = self.prior._log_prob_values({**values, self.flow_output_var[0]: z}, ctx,
                                         sum_features, feature_dims)
        return lp + logdet
