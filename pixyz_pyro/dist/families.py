"""The families: ONE table over ``pyro.distributions``, as real classes.

Each family is a :class:`~pixyz_pyro.dist.factor.FactorDistribution` subclass whose
``family`` attribute is one :class:`~pixyz_pyro.dist.family.Family` row: the Pyro
class, the parameter names and the support checks.  Every parameter is given as a
constant (a number or tensor, kept as a buffer), as the name of a conditioning variable
(``loc="y"``), as an ``nn.Parameter``, or returned by ``forward`` (a network).

Pixyz semantics kept here:

* ``Bernoulli`` scores targets anywhere in :math:`[0, 1]` (cross-entropy with logits),
  as grey-level images need: :math:`\\log p(x) = x \\log \\pi + (1 - x) \\log(1 - \\pi)`;
  other real values get the same formula and a ``SupportWarning`` (an error under
  ``pixyz_pyro.set_validation("strict")``).
* ``Categorical`` and ``RelaxedCategorical`` take one-hot values.
* The relaxed families draw relaxed, reparameterised samples, but score with the hard
  distribution, so that the NLL of one-hot labels is finite.
* ``FactorizedBernoulli`` scores only the non-zero elements of the value.
"""
import sys
from typing import Any, List, Optional, Sequence, Tuple, Type, Union

import pyro.distributions as pd
import torch
from pyro.distributions import TorchDistribution

from .factor import FactorDistribution
from .family import UNNORMALISED_PROBS, Family, interval_check

#: A parameter: a constant, the name of a conditioning variable, or ``None`` (from
#: ``forward``).
Param = Union[None, float, torch.Tensor, str]
#: Variable names: a list (or tuple) of strings, as Pixyz documents.  A bare string is
#: read as one name at run time, but the type checker asks for the list (``["x"]``).
Names = Union[List[str], Tuple[str, ...]]
Shape = Union[torch.Size, Sequence[int]]


def lift(pyro_cls: Type[TorchDistribution], params: Optional[Sequence[str]] = None,
         name: Optional[str] = None, reparam: Optional[bool] = None,
         **family_kwargs: Any) -> Type[FactorDistribution]:
    """Lift a ``pyro.distributions`` class into the Distribution API in one line.

    Parameters
    ----------
    pyro_cls : type
        Any ``pyro.distributions`` (or ``torch.distributions``) class.
    params : sequence of str, optional
        Parameter names; default: the class's ``arg_constraints`` in order.
    name : str, optional
        ``distribution_name`` and the class name; default: the class name.  Assign the
        result to a module-level name equal to it, so that instances pickle.
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
                 tuple(params) if params is not None else tuple(pyro_cls.arg_constraints),  # type: ignore[arg-type]  # torch types it as a property; on the class it is the dict
                 reparam=pyro_cls.has_rsample if reparam is None else reparam,
                 **family_kwargs)
    doc = f"{fam.name} on ``{pyro_cls.__module__}.{pyro_cls.__name__}``."
    caller = sys._getframe(1).f_globals.get("__name__", __name__)
    return type(fam.name, (FactorDistribution,),
                {"family": fam, "__module__": caller, "__qualname__": fam.name,
                 "__doc__": doc})


_unit_interval = interval_check(0.0, 1.0)


def _one_hot(x: torch.Tensor) -> torch.Tensor:
    return ~((((x == 0) | (x == 1)).all(-1)) & (x.sum(-1) == 1)).all()


def _factorized_bernoulli_log_prob(d, x: torch.Tensor) -> torch.Tensor:
    return d.log_prob(x) * (x != 0)


_PROBS = {"probs": "logits"}
_T = {"temperature": torch.tensor(0.1)}
_FIELDS = """
    A subclass computes the parameters with a network: ``forward`` takes the
    conditioning variables (``cond_var``) as keyword arguments and returns a dict of the
    parameters left ``None`` here, each of shape ``batch_shape + features_shape``.

    A parameter given as a string takes the value of that conditioning variable
    (``Normal(loc="y", scale=1., var=["x"], cond_var=["y"])``); a number or a tensor is a
    constant, an ``nn.Parameter`` is trained.

    Parameters
    ----------
    var : list of str
        The variable it defines (one).
    cond_var : list of str
        The variables it is conditioned on (the inputs of ``forward``).
    name : str
        The name in formulas (``"p_{prior}"`` prints :math:`p_{prior}`).
    features_shape : sequence of int
        The shape of one draw of one batch element (``sample_shape + batch_shape +
        features_shape``, see :mod:`pixyz_pyro.dist.shapes`).
