"""Leaves that are not densities: constants, named parameters, fixed inputs."""
from typing import Dict, List, Tuple, Union

import torch

from ..errors import ShapeError
from .base import Loss


class ValueLoss(Loss):
    """A constant.

    >>> ValueLoss(2.0).eval()
    2.0
    """

    def __init__(self, value: Union[float, torch.Tensor]) -> None:
        if isinstance(value, torch.Tensor) and value.dim() > 1:
            raise ShapeError(f"a tensor added to a loss must be a scalar or have one value "
                             f"per batch element, shape (batch,); got shape "
                             f"{tuple(value.shape)} (reduce or flatten it first)")
        self.value = value
        self._freeze()

    @property
    def _input_var(self) -> List[str]:
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
    def _input_var(self) -> List[str]:
        return [self.name]


class ConstantVar(Loss):
    """``loss.constant_var({"x": value})``: the loss with some inputs fixed."""

    def __init__(self, base_loss: Loss, constant_dict: Dict[str, object]):
        self.base = base_loss
        self.constants = {k: (v if not isinstance(v, (int, float)) else torch.tensor(float(v)))
                          for k, v in constant_dict.items()}
        self._freeze()

    @property
    def children(self) -> Tuple[Loss, ...]:
        return (self.base,)

    @property
    def _input_var(self) -> List[str]:
        return [v for v in self.base.input_var if v not in self.constants]
