"""Shape helpers shared by the flows.

Shapes follow Pyro: a flow's input is ``batch_shape + features``, where ``features`` has
``event_dim`` dimensions, and its log-determinant has shape ``batch_shape``. Pixyz's own
convention, one batch dimension in front, is the case ``batch_shape == (batch,)``.
"""

from typing import Optional, Set, Tuple

import torch
from pyro.distributions.transforms import Transform


def sum_rightmost(value: torch.Tensor, dims: int) -> torch.Tensor:
    """Sum the rightmost ``dims`` dimensions of ``value`` (none if ``dims <= 0``)."""
    if dims <= 0:
        return value
    return value.reshape(value.shape[: value.dim() - dims] + (-1,)).sum(-1)


def batch_shape(x: torch.Tensor, event_dim: int) -> Tuple[int, ...]:
    """The shape left of the ``event_dim`` feature dimensions of ``x``."""
    return tuple(x.shape[: x.dim() - event_dim])


def to_batch_shape(logdet, x: torch.Tensor, event_dim: int) -> torch.Tensor:
    """Broadcast a log-determinant to one value per sample: shape ``batch_shape(x)``."""
    shape = batch_shape(x, event_dim)
    if not torch.is_tensor(logdet):
        logdet = x.new_tensor(logdet)
    if tuple(logdet.shape) != shape:
        logdet = logdet.expand(shape).contiguous()
    return logdet


def check_event_dims(who: str, x: torch.Tensor, event_dim: int, role: str = "input") -> None:
    """Raise a ValueError in the user's terms when ``x`` has fewer dims than the features."""
    if x.dim() < event_dim:
        raise ValueError(
            f"{who} expects its {role} to have shape batch_shape + features with "
            f"{event_dim} feature dims, got shape {tuple(x.shape)}"
        )


def clear_cache(t: Transform, _seen: Optional[Set[int]] = None) -> None:
    """Forget the ``(x, y)`` pairs cached by ``t`` and by the transforms inside it.

    A Pyro transform with ``cache_size=1`` answers a call on the tensor object it saw last
    from its cache, computed with the parameters of that time and with a graph that
    ``backward`` may have freed. Flows clear it before each call, so that they always compute
    anew (a training loop on one fixed batch is the common case).
    """
    seen = set() if _seen is None else _seen
    if id(t) in seen:
        return
    seen.add(id(t))
    if getattr(t, "_cache_size", 0) == 1:
        t._cached_x_y = None, None
    inner = [getattr(t, "base_transform", None), getattr(t, "_inv", None)]
    for part in inner + list(getattr(t, "parts", ())):
        if isinstance(part, Transform):  # _inv links a transform and its inverse both ways
            clear_cache(part, seen)
