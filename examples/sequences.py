"""Image sequences built from real Fashion-MNIST (or MNIST) items, for the sequence examples.

Sequences are time-major, ``(T, N, side * side)``, as :class:`pixyz_pyro.loss.IterativeLoss`
slices dimension 0.  Grey levels stay in ``[0, 1]``.

* :func:`bouncing_items`: an item moves on a larger canvas with a constant velocity and
  bounces off the walls (the deep Markov model example);
* :func:`rolling_items`: an item rolls circularly left or right by one pixel per frame
  (the TD-VAE example, after the moving-MNIST toy of Gregor et al., 2019).

>>> x = torch.rand(3, 784)
>>> bouncing_items(x, steps=5, canvas=20, side=14).shape
torch.Size([5, 3, 400])
>>> rolling_items(x, steps=4, side=14).shape
torch.Size([4, 3, 196])
"""
from typing import Optional

import torch
from torch.nn import functional as F


def downsample(images: torch.Tensor, side: int) -> torch.Tensor:
    """``(N, 784)`` images as ``(N, side, side)`` (area interpolation)."""
    x = images.reshape(-1, 1, 28, 28)
    if side != 28:
        x = F.interpolate(x, size=(side, side), mode="area")
    return x[:, 0]


def bouncing_items(images: torch.Tensor, steps: int = 12, canvas: int = 20, side: int = 14,
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Each item, shrunk to ``side`` pixels, moves on a ``canvas`` x ``canvas`` frame.

    The start corner is uniform, each velocity component is one of ``-2, -1, 1, 2``
    pixels per frame, and a coordinate that would leave the canvas reflects off the wall.

    Returns
    -------
    torch.Tensor
        ``(steps, N, canvas * canvas)``.
    """
    items = downsample(images, side)
    n, room = len(items), canvas - side
    pos = torch.randint(0, room + 1, (n, 2), generator=generator)
    speeds = torch.tensor([-2, -1, 1, 2])
    vel = speeds[torch.randint(0, 4, (n, 2), generator=generator)]
    frames = torch.zeros(steps, n, canvas, canvas)
    rows = torch.arange(n)
    for t in range(steps):
        for i in range(side):  # paste row i of every item at its own position
            r = pos[:, 0] + i
            cols = pos[:, 1:2] + torch.arange(side)
            frames[t, rows.unsqueeze(1), r.unsqueeze(1), cols] = items[:, i]
        pos = pos + vel
        over, under = pos > room, pos < 0
        pos = torch.where(over, 2 * room - pos, torch.where(under, -pos, pos))
        vel = torch.where(over | under, -vel, vel)
    return frames.reshape(steps, n, canvas * canvas)


def rolling_items(images: torch.Tensor, steps: int = 16, side: int = 14,
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Each item, shrunk to ``side`` pixels, rolls circularly left or right (at random,
    one pixel per frame) from a random starting shift.

    Returns
    -------
    torch.Tensor
        ``(steps, N, side * side)``.
    """
    items = downsample(images, side)
    n = len(items)
    direction = torch.randint(0, 2, (n,), generator=generator) * 2 - 1
    start = torch.randint(0, side, (n,), generator=generator)
    cols = torch.arange(side)
    frames = []
    for t in range(steps):
        shift = (start + direction * t).unsqueeze(1)
        idx = (cols.unsqueeze(0) - shift) % side  # (N, side): source column of each column
        frames.append(items.gather(2, idx.unsqueeze(1).expand(n, side, side)))
    return torch.stack(frames).reshape(steps, n, side * side)
