"""Network layers used by Pixyz's flows (Pixyz's ``pixyz.layers``)."""

from .resnet import ResNet

__all__ = ["ResNet"]
