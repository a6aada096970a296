"""Image sequences built from real Fashion-MNIST (or MNIST) items, for the sequence examples.

Sequences are time-major, ``(T, N, side * side)``, as :class:`pixyz_pyro.loss.IterativeLoss`
slices dimension 0.  Grey levels stay in ``[0, 1]``.

* :func:`bouncing_items`: an item moves on a larger canvas with a constant velocity and
  bounces off the walls (the deep Markov model example);
* :func:`sliding_items`: an item slides left or right along a strip, one pixel per frame,
  and bounces off its ends (the TD-VAE example, after the moving-MNIST toy of Gregor et
  al., 2019).

>>> x = torch.rand(3, 784)
>>> bouncing_items(x, steps=5, canvas=20, side=14).shape
torch.Size([5, 3, 400])
>>> sliding_items(x, steps=4, width=24, side=12).shape
torch.Size([4, 3, 288])
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


def sliding_items(images: torch.Tensor, steps: int = 12, width: int = 24, side: int = 12,
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Each item, shrunk to ``side`` pixels, slides left or right (at random) by one pixel
    per frame along a ``side`` x ``width`` strip from a random start, and bounces off its
    ends.

    Returns
    -------
    torch.Tensor
        ``(steps, N, side * width)``.
    """
    items = downsample(images, side)
    n, room = len(items), width - side
    pos = torch.randint(0, room + 1, (n,), generator=generator)
    vel = torch.randint(0, 2, (n,), generator=generator) * 2 - 1
    frames = torch.zeros(steps, n, side, width)
    rows = torch.arange(n).unsqueeze(1)
    for t in range(steps):
        frames[t, rows, :, pos.unsqueeze(1) + torch.arange(side)] = items.transpose(1, 2)
        pos = pos + vel
        bounce = (pos > room) | (pos < 0)
        pos = torch.where(bounce, pos - 2 * vel, pos)
        vel = torch.where(bounce, -vel, vel)
    return frames.reshape(steps, n, side * width)
