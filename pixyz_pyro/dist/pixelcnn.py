"""A small PixelCNN (van den Oord et al. 2016): an autoregressive categorical distribution
over an image, with masked convolutions.

.. math::

    p(x|y) = \\prod_{i=1}^{H W} \\mathrm{Cat}\\left(x_i \\,\\middle|\\,
    \\mathrm{softmax}(f_i(x_{<i}, y))\\right)

in raster order (row by row, left to right).  The first convolution's mask (type "A")
hides the centre pixel and every pixel after it; the later ones (type "B") let a unit see
its own position, which by then only carries the pixels before it.  So ``log_prob`` is
exact and takes one pass of the network; ``sample`` takes ``H W`` passes, one per pixel,
through the same modules.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ShapeError
from .distribution import Distribution
from .shapes import SHAPES, shape_str


class MaskedConv2d(nn.Conv2d):
    """A 2-d convolution (``same`` padding, odd kernel) whose kernel is multiplied by a
    raster-order mask: type ``"A"`` hides the centre and what follows it, type ``"B"`` only
    what follows the centre."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 mask_type: str):
        if mask_type not in ("A", "B") or kernel_size % 2 == 0:
            raise ValueError(f"MaskedConv2d: mask_type is 'A' or 'B' and kernel_size is odd; "
                             f"got {mask_type!r}, {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        c = kernel_size // 2
        mask = torch.ones(kernel_size, kernel_size)
        mask[c, c + (mask_type == "B"):] = 0
        mask[c + 1:] = 0
        self.mask: torch.Tensor
        self.register_buffer("mask", mask.expand_as(self.weight).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class PixelCNNNet(nn.Module):
    """Logits ``(batch, K, H, W)`` from the one-hot image ``(batch, K, H, W)``: a type-A
    masked convolution, ``layers`` residual type-B ones, a 1x1 output; a conditioning
    vector ``y`` adds a learnt bias to every channel of the first layer."""

    def __init__(self, categories: int, channels: int, layers: int, kernel_size: int,
                 cond_dim: int = 0):
        super().__init__()
        self.first = MaskedConv2d(categories, channels, kernel_size, "A")
        self.hidden = nn.ModuleList([MaskedConv2d(channels, channels, 3, "B")
                                     for _ in range(layers)])
        self.out = nn.Conv2d(channels, categories, 1)
        self.cond = nn.Linear(cond_dim, channels) if cond_dim else None

    def forward(self, code: torch.Tensor, y=None) -> torch.Tensor:
        h = self.first(code)
        if self.cond is not None:
            h = h + self.cond(y)[:, :, None, None]
        h = torch.relu(h)
        for layer in self.hidden:
            h = h + torch.relu(layer(h))
        return self.out(h)


class PixelCNN(Distribution):
    """:math:`p(x|y) = \\prod_i \\mathrm{Cat}(x_i | \\mathrm{softmax}(f_i(x_{<i}, y)))` over
    an ``H x W`` image with ``K`` levels per pixel, raster order, masked convolutions.

    .. math::

        \\log p(x|y) = \\sum_{i=1}^{HW} \\log \\mathrm{softmax}(f_i(x_{<i}, y))_{x_i}

    Values are the levels ``0..K-1`` (``K = 2``: a binary image), shape ``(batch, H, W)``,
    or ``(batch, H * W)`` with ``flatten=True`` (the flat images of an MLP VAE); any
    dtype, samples come as floats of the default dtype.

    Parameters
    ----------
    height, width : int
        The image size.
    num_categories : int
        ``K``, the levels per pixel.
    channels, layers, kernel_size : int
        The network: channels of every layer, residual type-B layers after the type-A
        one, and the type-A kernel size (odd).
    var, cond_var, name
        As for every distribution; at most one conditioning variable, a vector of
        ``cond_dim`` features (the latent ``z`` of a VAE decoder).
    cond_dim : int
        Features of the conditioning variable.
    flatten : bool
        Values are ``(batch, H * W)``.

    Examples
    --------
    >>> import itertools
    >>> _ = torch.manual_seed(0)
    >>> p = PixelCNN(2, 3, num_categories=2, channels=8, layers=1, kernel_size=3)
    >>> p.sample(batch_n=5)["x"].shape
    torch.Size([5, 2, 3])
    >>> grid = torch.tensor(list(itertools.product(range(2), repeat=6))).reshape(64, 2, 3)
    >>> with torch.no_grad():
    ...     lp = p.get_log_prob({"x": grid})
    >>> round(float(lp.exp().sum()), 4)  # normalised exactly over the 64 images
    1.0
    """

    def __init__(self, height: int, width: int, num_categories: int = 2, channels: int = 32,
                 layers: int = 3, kernel_size: int = 5, var=("x",), cond_var=(),
                 name: str = "p", cond_dim: int = 0, flatten: bool = False):
        shape = [height * width] if flatten else [height, width]
        super().__init__(var, cond_var, name, torch.Size(shape))
        if len(self._var) != 1 or len(self._cond_var) > 1:
            raise ShapeError(f"{self.prob_text}: a PixelCNN defines one variable and takes "
                             f"at most one conditioning variable")
        if bool(self._cond_var) != bool(cond_dim):
            raise ShapeError(f"{self.prob_text}: give cond_dim (the features of "
                             f"{self._cond_var or 'the conditioning variable'}) exactly when "
                             f"there is a conditioning variable")
        if isinstance(num_categories, bool) or not isinstance(num_categories, int) or \
                num_categories < 2:
            raise ShapeError(f"{self.prob_text}: num_categories must be an integer >= 2, "
                             f"got {num_categories!r}")
        self.height, self.width, self.flatten = height, width, flatten
        self.num_categories = num_categories
        self.net = PixelCNNNet(num_categories, channels, layers, kernel_size, cond_dim)

    @property
    def distribution_name(self) -> str:
        return "PixelCNN"

    def _cond(self, values):
        return values[self._cond_var[0]] if self._cond_var else None

    def _image(self, x: torch.Tensor, what: str) -> torch.Tensor:
        """``x`` as ``(batch, H, W)``, its shape checked."""
        want = (self.height * self.width,) if self.flatten else (self.height, self.width)
        if not isinstance(x, torch.Tensor) or x.dim() != len(want) + 1 or \
                tuple(x.shape[1:]) != want:
            got = shape_str(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ShapeError(f'{self.prob_text}: "{what}" must have shape (batch, '
                             f"{', '.join(map(str, want))}), got {got} ({SHAPES})")
        return x.reshape(x.shape[0], self.height, self.width)

    def logits(self, image: torch.Tensor, y=None) -> torch.Tensor:
        """``(batch, K, H, W)`` logits of every pixel's conditional, in one pass, from an
        image ``(batch, H, W)`` of levels."""
        code = F.one_hot(image.long(), self.num_categories).permute(0, 3, 1, 2)
        return self.net(code.to(self.net.out.weight.dtype), y)

    def _log_prob_values(self, values, ctx, sum_features=True, feature_dims=None):
        self._require(values, self._var + self._cond_var, "log_prob")
        x = values[self._var[0]]
        image = self._image(x, self._var[0])
        logp = torch.log_softmax(self.logits(image, self._cond(values)), 1)
        lp = logp.gather(1, image.long()[:, None])[:, 0].reshape(x.shape)
        if not sum_features:
            return lp
        if feature_dims is not None:
            return lp.sum(dim=feature_dims)
        return lp.reshape(x.shape[0], -1).sum(-1)

    def _sample_values(self, values, ctx, reparam, batch_n):
        """``H W`` passes of the network: pass ``i`` fixes pixel ``i`` (a new tensor per
        pass, so nothing is written in place)."""
        self._require(values, self._cond_var, "sampling")
        y = self._cond(values)
        rows = y.shape[0] if y is not None else (batch_n or 1)
        ref = self.net.out.weight
        image = torch.zeros(rows, self.height, self.width, dtype=ref.dtype, device=ref.device)
        index = torch.arange(self.height * self.width, device=ref.device).reshape(
            self.height, self.width)
        with torch.no_grad():
            for i in range(self.height * self.width):
                r, c = divmod(i, self.width)
                probs = torch.softmax(self.logits(image, y)[:, :, r, c], -1)
                draw = torch.multinomial(probs, 1).to(image.dtype)[:, :, None]
                image = torch.where(index == i, draw, image)
        shape = (rows, self.height * self.width) if self.flatten else image.shape
        return {self._var[0]: image.reshape(shape)}
