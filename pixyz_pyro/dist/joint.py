"""Joints: products of factors, renamed variables and marginals.

A product :math:`p(x, z) = p(x|z) p(z)` is an immutable DAG of factors
(:class:`pixyz_pyro.graph.Graph`).  Sampling is ancestral, in topological order; the
joint log-density is the sum of its factors' log-densities:

.. math::

    \\log p(x, z) = \\log p(x|z) + \\log p(z).

``replace_var`` and ``marginalize_var`` return new objects and never modify their input.
"""
from typing import Dict, List, Tuple

import torch

from ..errors import GraphError, ShapeError, VariableError, did_you_mean
from ..graph import Graph
from .distribution import Distribution, DistributionList
from .naming import as_var_list


class MultiplyDistribution(Distribution):
    """The product of two distributions, ``a * b``.

    Parameters
    ----------
    a, b : Distribution
        The two factors (a product of products is flattened); a variable may be defined by
        only one of them.

    Examples
    --------
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"])
    >>> prior = Normal(loc=0., scale=1., var=["z"], name="p_prior")
    >>> print((p * prior).prob_joint_factorized_and_text)
    p(x,z) = p(x|z)p_{prior}(z)
    """

    def __init__(self, a: Distribution, b: Distribution):
        for d in (a, b):
            if not isinstance(d, Distribution):
                raise TypeError(f"only distributions can be multiplied, got {type(d).__name__}")
        factors = a.factors() + b.factors()
        graph = Graph([(i, f.var, f.cond_var) for i, f in enumerate(factors)],
                      names=_Names(factors))
        _check_marginals(factors)
        super().__init__(var=list(graph.var), cond_var=list(graph.cond_var), name=a.name)
        self._factors = DistributionList(factors)
        self._order = tuple(factors[i] for i in graph.order)
        self._graph = graph

    def factors(self) -> List[Distribution]:
        return list(self._factors)

    @property
    def _print_order(self) -> Tuple[Distribution, ...]:
        """The factors in the order Pixyz prints them (worked out when printing)."""
        return tuple(self._factors[i] for i in self._graph.print_order)

    @property
    def input_var(self) -> List[str]:
        """What sampling needs: the conditioning variables, plus the variables of factors
        that take their own variable as input (the data distribution), as in Pixyz."""
        out = list(self.cond_var)
        for f in self._factors:
            out.extend(v for v in f.input_var if v in f.var and v not in out)
        return out

    @property
    def has_reparam(self) -> bool:
        return all(f.has_reparam for f in self._factors)

    @property
    def distribution_name(self) -> str:
        return ""

    @property
    def prob_factorized_text(self) -> str:
        return "".join(f.prob_factorized_text for f in reversed(self._print_order))

    def _network_repr(self) -> str:
        return "\n".join(f"{f.prob_text}:\n{f._network_repr()}" for f in self._print_order)

    def __repr__(self) -> str:
        return repr(self.graph)

    def _sample_values(self, values, ctx, reparam, batch_n):
        values = dict(values)
        new: Dict = {}
        for f in self._order:
            if all(v in values for v in f.var):
                continue
            out = f._sample_values(values, ctx, reparam, batch_n)
            values.update(out)
            new.update(out)
        return new

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        self._require(values, self.var + self.cond_var, "log_prob")
        if not sum_features:
            return self._elementwise_log_prob(values, ctx, feature_dims)
        total = None
        for f in self._order:
            lp = f._log_prob_values(values, ctx, sum_features, feature_dims)
            total = lp if total is None else total + lp
        return total

    def _elementwise_log_prob(self, values, ctx, feature_dims) -> torch.Tensor:
        """The sum of the factors' unsummed log-densities, which must agree in every
        dimension after the first: factors of other features would broadcast, and one
        factor's :math:`\\log p(x)` would count once per feature of another's (Pixyz adds
        them anyway, see docs/pixyz-compat.md)."""
        scored = [(f, f._log_prob_values(values, ctx, False, feature_dims))
                  for f in self._order]
        first = scored[0][1].shape[1:]
        if any(lp.shape[1:] != first for _, lp in scored):
            shown = ", ".join(f"{f.prob_text}: {tuple(lp.shape)}" for f, lp in scored)
            raise ShapeError(
                f"{self.prob_text}: get_log_prob(sum_features=False) keeps each factor's "
                f"features, and the factors' log-densities have different shapes ({shown}); "
                f"adding them would broadcast one factor over another's features. Use "
                f"sum_features=True, or each factor's log_prob")
        total = scored[0][1]
        for _, lp in scored[1:]:
            total = total + lp
        return total

    def get_log_prob(self, x_dict, sum_features=True, feature_dims=None, **kwargs):
        return super().get_log_prob(x_dict, sum_features, feature_dims, **kwargs)

    def sample(self, x_dict=None, batch_n=None, sample_shape=torch.Size(), return_all=True,
               reparam=False, sample_mean=False, **options):
        """:meth:`Distribution.sample`; options set with ``self.graph.set_option`` take
        priority over the arguments, as in Pixyz."""
        from .graph_view import sample_options
        opts = sample_options(self)
        return super().sample(x_dict, opts.get("batch_n", batch_n),
                              opts.get("sample_shape", sample_shape), return_all,
                              opts.get("reparam", reparam), sample_mean)


