"""The Model API: ``Model``, the presets ``VAE``, ``VI``, ``ML`` and ``GAN``, and ``fit``."""
from .fit import EarlyStopping, History, fit
from .model import Model
from .optim import OptimizerError, build_optimizer
from .presets import GAN, ML, VAE, VI

__all__ = ["Model", "VAE", "VI", "ML", "GAN", "build_optimizer", "OptimizerError",
           "fit", "History", "EarlyStopping"]
