"""The base class of every distribution: an ``nn.Module`` that hides its network.

A distribution has variables ``var`` that it defines, conditioning variables
``cond_var`` and a ``name``, and prints as :math:`p(x|z)`.  Values travel as dicts
``{name: tensor}`` whose shapes follow :mod:`pixyz_pyro.dist.shapes`.

Two internal methods are the whole executor protocol; the public API and both
executors are written on top of them:

* ``_sample_values(values, ctx, reparam, batch_n)`` returns the new values it draws;
* ``_log_prob_values(values, ctx, sum_features, feature_dims)`` returns the log-density.

Both work on *folded* values (one batch dimension) inside one :class:`Context`.

A distribution that can sum discrete variables out exactly inside an expectation (see
:mod:`pixyz_pyro.infer.enumeration`) sets ``enumerates = True`` and gives ``_draw``, which
returns a :class:`Draw`.
"""
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Sequence

import torch
from torch import nn

from .._modulelist import ModuleListOf
from ..errors import (
    VariableError,
    check_mapping,
    check_values,
    missing_vars_message,
    passes_through,
    wrap_error,
)
from ..validate_args import check_optional_positive_int, check_sample_shape
from .checks import settle
from .context import Context
from .naming import as_var_list, latex_name, prob_text
from .repeats import Repeats
from .running import restore_running, snapshot_running
from .shapes import fold, numel, unfold


def to_dict(x, keys: Sequence[str], who="a distribution") -> Dict[str, object]:
    """Accept a dict, a tensor (for the first key) or a list of tensors (for the keys)."""
    if x is None:
        return {}
    if isinstance(x, dict):
        return x
    if isinstance(x, torch.Tensor):
        if not keys:
            raise VariableError("a bare tensor was given, but the distribution takes no input")
        return {keys[0]: x}
    if isinstance(x, (list, tuple)) and len(x) == len(keys):
        return dict(zip(keys, x))
    check_mapping(who, x)
    return x


class Draw(NamedTuple):
    """What an expectation draws from a distribution that ``enumerates``: with
    ``log_weight`` ``None``, plain draws; else the draws with the enumerated values folded
    into the batch (``k`` values, enumeration-major), the evaluation's inputs folded
    alike, and :math:`\\log q(e|\\cdot)` per folded row."""

    inputs: Dict
    values: Dict
    log_weight: Optional[torch.Tensor]
    k: int