"""
#: The last entry of each family's Parameters section.
_KWARGS = """    kwargs
        Pixyz's ``dim=n`` (``features_shape=[n]``); any other keyword is a
        ``ParameterError`` that names the family's parameters.
"""


class Normal(FactorDistribution):
    __doc__ = """The normal distribution :math:`\\mathcal{N}(x; \\mu, \\sigma^2)` on
    ``pyro.distributions.Normal``, reparameterised.
    """ + _FIELDS + """    loc : float, tensor, str or None
        The mean :math:`\\mu`; ``None`` when ``forward`` returns it.
    scale : float, tensor, str or None
        The standard deviation :math:`\\sigma > 0`; ``None`` when ``forward`` returns it.
""" + _KWARGS + """
    Examples
    --------
    A network :math:`q(z|x)` returns its parameters from ``forward``:

    >>> from torch import nn
    >>> class Inference(Normal):
    ...     def __init__(self):
    ...         super().__init__(var=["z"], cond_var=["x"], name="q")
    ...         self.fc = nn.Linear(3, 4)
    ...     def forward(self, x):
    ...         h = self.fc(x)
    ...         return {"loc": h[:, :2], "scale": nn.functional.softplus(h[:, 2:])}
    >>> q = Inference()
    >>> q.sample({"x": torch.zeros(5, 3)})["z"].shape
    torch.Size([5, 2])
    >>> p = Normal(loc=0., scale=1., var=["x"])
    >>> p.get_log_prob({"x": torch.zeros(1)})  # -log(2 pi) / 2
    tensor([-0.9189])
    """

    family = Family("Normal", pd.Normal, ("loc", "scale"), reparam=True)

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p",
                 features_shape: Shape = torch.Size(), loc: Param = None,
                 scale: Param = None, **kwargs: Any) -> None:
        super().__init__(var, cond_var, name, features_shape, loc=loc, scale=scale, **kwargs)


class Laplace(FactorDistribution):
    __doc__ = """The Laplace distribution on ``pyro.distributions.Laplace``, reparameterised.
    """ + _FIELDS + """    loc : float, tensor, str or None
        The location (the median).
    scale : float, tensor, str or None
        The scale :math:`b > 0`.
""" + _KWARGS + """
    Examples
    --------
    >>> Laplace(loc=0., scale=1., var=["x"]).get_log_prob({"x": torch.zeros(1)})
    tensor([-0.6931])
    """

    family = Family("Laplace", pd.Laplace, ("loc", "scale"), reparam=True)

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p",
                 features_shape: Shape = torch.Size(), loc: Param = None,
                 scale: Param = None, **kwargs: Any) -> None:
        super().__init__(var, cond_var, name, features_shape, loc=loc, scale=scale, **kwargs)


class Beta(FactorDistribution):
    __doc__ = """The beta distribution on ``pyro.distributions.Beta``, reparameterised.
    """ + _FIELDS + """    concentration1, concentration0 : float, tensor, str or None
        :math:`\\alpha, \\beta > 0`.
""" + _KWARGS + """
    Examples
    --------
    >>> Beta(concentration1=2., concentration0=2., var=["x"]).get_log_prob(
    ...     {"x": torch.full((1,), 0.5)})  # log(6 * 0.25)
    tensor([0.4055])
    """

    family = Family("Beta", pd.Beta, ("concentration1", "concentration0"), reparam=True)

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p",
                 features_shape: Shape = torch.Size(), concentration1: Param = None,
                 concentration0: Param = None, **kwargs: Any) -> None:
        super().__init__(var, cond_var, name, features_shape,
                         concentration1=concentration1, concentration0=concentration0, **kwargs)


class Gamma(FactorDistribution):
    __doc__ = """The gamma distribution on ``pyro.distributions.Gamma``, reparameterised.
    """ + _FIELDS + """    concentration : float, tensor, str or None
        The shape :math:`\\alpha > 0`.
    rate : float, tensor, str or None
        The rate :math:`\\beta > 0`.
