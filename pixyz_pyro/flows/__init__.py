"""Normalizing flows with Pixyz 0.3.3's names and semantics, on Pyro transforms.

Every flow is an ``nn.Module`` with ``forward(x, y=None, compute_jacobian=True)``,
``inverse(z, y=None)`` and ``logdet_jacobian`` (one value per sample), and exposes a Pyro
transform as ``.transform``. ``Flow.from_pyro`` / :class:`PyroFlow` turn any Pyro transform
into a flow. The Pyro transforms written for these flows live in
:mod:`pixyz_pyro.flows.transforms`.
"""

from .actnorm import ActNorm2d
from .autoregressive import IAF, MAF, AffineAutoregressiveFlow
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import ChannelConv
from .coupling import AffineCoupling
from .flatten import Flatten
from .flow import Flow
from .flow_list import FlowList
from .permutation import Permutation, Reverse, Shuffle
from .planar import PlanarFlow
from .preprocess import Preprocess
from .pyro_flow import PyroFlow
from .squeeze import Squeeze, Unsqueeze

__all__ = [
    "Flow",
    "FlowList",
    "PlanarFlow",
    "AffineCoupling",
    "ChannelConv",
    "Squeeze",
    "Unsqueeze",
    "Permutation",
    "Shuffle",
    "Reverse",
    "Flatten",
    "Preprocess",
    "BatchNorm1d",
    "BatchNorm2d",
    "ActNorm2d",
    "PyroFlow",
    "AffineAutoregressiveFlow",
    "MAF",
    "IAF",
]
