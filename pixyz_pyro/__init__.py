"""pixyz_pyro: deep generative models written like the papers, running on Pyro.

Three layers, as in Pixyz: distributions (:mod:`pixyz_pyro.dist`), losses
(:mod:`pixyz_pyro.loss`) and models (:mod:`pixyz_pyro.model`); the Pyro side lives in
:mod:`pixyz_pyro.infer`.  ``import pixyz_pyro`` does not import sympy.
"""
from . import dist, loss, utils
from .dist.validation import (
    SupportWarning,
    UnbatchedValueWarning,
    get_validation,
    set_validation,
    validation,
)

__version__ = "0.1.0"

__all__ = ["dist", "loss", "utils", "__version__", "set_validation", "get_validation",
           "validation", "SupportWarning", "UnbatchedValueWarning"]
