"""The Loss API: objectives written like the paper's equation.

>>> from pixyz_pyro.dist import Normal
>>> q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
>>> prior = Normal(loc=0., scale=1., var=["z"], name="p_{prior}")
>>> p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"])
>>> loss = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean()
>>> print(loss)  # doctest: +NORMALIZE_WHITESPACE
mean \\left(D_{KL} \\left[q(z|x)||p_{prior}(z) \\right]
- \\mathbb{E}_{q(z|x)} \\left[\\log p(x|z) \\right] \\right)
"""
from .adversarial import (
    AdversarialJensenShannon,
    AdversarialKullbackLeibler,
    AdversarialWassersteinDistance,
)
from .base import Loss
from .bounds import IWAE, VRBound
from .data_parallel import DataParalleledLoss
from .divergences import KullbackLeibler
from .elbo import ELBO
from .entropy import CrossEntropy, Entropy
from .expectation import REINFORCE, Expectation, LossExpectation
from .iterative import IterativeLoss
from .mmd import MMD
from .ops import MaxLoss, MinLoss
from .pdf import NLL, LogProb, Prob
from .values import ConstantVar, Parameter, ValueLoss
from .wasserstein import WassersteinDistance

__all__ = [
    "Loss", "Parameter", "ValueLoss", "ConstantVar", "MinLoss", "MaxLoss", "Entropy",
    "CrossEntropy", "Expectation", "LossExpectation", "REINFORCE", "KullbackLeibler",
    "LogProb", "Prob", "NLL", "ELBO", "AdversarialJensenShannon",
    "AdversarialKullbackLeibler", "AdversarialWassersteinDistance", "IterativeLoss", "MMD",
    "WassersteinDistance", "DataParalleledLoss", "IWAE", "VRBound",
]
