"""The Pyro side: joints as Pyro programs, losses as SVI losses, Pyro code as
distributions.  This is the only package that uses ``pyro.sample``, ``plate``,
``poutine`` and ``pyro.infer``."""
from .elbo import pyro_elbo
from .enumeration import EnumeratedDistribution, enumerated
from .from_pyro import PyroFunctionDistribution, from_pyro
from .program import PyroProgram, to_pyro
from .renyi import RenyiObjective, renyi_objective
from .svi_loss import SVILoss, as_svi_loss

__all__ = ["to_pyro", "PyroProgram", "SVILoss", "as_svi_loss", "from_pyro",
           "PyroFunctionDistribution", "pyro_elbo", "enumerated", "EnumeratedDistribution",
           "renyi_objective", "RenyiObjective"]