class Distribution(nn.Module):
    """Base class of pixyz_pyro distributions.

    Parameters
    ----------
    var : list of str
        Variables this distribution defines.
    cond_var : list of str
        Variables it is conditioned on.
    name : str
        Name used in formulas; ``"p_prior"`` prints ``p_{prior}``.
    features_shape : torch.Size
        Shape of one draw of one batch element (see :mod:`pixyz_pyro.dist.shapes`).

    Examples
    --------
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"]) * Normal(loc=0., scale=1.,
    ...                                                               var=["z"])
    >>> isinstance(p, Distribution), p.var, p.cond_var
    (True, ['x', 'z'], [])
    >>> print(p.prob_joint_factorized_and_text)
    p(x,z) = p(x|z)p(z)
    """

    #: Whether an expectation asks it for a :class:`Draw` (``_draw``) instead of samples.
    enumerates = False

    @property
    def has_reparam(self) -> bool:
        """Whether samples can carry gradients to the parameters."""
        return False

    def __init__(self, var, cond_var=(), name: str = "p", features_shape=torch.Size()):
        super().__init__()
        var = as_var_list(var, "var")
        cond_var = as_var_list(cond_var, "cond_var")
        both = set(var) & set(cond_var)
        if both:
            raise VariableError(f"{sorted(both)} appear in both var {var} and cond_var "
                                f"{cond_var}; a variable cannot condition on itself")
        self._var = var
        self._cond_var = cond_var
        self._name = latex_name(name)
        self._features_shape = torch.Size(features_shape)
        #: Options set through ``self.graph`` (Pixyz's ``set_option``): user settings.
        self._graph_options: Dict = {"global": {}}

    # --- description -------------------------------------------------------------------
    @property
    def var(self) -> List[str]:
        return list(self._var)

    @property
    def cond_var(self) -> List[str]:
        return list(self._cond_var)

    @property
    def input_var(self) -> List[str]:
        """Variables needed as input to sample (normally ``cond_var``)."""
        return list(self._cond_var)

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = latex_name(value)

    @property
    def features_shape(self) -> torch.Size:
        return self._features_shape

    @property
    def distribution_name(self) -> str:
        return ""

    @property
    def prob_text(self) -> str:
        return prob_text(self._name, self.var, self.cond_var)

    @property
    def prob_factorized_text(self) -> str:
        return self.prob_text

    @property
    def prob_joint_factorized_and_text(self) -> str:
        joint, fact = self.prob_text, self.prob_factorized_text
        return joint if joint == fact else f"{joint} = {fact}"

    @property
    def graph(self):
        """Pixyz's ``DistGraph`` API over this distribution's factors
        (:mod:`pixyz_pyro.dist.graph_view`)."""
        from .graph_view import DistGraph
        return DistGraph(self)

    def factors(self) -> List["Distribution"]:
        """The atomic factors of this distribution (itself, unless it is a product)."""
        return [self]

    def __str__(self) -> str:
        return (f"Distribution:\n  {self.prob_joint_factorized_and_text}\n"
                f"Network architecture:\n  " + self._network_repr().replace("\n", "\n  "))

    def _network_repr(self) -> str:
        return nn.Module.__repr__(self)

    def extra_repr(self) -> str:
        return (f"name={self.name}, distribution_name={self.distribution_name},\n"
                f"var={self.var}, cond_var={self.cond_var}, input_var={self.input_var}, "
                f"features_shape={self.features_shape}")

    def _repr_latex_(self) -> str:
        return f"${self.prob_joint_factorized_and_text}$"

    # --- executor protocol --------------------------------------------------------------
    def _sample_values(self, values: Dict, ctx: Optional[Context], reparam: bool,
                       batch_n: Optional[int]) -> Dict[str, torch.Tensor]:
        raise NotImplementedError(f"{self.prob_text} cannot be sampled")

    def _sample_n(self, values: Dict, ctx: Context, reparam: bool, batch_n: Optional[int],
                  n: int, folded: Optional[Dict] = None, repeats: Optional[Repeats] = None
                  ) -> Dict[str, torch.Tensor]:
        """``n`` draws per batch row, folded draw-major into ``(n * batch, *features)``.

        This generic form draws once per row of the inputs folded ``n`` times (``folded``,
        or ``values`` folded here; where ``folded`` holds ``b``-row inputs that stand for
        their ``repeats``, :mod:`~pixyz_pyro.dist.repeats`, they are folded first); a
        factor overrides it to evaluate its parameters once on the ``batch`` rows."""
        if n == 1:
            return self._sample_values(values, ctx, reparam, batch_n)
        if folded is not None and repeats is not None:
            folded = repeats.folded(folded, self.input_var)
        if folded is None:
            names = [k for k in self.input_var
                     if isinstance(values.get(k), torch.Tensor) and values[k].dim() > 0]
            folded = fold(values, names, n)
        return self._sample_values(folded, ctx, reparam, n * (batch_n or 1))

    def _log_prob_values(self, values: Dict, ctx: Context, sum_features: bool = True,
                         feature_dims=None) -> torch.Tensor:
        raise NotImplementedError(f"{self.prob_text} has no log-density")

    if TYPE_CHECKING:  # only some distributions have these (callers test with hasattr)
        def pyro_dist(self, values: Dict, ctx: Optional[Context] = None) -> Any:
            """The ``pyro.distributions`` object for ``values``."""

        def _params(self, values: Dict, ctx: Optional[Context]) -> Dict[str, torch.Tensor]:
            """The parameters for ``values`` (the families and the products of experts)."""

        def _entropy_values(self, values: Dict, ctx: Context, sum_features: bool = True,
                            feature_dims: Optional[Sequence[int]] = None) -> torch.Tensor:
            """The entropy for ``values``."""

    def _require(self, values: Dict, names: Sequence[str], purpose: str) -> None:
        for v in names:  # no list on the normal path
            if v not in values:
                break
        else:
            return
        missing = [v for v in names if v not in values]
        if missing:
            raise VariableError(missing_vars_message(self.prob_text, missing, values, purpose))

    def _checked_input(self, x_dict, keys: Sequence[str], names: Sequence[str],
                       purpose: str) -> Dict:
        """The input dict of a public call, with ``names`` present and usable."""
        def who():  # formatted only for an error
            return f"{self.prob_text} ({purpose})"

        values = to_dict(x_dict, keys, who)
        self._require(values, names, purpose)
        check_values(who, values, names)
        return values

    def _guarded(self, fn, purpose: str, values: Dict, ctx: Context):
        """``fn()``, its support checks read (:func:`~pixyz_pyro.dist.checks.settle`), with
        what it changes in running statistics put back and a torch error re-raised in the
        user's terms if it raises."""
        saved = snapshot_running((self,))
        try:
            out = fn()
            settle(ctx.flags)
            return out
        except BaseException as e:
            restore_running(saved)
            if passes_through(e):
                raise
            settle(ctx.flags)  # a torch error caused by a value outside its support
            names = [v for v in self.var + self.input_var if v in values]
            raise wrap_error(f"{purpose} of {self.prob_text}", e, values,
                             list(dict.fromkeys(names))) from e

    # --- sampling -----------------------------------------------------------------------
    def sample(self, x_dict=None, batch_n: Optional[int] = None, sample_shape=torch.Size(),
               return_all: bool = True, reparam: bool = False, sample_mean: bool = False,
               **options) -> Dict[str, torch.Tensor]:
        """Draw ``var`` given ``x_dict``.

        Shapes are ``sample_shape + batch_shape + features_shape``.  ``batch_n`` sets the
        batch of a distribution that has no input.  With ``return_all`` the input dict is
        returned too (unknown extra keys are carried through).  ``sample_mean=True``
        returns means instead of draws (:mod:`pixyz_pyro.dist.mean_sample`).  Other
        keyword options are Pixyz's per-factor options and are accepted and ignored.

        Examples
        --------
        >>> from pixyz_pyro.dist import Normal
        >>> p = Normal(loc=0., scale=1., var=["z"], features_shape=[2])
        >>> p.sample(batch_n=3)["z"].shape, p.sample(sample_shape=[5])["z"].shape
        (torch.Size([3, 2]), torch.Size([5, 1, 2]))
        """
        who = f"{self.prob_text}.sample"
        check_optional_positive_int("batch_n", batch_n, who)
        sample_shape = tuple(check_sample_shape("sample_shape", sample_shape, who))
        x_dict = self._checked_input(x_dict, self.cond_var, self.input_var, "sampling")
        if sample_mean:
            from .mean_sample import mean_values
            new = mean_values(self, x_dict)
            return {**x_dict, **new} if return_all else new
        n = numel(sample_shape)
        known = set(self.var + self.cond_var + self.input_var)
        names = [k for k in x_dict if k in known]
        values = fold(x_dict, names, n)
        if n > 1:
            has_input = any(isinstance(t := values[k], torch.Tensor) and t.dim() > 0
                            for k in names)
            batch_n = None if has_input else n * (batch_n or 1)
        ctx = Context(batch_n=batch_n)
        new = self._guarded(lambda: self._sample_values(values, ctx, reparam, batch_n),
                            "sampling", x_dict, ctx)
        new = {k: unfold(v, sample_shape) for k, v in new.items()}
        if not return_all:
            return {k: new[k] for k in self.var if k in new}
        out = dict(x_dict)
        out.update(new)
        return out

    def sample_mean(self, x_dict=None) -> torch.Tensor:
        raise NotImplementedError(f"{self.prob_text} has no closed-form mean")

    def sample_variance(self, x_dict=None) -> torch.Tensor:
        raise NotImplementedError(f"{self.prob_text} has no closed-form variance")

    # --- densities ----------------------------------------------------------------------
    def get_log_prob(self, x_dict, sum_features: bool = True, feature_dims=None,
                     **kwargs) -> torch.Tensor:
        """:math:`\\log p(x|y)` of the values in ``x_dict``, summed over the features
        (every dimension but the first) when ``sum_features``."""
        need = self.var + [v for v in self.input_var if v not in self.var]
        x_dict = self._checked_input(x_dict, self.var + self.input_var, need, "log_prob")
        ctx = Context()
        return self._guarded(
            lambda: self._log_prob_values(x_dict, ctx, sum_features, feature_dims),
            "log_prob", x_dict, ctx)

    def log_likelihood(self, x_dict) -> torch.Tensor:
        """Pixyz 0.0's spelling of :meth:`get_log_prob` (deprecated; the same values)."""
        import warnings
        warnings.warn("p.log_likelihood(x_dict) is the Pixyz 0.0 spelling; use "
                      "p.get_log_prob(x_dict) (Pixyz 0.3)", DeprecationWarning, stacklevel=2)
        return self.get_log_prob(x_dict)

    def get_entropy(self, x_dict=None, sum_features: bool = True,
                    feature_dims=None) -> torch.Tensor:
        raise NotImplementedError(f"{self.prob_text} has no closed-form entropy")

    def get_params(self, params_dict=None, **kwargs) -> Dict[str, torch.Tensor]:
        raise NotImplementedError(f"{self.prob_text} has no parameters of its own")

    # --- losses (late import: dist never imports loss at module level) ------------------
    def log_prob(self, sum_features: bool = True, feature_dims=None):
        """The loss :math:`\\log p(x|y)` (a :class:`pixyz_pyro.loss.LogProb`)."""
        from ..loss import LogProb
        return LogProb(self, sum_features=sum_features, feature_dims=feature_dims)

    def prob(self, sum_features: bool = True, feature_dims=None):
        """The loss :math:`p(x|y)` (a :class:`pixyz_pyro.loss.Prob`)."""
        from ..loss import Prob
        return Prob(self, sum_features=sum_features, feature_dims=feature_dims)

    def entropy(self, sample_shape=torch.Size([1]), analytical: bool = True):
        """The loss :math:`H[p]` (a :class:`pixyz_pyro.loss.Entropy`)."""
        from ..loss import Entropy
        return Entropy(self, sample_shape=sample_shape, analytical=analytical)

    # --- combinators ----------------------------------------------------------------------
    def __mul__(self, other: "Distribution") -> "Distribution":
        from .joint import MultiplyDistribution
        return MultiplyDistribution(self, other)

    def replace_var(self, **replace_dict: str) -> "Distribution":
        """Rename variables: ``q.replace_var(z="z_prev")`` returns a new distribution."""
        from .joint import ReplaceVarDistribution
        return ReplaceVarDistribution(self, replace_dict)

    def marginalize_var(self, marginalize_list) -> "Distribution":
        """Integrate variables out (by ancestral sampling); returns a new distribution."""
        from .joint import MarginalizeVarDistribution
        return MarginalizeVarDistribution(self, marginalize_list)

    def forward(self, *args, **kwargs):
        """Networks override this: map conditioning variables to parameters."""
        return {}



#: An ``nn.ModuleList`` of distributions (at run time ``nn.ModuleList`` itself).
DistributionList = ModuleListOf[Distribution]
