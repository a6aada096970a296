"""Leaves that are not densities: constants, named parameters, fixed inputs."""
from typing import Dict, List, Tuple, Union

import torch

from ..errors import ShapeError
from .base import Loss


class ValueLoss(Loss):
    """A constant in a loss expression: ``loss + 2`` wraps the 2 as one.

    Parameters
    ----------
    value : float or tensor
        A number, a scalar tensor, or one value per batch element (shape ``(batch,)``).

    Raises
    ------
    ShapeError
        If ``value`` has more than one dimension.

    Examples
    --------
    >>> ValueLoss(2.0).eval()
    2.0
    >>> print(ValueLoss(2.0) * 3)
    6.0
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

    Parameters
    ----------
    input_var : str
        The name of the value in the input dict.

    Raises
    ------
    TypeError
        If ``input_var`` is not a string.

    Examples
    --------
    >>> Parameter("beta").eval({"beta": 0.5})
    0.5
    >>> print(Parameter("beta") * 2)
    2 \\beta
    """

    def __init__(self, input_var: str) -> None:
        if not isinstance(input_var, str):
            raise TypeError(f"Parameter takes a variable name, got {input_var!r}")
        self.name = input_var
        self._freeze()

    @property
    def _input_var(self) -> List[str]:
        return [self.name]


class ConstantVar(Loss):
    """``loss.constant_var({"y": value})``: the loss with some inputs fixed.

    Parameters
    ----------
    base_loss : Loss
        The loss.
    constant_dict : dict
        ``{name: value}`` of the inputs to fix; they leave :attr:`input_var`.

    Examples
    --------
    >>> import torch
    >>> from pixyz_pyro.dist import Normal
    >>> from pixyz_pyro.loss import LogProb
    >>> p = Normal(loc="y", scale=1., var=["x"], cond_var=["y"])
    >>> loss = ConstantVar(LogProb(p), {"y": torch.tensor([1.])})
    >>> loss.input_var
    ['x']
    >>> loss.eval({"x": torch.zeros(1)})  # log N(0; 1, 1)
    tensor([-1.4189])
    """

    def __init__(self, base_loss: Loss, constant_dict: Dict[str, object]) -> None:
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
