"""``ResNet``: the weight-normalised residual network of Real NVP's scale and shift."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def wn_conv2d(in_channels: int, out_channels: int, kernel_size: int, padding: int,
              bias: bool = True) -> nn.Conv2d:
    """A weight-normalised 2-d convolution (``torch.nn.utils.parametrizations.weight_norm``)."""
    return weight_norm(nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding,
                                 bias=bias))


class ResidualBlock(nn.Module):
    r"""Pre-activation residual block: :math:`x + W_2\,\mathrm{relu}(\mathrm{BN}(W_1\,
    \mathrm{relu}(\mathrm{BN}(x))))` with 3x3 weight-normalised convolutions."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_norm = nn.BatchNorm2d(in_channels)
        self.in_conv = wn_conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.out_norm = nn.BatchNorm2d(out_channels)
        self.out_conv = wn_conv2d(out_channels, out_channels, 3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.in_conv(F.relu(self.in_norm(x)))
        h = self.out_conv(F.relu(self.out_norm(h)))
        return x + h


class ResNet(nn.Module):
    r"""ResNet for the scale and translation of Real NVP's coupling layers (Pixyz's layout).

    .. math::
        h_0 = W_{\mathrm{in}}\,\mathrm{relu}([\hat x, -\hat x]),\quad
        \hat x = c\,\mathrm{BN}(x),\quad
        h_k = \mathrm{block}_k(h_{k-1}),\quad
        y = W_{\mathrm{out}}\,\mathrm{relu}\Big(\mathrm{BN}\big(S_0 h_0 + \sum_k S_k h_k\big)\Big)

    with :math:`c = 2` if ``double_after_norm`` else 1, :math:`S_k` 1x1 skip convolutions and
    every convolution weight-normalised.

    Parameters
    ----------
    in_channels : int
    mid_channels : int
    out_channels : int
    num_blocks : int
    kernel_size : int
        Kernel of the first convolution.
    padding : int
        Its padding.
    double_after_norm : bool
        Double the input after its batch norm.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> net = ResNet(3, 8, 6, num_blocks=2, kernel_size=3, padding=1, double_after_norm=True)
    >>> y = net(torch.randn(2, 3, 8, 8))
    >>> print(y.shape)
    torch.Size([2, 6, 8, 8])
    >>> round(y.std().item(), 4)
    0.3773
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int,
                 num_blocks: int, kernel_size: int, padding: int,
                 double_after_norm: bool) -> None:
        super().__init__()
        self.double_after_norm = double_after_norm
        self.in_norm = nn.BatchNorm2d(in_channels)
        self.in_conv = wn_conv2d(2 * in_channels, mid_channels, kernel_size, padding)
        self.in_skip = wn_conv2d(mid_channels, mid_channels, 1, padding=0)
        self.blocks = nn.ModuleList(
            [ResidualBlock(mid_channels, mid_channels) for _ in range(num_blocks)]
        )
        self.skips = nn.ModuleList(
            [wn_conv2d(mid_channels, mid_channels, 1, padding=0) for _ in range(num_blocks)]
        )
        self.out_norm = nn.BatchNorm2d(mid_channels)
        self.out_conv = wn_conv2d(mid_channels, out_channels, 1, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.in_norm(x)
        if self.double_after_norm:
            x = 2 * x
        x = self.in_conv(F.relu(torch.cat((x, -x), dim=1)))
        skip = self.in_skip(x)
        for block, skip_conv in zip(self.blocks, self.skips):
            x = block(x)
            skip = skip + skip_conv(x)
        return self.out_conv(F.relu(self.out_norm(skip)))