class _Names:
    """The factors' printed names, made only when a message needs them (picklable, as the
    joint is)."""

    def __init__(self, factors: List[Distribution]):
        self.factors = tuple(factors)

    def __call__(self) -> List[str]:
        return [f.prob_text for f in self.factors]


def _check_marginals(factors: List[Distribution]) -> None:
    """A factor may not condition on a variable that another factor marginalized out:
    the product would read a different, unbound variable of the same name."""
    for m in factors:
        gone = vars(m).get("_marginalized", ())  # not nn.Module's slow __getattr__
        if not gone:  # the usual case: nothing marginalized, nothing to compare
            continue
        for f in factors:
            used = [v for v in f.cond_var if v in gone] if f is not m else []
            if used:
                raise GraphError(
                    f'{f.prob_text} conditions on "{used[0]}", which {m.prob_text} = '
                    f"{m.prob_factorized_text} has marginalized out; the product would read "
                    f'a different, unbound "{used[0]}". Multiply first, then marginalize: '
                    f"(a * b).marginalize_var({list(gone)})")


def _renamed_last(names: List[str], replace_dict: Dict[str, str]) -> List[str]:
    kept = [v for v in names if v not in replace_dict]
    return kept + [new for old, new in replace_dict.items() if old in names]


class ReplaceVarDistribution(Distribution):
    """``p.replace_var(z="y")``: the same distribution with renamed variables.

    Parameters
    ----------
    p : Distribution
        The distribution.
    replace_dict : dict
        ``{old name: new name}`` of the variables to rename.

    Examples
    --------
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"])
    >>> p.replace_var(z="y").prob_text
    'p(x|y)'
    """

    def __init__(self, p: Distribution, replace_dict: Dict[str, str]):
        names = p.var + p.cond_var
        for old, new in replace_dict.items():
            if old not in names:
                raise VariableError(f'replace_var: {p.prob_text} has no variable "{old}"'
                                    f"{did_you_mean(old, names)}; its variables are {names}")
            if not isinstance(new, str):
                raise VariableError(f"replace_var: the new name of {old} must be a string")
        # Every name in the graph, marginalized ones included: renaming onto one of them
        # would make two variables one.
        every = list(p.graph.all_var)
        every += [v for v in names if v not in every]
        fwd = {k: replace_dict.get(k, k) for k in every}
        targets = list(fwd.values())
        if len(set(targets)) != len(targets):
            clash = [v for v in every if targets.count(fwd[v]) > 1]
            # Pixyz's documented error, caused by the one in our terms.
            raise ValueError(f"{clash} are conflicted after replaced.") from VariableError(
                f"replace_var {replace_dict} on {p.prob_text} maps two variables to one name: "
                f"{clash}")
        # As in Pixyz, renamed variables come after the others, in the order renamed.
        super().__init__(var=_renamed_last(p.var, replace_dict),
                         cond_var=_renamed_last(p.cond_var, replace_dict),
                         name=p.name, features_shape=p.features_shape)
        self.p = p
        self._fwd = fwd
        self._bwd = {v: k for k, v in fwd.items()}

    @property
    def distribution_name(self) -> str:
        return self.p.distribution_name

    @property
    def input_var(self) -> List[str]:
        return [self._fwd.get(v, v) for v in self.p.input_var]

    @property
    def has_reparam(self) -> bool:
        return self.p.has_reparam

    @property
    def prob_factorized_text(self) -> str:
        from .printing import factorized_text
        return factorized_text(self)

    def _network_repr(self) -> str:
        from .printing import network_text
        return network_text(self)

    def __repr__(self) -> str:
        return repr(self.graph)

    def _inner(self, values: Dict) -> Dict:
        # A value under an old (renamed-away) name is not an input: ``p.replace_var(y="z")``
        # reads "z", and a "y" in the dict must not reach p's "y".
        out = {k: v for k, v in values.items()
               if k not in self._bwd and self._fwd.get(k, k) == k}
        for new, old in self._bwd.items():
            if new in values:
                out[old] = values[new]
        return out

    def _scoped(self, ctx, method, values, *args):
        """``method(inner values, ctx, *args)`` with this renaming in ``ctx.scope``, so
        that the factors' messages use the outer names."""
        if ctx is None:
            return method(self._inner(values), ctx, *args)
        outer = ctx.scope
        ctx.scope = outer + (self,)
        try:
            return method(self._inner(values), ctx, *args)
        finally:
            ctx.scope = outer

    def _sample_values(self, values, ctx, reparam, batch_n):
        out = self._scoped(ctx, self.p._sample_values, values, reparam, batch_n)
        return {self._fwd.get(k, k): v for k, v in out.items()}

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        self._require(values, self.var + self.cond_var, "log_prob")
        return self._scoped(ctx, self.p._log_prob_values, values, sum_features, feature_dims)

    def pyro_dist(self, values, ctx=None):
        return self._scoped(ctx, self.p.pyro_dist, values)

    def _entropy_values(self, values, ctx, sum_features=True, feature_dims=None):
        return self._scoped(ctx, self.p._entropy_values, values, sum_features, feature_dims)

    def sample_mean(self, x_dict=None):
        return self.p.sample_mean(self._inner(dict(x_dict or {})))

    def sample_variance(self, x_dict=None):
        return self.p.sample_variance(self._inner(dict(x_dict or {})))

    def get_entropy(self, x_dict=None, sum_features=True, feature_dims=None):
        return self.p.get_entropy(self._inner(dict(x_dict or {})), sum_features, feature_dims)

    def get_params(self, params_dict=None, **kwargs):
        return self.p.get_params(self._inner(dict(params_dict or {})), **kwargs)


