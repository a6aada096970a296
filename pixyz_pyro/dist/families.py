"""The families: ONE table over ``pyro.distributions``.

Each row is a :class:`~pixyz_pyro.dist.family.Family`; :func:`lift` makes the class.
Pixyz semantics kept here:

* ``Bernoulli`` scores targets anywhere in :math:`[0, 1]` (cross-entropy with logits),
  as grey-level images need: :math:`\\log p(x) = x \\log \\pi + (1 - x) \\log(1 - \\pi)`.
* ``Categorical`` and ``RelaxedCategorical`` take one-hot values.
* The relaxed families draw relaxed, reparameterised samples, but score with the hard
  distribution, so that the NLL of one-hot labels is finite.
* ``FactorizedBernoulli`` scores only the non-zero elements of the value.
"""
from typing import Optional, Sequence

import pyro.distributions as pd
import torch

from .factor import FactorDistribution
from .family import Family


def lift(pyro_cls: type, params: Optional[Sequence[str]] = None, name: Optional[str] = None,
         reparam: Optional[bool] = None, **family_kwargs) -> type:
    """Lift a ``pyro.distributions`` class into the Distribution API in one line.

    Parameters
    ----------
    pyro_cls : type
        Any ``pyro.distributions`` (or ``torch.distributions``) class.
    params : sequence of str, optional
        Parameter names; default: the class's ``arg_constraints`` in order.
    name : str, optional
        ``distribution_name``; default: the class name.
    reparam : bool, optional
        Default: ``pyro_cls.has_rsample``.

    Examples
    --------
    >>> import pyro.distributions as pd
    >>> LogNormal = lift(pd.LogNormal)
    >>> LogNormal(loc=0., scale=1., var=["x"]).distribution_name
    'LogNormal'
    """
    fam = Family(name or pyro_cls.__name__, pyro_cls,
                 tuple(params) if params is not None else tuple(pyro_cls.arg_constraints),
                 reparam=pyro_cls.has_rsample if reparam is None else reparam,
                 **family_kwargs)
    doc = f"{fam.name} on ``{pyro_cls.__module__}.{pyro_cls.__name__}``."
    return type(fam.name, (FactorDistribution,),
                {"family": fam, "__module__": __name__, "__doc__": doc})


def _unit_interval(x: torch.Tensor) -> str:
    if x.is_floating_point() and bool(((x < 0) | (x > 1)).any()):
        return f"must lie in [0, 1], got values in [{float(x.min()):.4g}, {float(x.max()):.4g}]"
    return ""


def _one_hot(x: torch.Tensor) -> str:
    ok = bool((((x == 0) | (x == 1)).all() & (x.sum(-1) == 1).all()))
    return "" if ok else "must be one-hot along its last dimension (use F.one_hot)"


def _factorized_bernoulli_log_prob(d, x: torch.Tensor) -> torch.Tensor:
    return d.log_prob(x) * (x != 0)


_PROBS = {"probs": "logits"}
_T = {"temperature": torch.tensor(0.1)}

# name, pyro class, parameters, and what differs from the defaults.
Normal = lift(pd.Normal, ("loc", "scale"))
Laplace = lift(pd.Laplace, ("loc", "scale"))
Beta = lift(pd.Beta, ("concentration1", "concentration0"))
Gamma = lift(pd.Gamma, ("concentration", "rate"))
Dirichlet = lift(pd.Dirichlet, ("concentration",))
Bernoulli = lift(pd.Bernoulli, ("probs",), alternatives=_PROBS, value_check=_unit_interval)
FactorizedBernoulli = lift(pd.Bernoulli, ("probs",), name="FactorizedBernoulli",
                           alternatives=_PROBS, value_check=_unit_interval,
                           log_prob=_factorized_bernoulli_log_prob)
RelaxedBernoulli = lift(pd.Bernoulli, ("probs",), name="RelaxedBernoulli", reparam=True,
                        alternatives=_PROBS, sampler_cls=pd.RelaxedBernoulli,
                        sampler_params=("temperature",), defaults=_T,
                        value_check=_unit_interval)
Categorical = lift(pd.OneHotCategorical, ("probs",), name="Categorical",
                   alternatives=_PROBS, value_check=_one_hot)
RelaxedCategorical = lift(pd.OneHotCategorical, ("probs",), name="RelaxedCategorical",
                          reparam=True, alternatives=_PROBS,
                          sampler_cls=pd.RelaxedOneHotCategorical,
                          sampler_params=("temperature",), defaults=_T)
_Multinomial = lift(pd.Multinomial, ("probs",), name="Multinomial", alternatives=_PROBS,
                    static={"total_count": 1})


class Multinomial(_Multinomial):
    """Multinomial on ``pyro.distributions.Multinomial``; ``total_count`` comes first, as
    in Pixyz."""

    def __init__(self, total_count: int = 1, var=("x",), cond_var=(), name: str = "p",
                 features_shape=torch.Size(), probs=None, logits=None):
        super().__init__(var, cond_var, name, features_shape, probs=probs, logits=logits,
                         total_count=int(total_count))


FAMILIES = (Normal, Bernoulli, RelaxedBernoulli, FactorizedBernoulli, Categorical,
            RelaxedCategorical, Multinomial, Dirichlet, Beta, Laplace, Gamma)