""" + _KWARGS + """
    Examples
    --------
    >>> Gamma(concentration=1., rate=1., var=["x"]).get_log_prob({"x": torch.ones(1)})
    tensor([-1.])
    """

    family = Family("Gamma", pd.Gamma, ("concentration", "rate"), reparam=True)

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p",
                 features_shape: Shape = torch.Size(), concentration: Param = None,
                 rate: Param = None, **kwargs: Any) -> None:
        super().__init__(var, cond_var, name, features_shape, concentration=concentration,
                         rate=rate, **kwargs)


class Dirichlet(FactorDistribution):
    __doc__ = """The Dirichlet distribution on ``pyro.distributions.Dirichlet``, reparameterised.
    """ + _FIELDS + """    concentration : float, tensor, str or None
        :math:`\\alpha_k > 0` over the last dimension.
""" + _KWARGS + """
    Examples
    --------
    >>> Dirichlet(concentration=torch.ones(3), var=["x"]).get_log_prob(
    ...     {"x": torch.full((1, 3), 1 / 3)})  # log Gamma(3)
    tensor([0.6931])
    """

    family = Family("Dirichlet", pd.Dirichlet, ("concentration",), reparam=True)

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p",
                 features_shape: Shape = torch.Size(), concentration: Param = None,
                 **kwargs: Any) -> None:
        super().__init__(var, cond_var, name, features_shape, concentration=concentration, **kwargs)


class Bernoulli(FactorDistribution):
    __doc__ = """The Bernoulli distribution on ``pyro.distributions.Bernoulli``; scores grey levels
    in :math:`[0, 1]` as binary cross-entropy (not reparameterisable).
    """ + _FIELDS + """    probs : float, tensor, str or None
        The probability :math:`\\pi \\in [0, 1]` of a one.
    logits : float, tensor, str or None
        Its logit :math:`\\log \\pi - \\log(1 - \\pi)`, given instead of ``probs``.
""" + _KWARGS + """
    Examples
    --------
    >>> p = Bernoulli(probs=torch.full((2,), 0.5), var=["x"])
    >>> p.get_log_prob({"x": torch.tensor([[0., 0.5]])})  # 2 log(1/2)
    tensor([-1.3863])
    """

    family = Family("Bernoulli", pd.Bernoulli, ("probs",), alternatives=_PROBS,
                    value_check=_unit_interval, lenient_support=True,
                    support_text="must lie in [0, 1]")

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p",
                 features_shape: Shape = torch.Size(), probs: Param = None,
                 logits: Param = None, **kwargs: Any) -> None:
        super().__init__(var, cond_var, name, features_shape, probs=probs, logits=logits, **kwargs)


class FactorizedBernoulli(Bernoulli):
    __doc__ = """A Bernoulli that scores only the non-zero elements of the value (Pixyz's
    ``FactorizedBernoulli``: :math:`\\sum_i [x_i \\ne 0] \\log p(x_i)`).
    """ + _FIELDS + """    probs : float, tensor, str or None
        The probability :math:`\\pi \\in [0, 1]` of a one.
    logits : float, tensor, str or None
        Its logit, given instead of ``probs``.

    Examples
    --------
    >>> p = FactorizedBernoulli(probs=torch.full((2,), 0.5), var=["x"])
    >>> p.get_log_prob({"x": torch.tensor([[0., 1.]])})
    tensor([-0.6931])
    """

    family = Family("FactorizedBernoulli", pd.Bernoulli, ("probs",), alternatives=_PROBS,
                    value_check=_unit_interval, lenient_support=True,
                    support_text="must lie in [0, 1]",
                    log_prob=_factorized_bernoulli_log_prob)


class RelaxedBernoulli(FactorDistribution):
    __doc__ = """A Bernoulli whose draws are relaxed (``pyro.distributions.RelaxedBernoulli`` at
    ``temperature``) and reparameterised; it scores with the hard Bernoulli.
    """ + _FIELDS + """    probs : float, tensor, str or None
        The probability :math:`\\pi \\in [0, 1]` of a one.
    logits : float, tensor, str or None
        Its logit, given instead of ``probs``.
    temperature : float or tensor
        The relaxation's temperature (default 0.1).
