"""Distributions without a parametric family: a deterministic map, the data, and a
user-supplied density."""
from typing import Callable

import torch

from ..errors import ParameterError, PixyzError
from .checks import forward_error
from .distribution import Distribution, to_dict
from .factor import _sum_features


class Deterministic(Distribution):
    """A point mass :math:`p(h|x) = \\delta(h - f(x))`; ``forward`` returns ``{var: f(x)}``.

    Parameters
    ----------
    var : list of str
        The variables ``forward`` returns.
    cond_var : list of str
        Its inputs.
    name : str
        The name in formulas.

    Examples
    --------
    >>> from torch import nn
    >>> class Double(Deterministic):
    ...     def __init__(self):
    ...         super().__init__(var=["h"], cond_var=["x"], name="f")
    ...     def forward(self, x):
    ...         return {"h": 2 * x}
    >>> Double().sample({"x": torch.ones(1, 2)})["h"]
    tensor([[2., 2.]])
    """

    has_reparam = True

    def __init__(self, var, cond_var=(), name: str = "p", **kwargs):
        super().__init__(var, cond_var, name, kwargs.get("features_shape", torch.Size()))

    @property
    def distribution_name(self) -> str:
        return "Deterministic"

    def _sample_values(self, values, ctx, reparam, batch_n):
        self._require(values, self._cond_var, "sampling")
        inputs = tuple([values[v] for v in self._cond_var])
        if ctx is not None:
            hit = ctx.recall(self, inputs)
            if hit is not None:
                return hit
        try:
            out = self.forward(**{v: values[v] for v in self._cond_var})
        except PixyzError:
            raise
        except Exception as e:  # noqa: BLE001 - re-raised in the user's terms
            raise forward_error(self, values, self._cond_var, e) from e
        if not isinstance(out, dict) or set(out) != set(self._var):
            got = sorted(out) if isinstance(out, dict) else type(out).__name__
            raise ParameterError(f"{self.prob_text}.forward must return a dict with keys "
                                 f"{self._var}, got {got}")
        if ctx is not None:
            ctx.remember(self, inputs, out)
        return out

    def sample_mean(self, x_dict=None):
        values = to_dict(x_dict, self._cond_var)
        return self._sample_values(values, None, True, None)[self._var[0]]

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        # Pixyz's message (its documented error), caused by the one that names the node.
        raise NotImplementedError(
            "Log probability of deterministic distribution is not defined.") from \
            NotImplementedError(f"{self.prob_text} is deterministic; it has no log-density")


class EmpiricalDistribution(Distribution):
    """The data distribution :math:`p_{data}(x)`: "sampling" returns the given data.

    Parameters
    ----------
    var : list of str
        The data's variables.
    name : str
        The name in formulas (``p_{data}``).

    >>> p = EmpiricalDistribution(["x"])
    >>> p.sample({"x": torch.ones(2, 1)})["x"].shape
    torch.Size([2, 1])
    """

    has_reparam = True

    def __init__(self, var, name: str = "p_{data}"):
        super().__init__(var, (), name)

    @property
    def input_var(self):
        return self.var

    @property
    def distribution_name(self) -> str:
        return "Data distribution"

    def sample(self, x_dict=None, batch_n=None, sample_shape=torch.Size(), return_all=True,
               reparam=False, sample_mean=False, **options):
        values = self._checked_input(x_dict, self._var, self._var,
                                     "sampling (it returns the data)")
        return dict(values) if return_all else {k: values[k] for k in self._var}

    def _sample_values(self, values, ctx, reparam, batch_n):
        self._require(values, self._var, "sampling (it returns the data)")
        return {k: values[k] for k in self._var}

    def sample_mean(self, x_dict=None):
        return to_dict(x_dict, self._var)[self._var[0]]

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        raise NotImplementedError("the data distribution has no log-density")


class CustomProb(Distribution):
    """A distribution given by its (unnormalised) log-density function.

    Parameters
    ----------
    log_prob_function : callable
        ``x -> log-density`` of the values (one per batch element).
    var : list of str
        The variables it scores.
    distribution_name : str
        The name in printouts.

    >>> p = CustomProb(lambda x: -x ** 2, var=["x"])
    >>> p.get_log_prob({"x": torch.ones(2, 3)})
    tensor([-3., -3.])
    """

    def __init__(self, log_prob_function: Callable, var, distribution_name: str = "Custom PDF",
                 **kwargs):
        super().__init__(var, kwargs.get("cond_var", ()), kwargs.get("name", "p"),
                         kwargs.get("features_shape", torch.Size()))
        self._log_prob_function = log_prob_function
        self._distribution_name = distribution_name

    @property
    def log_prob_function(self) -> Callable:
        return self._log_prob_function

    @property
    def distribution_name(self) -> str:
        return self._distribution_name

    @property
    def input_var(self):
        return self.var

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        self._require(values, self._var, "log_prob")
        lp = self._log_prob_function(*(values[v] for v in self._var))
        return _sum_features(lp, sum_features, feature_dims)

    def _sample_values(self, values, ctx, reparam, batch_n):
        raise NotImplementedError(f"{self.prob_text} is a custom density; it cannot be "
                                  f"sampled")


class DataDistribution(EmpiricalDistribution):
    """Pixyz 0.1's name of :class:`EmpiricalDistribution` (deprecated; same behaviour).

    Parameters
    ----------
    var : list of str
        The data's variables.
    name : str
        The name in formulas (``p_{data}``).

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     p = DataDistribution(["x"])
    >>> print(w[0].message)
    DataDistribution is the Pixyz 0.1 spelling; use EmpiricalDistribution(["x"]) (Pixyz 0.3)
    """

    def __init__(self, var, name: str = "p_{data}"):
        import warnings
        warnings.warn(f"DataDistribution is the Pixyz 0.1 spelling; use "
                      f"EmpiricalDistribution({list(var)!r}) (Pixyz 0.3)".replace("'", '"'),
                      DeprecationWarning, stacklevel=2)
        super().__init__(var, name)
