"""The Distribution API: distributions are ``nn.Module`` s that hide their networks.

Shapes follow :mod:`pixyz_pyro.dist.shapes`:
``sample_shape + batch_shape + features_shape``.
"""
from .distribution import Distribution
from .distribution_base import DistributionBase
from .factor import FactorDistribution
from .families import (
    FAMILIES,
    Bernoulli,
    Beta,
    Categorical,
    Dirichlet,
    FactorizedBernoulli,
    Gamma,
    Laplace,
    Multinomial,
    Normal,
    RelaxedBernoulli,
    RelaxedCategorical,
    lift,
)
from .family import Family
from .graph_view import DistGraph
from .joint import MarginalizeVarDistribution, MultiplyDistribution, ReplaceVarDistribution

__all__ = [
    "Distribution", "DistributionBase", "DistGraph", "FactorDistribution", "Family", "lift",
    "FAMILIES",
    "Normal", "Bernoulli", "RelaxedBernoulli", "FactorizedBernoulli", "Categorical",
    "RelaxedCategorical", "Multinomial", "Dirichlet", "Beta", "Laplace", "Gamma",
    "MultiplyDistribution", "ReplaceVarDistribution", "MarginalizeVarDistribution",
]
from .special import (  # noqa: E402
    CustomProb,
    DataDistribution,
    Deterministic,
    EmpiricalDistribution,
)

__all__ += ["Deterministic", "EmpiricalDistribution", "CustomProb", "DataDistribution"]
from .transformed import InverseTransformedDistribution, TransformedDistribution  # noqa: E402

__all__ += ["TransformedDistribution", "InverseTransformedDistribution"]
from .mixture import MixtureModel, PosteriorMixtureModel  # noqa: E402
from .moe import MixtureOfNormal  # noqa: E402

__all__ += ["MixtureModel", "PosteriorMixtureModel", "MixtureOfNormal"]
from .poe import ElementWiseProductOfNormal, ProductOfNormal  # noqa: E402

__all__ += ["ProductOfNormal", "ElementWiseProductOfNormal"]
from .autoregressive import AutoregressiveBernoulli, AutoregressiveCategorical  # noqa: E402
from .pixelcnn import PixelCNN  # noqa: E402

__all__ += ["AutoregressiveBernoulli", "AutoregressiveCategorical", "PixelCNN"]