""" + _KWARGS + """
    Examples
    --------
    >>> p = RelaxedBernoulli(probs=torch.full((3,), 0.5), var=["x"])
    >>> bool(((p.sample()["x"] > 0) & (p.sample()["x"] < 1)).all())
    True
    """

    family = Family("RelaxedBernoulli", pd.Bernoulli, ("probs",), reparam=True,
                    alternatives=_PROBS, sampler_cls=pd.RelaxedBernoulli,
                    sampler_params=("temperature",), defaults=_T,
                    value_check=_unit_interval, lenient_support=True,
                    support_text="must lie in [0, 1]")

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p",
                 features_shape: Shape = torch.Size(), temperature: Param = None,
                 probs: Param = None, logits: Param = None, **kwargs: Any) -> None:
        super().__init__(var, cond_var, name, features_shape, temperature=temperature,
                         probs=probs, logits=logits, **kwargs)


class Categorical(FactorDistribution):
    __doc__ = """The categorical distribution over one-hot values, on
    ``pyro.distributions.OneHotCategorical`` (not reparameterisable).
    """ + _FIELDS + """    probs : float, tensor, str or None
        The class probabilities over the last dimension.
    logits : float, tensor, str or None
        Their logits (normalised over the last dimension), given instead of ``probs``.
""" + _KWARGS + """
    Examples
    --------
    >>> p = Categorical(probs=torch.tensor([0.25, 0.75]), var=["y"])
    >>> p.get_log_prob({"y": torch.tensor([[0., 1.]])})  # log 0.75
    tensor([-0.2877])
    """

    family = Family("Categorical", pd.OneHotCategorical, ("probs",), alternatives=_PROBS,
                    param_checks=UNNORMALISED_PROBS,
                    value_check=_one_hot,
                    support_text="must be one-hot along its last dimension (use F.one_hot)")

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p",
                 features_shape: Shape = torch.Size(), probs: Param = None,
                 logits: Param = None, **kwargs: Any) -> None:
        super().__init__(var, cond_var, name, features_shape, probs=probs, logits=logits, **kwargs)


class RelaxedCategorical(FactorDistribution):
    __doc__ = """A categorical whose draws are relaxed one-hot vectors
    (``pyro.distributions.RelaxedOneHotCategorical`` at ``temperature``),
    reparameterised; it scores with the hard one-hot categorical.
    """ + _FIELDS + """    probs : float, tensor, str or None
        The class probabilities over the last dimension.
    logits : float, tensor, str or None
        Their logits (normalised over the last dimension), given instead of ``probs``.
    temperature : float or tensor
        The relaxation's temperature (default 0.1).
""" + _KWARGS + """
    Examples
    --------
    >>> p = RelaxedCategorical(probs=torch.tensor([0.5, 0.5]), var=["y"])
    >>> torch.allclose(p.sample(batch_n=4)["y"].sum(-1), torch.ones(4))
    True
    """

    family = Family("RelaxedCategorical", pd.OneHotCategorical, ("probs",), reparam=True,
                    alternatives=_PROBS, sampler_cls=pd.RelaxedOneHotCategorical,
                    sampler_params=("temperature",), defaults=_T,
                    param_checks=UNNORMALISED_PROBS)

    def __init__(self, var: Names = ("x",), cond_var: Names = (), name: str = "p",
                 features_shape: Shape = torch.Size(), temperature: Param = None,
                 probs: Param = None, logits: Param = None, **kwargs: Any) -> None:
        super().__init__(var, cond_var, name, features_shape, temperature=temperature,
                         probs=probs, logits=logits, **kwargs)


class Multinomial(FactorDistribution):
    __doc__ = """The multinomial distribution on ``pyro.distributions.Multinomial``;
    ``total_count`` comes first, as in Pixyz.
    """ + _FIELDS + """    total_count : int
        The number of trials.
    probs : float, tensor, str or None
        The class probabilities over the last dimension.
    logits : float, tensor, str or None
        Their logits (normalised over the last dimension), given instead of ``probs``.
""" + _KWARGS + """
    Examples
    --------
    >>> p = Multinomial(total_count=2, probs=torch.tensor([0.5, 0.5]), var=["x"])
    >>> p.get_log_prob({"x": torch.tensor([[1., 1.]])})  # log(2 / 4)
    tensor([-0.6931])
    """

    family = Family("Multinomial", pd.Multinomial, ("probs",), alternatives=_PROBS,
                    param_checks=UNNORMALISED_PROBS,
                    static={"total_count": 1})

    def __init__(self, total_count: int = 1, var: Names = ("x",), cond_var: Names = (),
                 name: str = "p", features_shape: Shape = torch.Size(), probs: Param = None,
                 logits: Param = None, **kwargs: Any) -> None:
        super().__init__(var, cond_var, name, features_shape, probs=probs, logits=logits,
                         total_count=int(total_count), **kwargs)


FAMILIES = (Normal, Bernoulli, RelaxedBernoulli, FactorizedBernoulli, Categorical,
            RelaxedCategorical, Multinomial, Dirichlet, Beta, Laplace, Gamma)
