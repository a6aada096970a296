"""Figure helpers for the examples: image grids, loss curves and 2-D scatter plots.

Every helper builds a :class:`matplotlib.figure.Figure` directly and renders it with the Agg
canvas, so nothing touches pyplot's global state or the process-wide backend, no window
opens, and the helpers are safe on headless machines and from several threads. Each one
creates the parent directory of ``path``, writes the file (format from the extension, e.g.
``.png`` or ``.pdf``) and returns the path.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["image_grid", "save_image_grid", "save_loss_curve", "save_scatter"]

PathLike = Union[str, "os.PathLike[str]"]
ArrayLike = Union[torch.Tensor, np.ndarray, Sequence[float]]


def _numpy(values: ArrayLike) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().to("cpu", torch.float32).numpy()
    return np.asarray(values, dtype=np.float32)


def save_figure(fig: Figure, path: PathLike, dpi: int = 100) -> Path:
    """Render ``fig`` with the Agg backend (no display needed) and write it to ``path``,
    creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi)
    return path


def image_grid(
    images: ArrayLike, nrow: int = 8, padding: int = 2, side: Optional[int] = None
) -> np.ndarray:
    """Tile grey-level images into one array, like ``torchvision.utils.make_grid``.

    Parameters
    ----------
    images : torch.Tensor or numpy.ndarray
        ``(N, H*W)`` flat square images, ``(N, H, W)`` or ``(N, 1, H, W)``; values in
        ``[0, 1]`` (clipped).
    nrow : int
        Images per row.
    padding : int
        Pixels of background (0) between and around images.
    side : int, optional
        Image side for flat input; default ``sqrt(H*W)`` (28 for 784).

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(rows * (H + padding) + padding, nrow * (W + padding) +
        padding)``.
    """
    arr = _numpy(images)
    if arr.ndim == 2:
        side = side or math.isqrt(arr.shape[1])
        if side * side != arr.shape[1]:
            raise ValueError(f"flat images of {arr.shape[1]} pixels are not square; pass side=")
        arr = arr.reshape(len(arr), side, arr.shape[1] // side)
    elif arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    elif arr.ndim != 3:
        raise ValueError(
            f"images must be (N, H*W), (N, H, W) or (N, 1, H, W); got shape {arr.shape}"
        )
    n, h, w = arr.shape
    if n == 0:
        raise ValueError("no images to plot")
    ncol = min(nrow, n)
    rows = -(-n // ncol)
    grid = np.zeros((rows * (h + padding) + padding, ncol * (w + padding) + padding), np.float32)
    for i, img in enumerate(np.clip(arr, 0.0, 1.0)):
        r, c = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[top : top + h, left : left + w] = img
    return grid


def save_image_grid(
    images: ArrayLike,
    path: PathLike,
    nrow: int = 8,
    title: Optional[str] = None,
    scale: float = 0.5,
    dpi: int = 100,
) -> Path:
    """Save a grid of grey-level images (e.g. samples or reconstructions) to ``path``.

    Parameters
    ----------
    images : torch.Tensor or numpy.ndarray
        ``(N, 784)`` or ``(N, 1, 28, 28)`` (any square size), values in ``[0, 1]``.
    path : str or os.PathLike
        Output file.
    nrow : int
        Images per row.
    title : str, optional
        Figure title.
    scale : float
        Inches per image.
    dpi : int
        Resolution.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    grid = image_grid(images, nrow=nrow)
    n_images = len(images)
    ncol = min(nrow, n_images)
    rows = -(-n_images // ncol)
    fig = Figure(figsize=(max(1.0, ncol * scale), max(1.0, rows * scale) + (0.3 if title else 0)))
    ax = fig.add_axes((0, 0, 1, 1 if not title else 1 - 0.3 / fig.get_figheight()))
    ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9, y=0.995, va="top")
    return save_figure(fig, path, dpi)


def save_loss_curve(
    curves: Mapping[str, Sequence[float]],
    path: PathLike,
    ylabel: str = "loss",
    xlabel: str = "epoch",
    title: Optional[str] = None,
    logy: bool = False,
    dpi: int = 100,
) -> Path:
    """Save one line per named series, e.g. ``{"train": [...], "test": [...]}`` per epoch.

    Parameters
    ----------
    curves : mapping of str to sequence of float
        Series name to values; value ``i`` is plotted at x = ``i + 1`` (epochs count from 1).
    path : str or os.PathLike
        Output file.
    ylabel, xlabel : str
        Axis labels (e.g. ``"negative ELBO (nats/image)"``).
    title : str, optional
        Axes title.
    logy : bool
        Logarithmic y axis.
    dpi : int
        Resolution.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    for name, values in curves.items():
        values = _numpy(values).reshape(-1)
        xs = np.arange(1, len(values) + 1)
        ax.plot(xs, values, marker="o" if len(values) <= 30 else None, ms=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend()
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def save_scatter(
    points: ArrayLike,
    path: PathLike,
    labels: Optional[ArrayLike] = None,
    class_names: Optional[Sequence[str]] = None,
    title: Optional[str] = None,
    xlabel: str = "$z_1$",
    ylabel: str = "$z_2$",
    size: float = 3.0,
    dpi: int = 100,
) -> Path:
    """Save a 2-D scatter plot, coloured by integer label (e.g. latent means per class).

    Parameters
    ----------
    points : torch.Tensor or numpy.ndarray
        Shape ``(N, 2)`` (extra columns are ignored).
    path : str or os.PathLike
        Output file.
    labels : torch.Tensor or numpy.ndarray, optional
        Integer labels, shape ``(N,)``; one colour per label with a legend.
    class_names : sequence of str, optional
        Legend text per label (e.g. :data:`examples.data.CLASS_NAMES`).
    title : str, optional
        Axes title.
    xlabel, ylabel : str
        Axis labels.
    size : float
        Marker size.
    dpi : int
        Resolution.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    pts = _numpy(points)
    if pts.ndim != 2 or pts.shape[1] < 2:
        raise ValueError(f"points must have shape (N, 2); got {pts.shape}")
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    if labels is None:
        ax.scatter(pts[:, 0], pts[:, 1], s=size, alpha=0.6)
    else:
        lab = _numpy(labels).astype(np.int64).reshape(-1)
        if len(lab) != len(pts):
            raise ValueError(f"{len(pts)} points but {len(lab)} labels")
        cmap = _colormap(len(np.unique(lab)))
        for i, k in enumerate(np.unique(lab)):
            mask = lab == k
            name = class_names[k] if class_names is not None and k < len(class_names) else k
            ax.scatter(pts[mask, 0], pts[mask, 1], s=size, alpha=0.6, color=cmap(i), label=name)
        ax.legend(markerscale=3, fontsize=7, loc="best")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def _colormap(n: int):
    from matplotlib import colormaps

    return colormaps["tab10" if n <= 10 else "tab20"]
