"""Leaves that are not densities: constants, named parameters, fixed inputs."""
import numbers
from typing import Dict

import torch

from ..errors import ShapeError
from .base import Loss


class ValueLoss(Loss):
    """A constant.  It prints as given and evaluates to a tensor: a number becomes a
    zero-dimensional float tensor (as in Pixyz), which broadcasts on any device.

    >>> print(ValueLoss(2))
    2
    >>> ValueLoss(2).eval()
    tensor(2.)
    """

    def __init__(self, value):
        if isinstance(value, torch.Tensor) and value.dim() > 1:
            raise ShapeError(f"a tensor added to a loss must be a scalar or have one value "
                             f"per batch element, shape (batch,); got shape "
                             f"{tuple(value.shape)} (reduce or flatten it first)")
        self.value = value
        #: What the loss evaluates to.
        self.tensor = torch.tensor(float(value)) if isinstance(value, numbers.Real) \
            and not isinstance(value, bool) else value
        self._freeze()

    @property
    def _input_var(self):
        return []


class Parameter(Loss):
    """A value read from the input dict by name, such as a KL weight :math:`\\beta`.

    >>> Parameter("beta").eval({"beta": 0.5})
    0.5
    """

    def __init__(self, input_var: str):
        if not isinstance(input_var, str):
            raise TypeError(f"Parameter takes a variable name, got {input_var!r}")
        self.name = input_var
        self._freeze()

    @property
    def _input_var(self):
        return [self.name]


class ConstantVar(Loss):
    """``loss.constant_var({"x": value})``: the loss with some inputs fixed.  Values are
    passed as given (a number stays a number, as in Pixyz).

    >>> Parameter("x").constant_var({"x": 1}).eval()
    1
    """

    def __init__(self, base_loss: Loss, constant_dict: Dict[str, object]):
        self.base = base_loss
        self.constants = dict(constant_dict)
        self._freeze()

    @property
    def children(self):
        return (self.base,)

    @property
    def _input_var(self):
        return [v for v in self.base.input_var if v not in self.constants]