#: Pixyz's documented error for marginalizing every variable; the exception that names the
#: distribution is its ``__cause__``.
_MARGINALIZE_MESSAGE = ("marginalize_list has unknown variables or it has all of variables "
                        "of `p`.")


class MarginalizeVarDistribution(Distribution):
    """``p.marginalize_var(["z"])``: :math:`p(x) = \\int p(x, z) dz`, by sampling.

    It samples (ancestrally, then drops the marginalised variables); it has no
    closed-form density.

    Parameters
    ----------
    p : Distribution
        A joint distribution.
    marginalize_list : str or list of str
        The variables to integrate out (still drawn, no longer returned).

    Examples
    --------
    >>> from pixyz_pyro.dist import Normal
    >>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"]) * Normal(loc=0., scale=1.,
    ...                                                               var=["z"])
    >>> m = p.marginalize_var("z")
    >>> m.prob_text, sorted(m.sample(batch_n=2))
    ('p(x)', ['x'])
    """

    def __init__(self, p: Distribution, marginalize_list):
        names = as_var_list(marginalize_list, "marginalize_var")
        if not names:
            raise ValueError("Length of `marginalize_list` must be at least 1, got 0.")
        for v in names:
            if v not in p.var:
                if v in p.cond_var:
                    raise VariableError(
                        f'marginalize_var: "{v}" is a conditioning variable of {p.prob_text}; '
                        f"only variables it defines ({p.var}) can be marginalized")
                raise VariableError(f'marginalize_var: {p.prob_text} has no variable "{v}"'
                                    f"{did_you_mean(v, p.var)}; its variables are {p.var}")
        keep = [v for v in p.var if v not in names]
        if not keep:
            raise ValueError(_MARGINALIZE_MESSAGE) from VariableError(
                f"marginalize_var: cannot marginalize every variable of {p.prob_text}")
        super().__init__(var=keep, cond_var=p.cond_var, name=p.name,
                         features_shape=p.features_shape)
        self.p = p
        self._marginalized = names

    @property
    def distribution_name(self) -> str:
        return self.p.distribution_name

    @property
    def input_var(self) -> List[str]:
        """The inner joint's inputs, marginalized data included: in
        :math:`\\int q(z|x) p_{data}(x) dx` the data ``x`` is integrated out by *reading*
        it (the data distribution returns its input), so it stays an input, as in Pixyz."""
        return self.p.input_var

    @property
    def prob_factorized_text(self) -> str:
        inner = self.p.prob_factorized_text
        return "\\int " + inner + "".join(f"d{v}" for v in self._marginalized)

    def _network_repr(self) -> str:
        return self.p._network_repr()

    def __repr__(self) -> str:
        return repr(self.graph)

    def factors(self):
        return [self]

    def _sample_values(self, values, ctx, reparam, batch_n):
        out = self.p._sample_values(values, ctx, reparam, batch_n)
        return {k: v for k, v in out.items() if k not in self._marginalized}

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        # Pixyz raises a bare NotImplementedError; the cause says why.
        raise NotImplementedError() from NotImplementedError(
            f"{self.prob_text} marginalizes {self._marginalized} out of "
            f"{self.p.prob_text} and has no closed-form log-density; use an ELBO")

