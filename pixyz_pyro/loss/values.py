"""Leaves that are not densities: constants, named parameters, fixed inputs."""
import numbers
from typing import Dict, List, Tuple, Union

import torch

from ..errors import ShapeError
from .base import Loss


class ValueLoss(Loss):
    """A constant in a loss expression: ``loss + 2`` wraps the 2 as one.  It prints as
    given and evaluates to a tensor: a number becomes a zero-dimensional float tensor (as in
    Pixyz), which broadcasts on any device.

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
    >>> print(ValueLoss(2))
    2
    >>> ValueLoss(2).eval()
    tensor(2.)
    >>> print(ValueLoss(2.0) * 3)
    6.0
    """

    def __init__(self, value: Union[float, torch.Tensor]) -> None:
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
    """``loss.constant_var({"y": value})``: the loss with some inputs fixed.  Values are
    passed as given (a number stays a number, as in Pixyz).

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
        self.constants = dict(constant_dict)
        self._freeze()

    @property
    def children(self) -> Tuple[Loss, ...]:
        return (self.base,)

    @property
    def _input_var(self) -> List[str]:
        return [v for v in self.base.input_var if v not in self.constants]
