"""Pyro transforms written for Pixyz's flows, where ``pyro.distributions.transforms`` has no
equivalent. Each one is a ``torch.distributions.Transform`` (a ``TransformModule`` when it has
parameters), usable in any Pyro ``TransformedDistribution``."""

from .actnorm import ActNorm
from .channel_batchnorm import ChannelBatchNorm
from .conditional_view import ConditionalView
from .dense_channel_conv import DenseChannelConv
from .flow_transform import FlowTransform
from .masked_affine_coupling import (
    ConditionedMaskedAffineCoupling,
    MaskedAffineCoupling,
    channel_wise_mask,
    checkerboard_mask,
)
from .space_to_depth import SpaceToDepth
from .unconstrained_planar import UnconstrainedPlanar

__all__ = [
    "ActNorm",
    "ChannelBatchNorm",
    "ConditionalView",
    "ConditionedMaskedAffineCoupling",
    "DenseChannelConv",
    "FlowTransform",
    "MaskedAffineCoupling",
    "SpaceToDepth",
    "UnconstrainedPlanar",
    "channel_wise_mask",
    "checkerboard_mask",
]
