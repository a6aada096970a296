"""layers.ResNet: Pixyz's constructor, output shapes, weight norm, gradients."""

import pytest
import torch
from torch.nn.utils import parametrize

from pixyz_pyro.layers import ResNet


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


@pytest.mark.parametrize(
    "in_channels, mid_channels, out_channels, num_blocks, kernel_size, padding, size",
    [(3, 8, 6, 2, 3, 1, 8), (1, 4, 2, 0, 3, 1, 5), (4, 8, 8, 1, 1, 0, 4), (2, 4, 4, 1, 5, 2, 7)],
)
def test_output_shapes(in_channels, mid_channels, out_channels, num_blocks, kernel_size,
                       padding, size):
    net = ResNet(in_channels, mid_channels, out_channels, num_blocks, kernel_size, padding,
                 double_after_norm=False)
    y = net(torch.randn(3, in_channels, size, size))
    assert y.shape == (3, out_channels, size, size)
    assert len(net.blocks) == len(net.skips) == num_blocks


def test_keyword_constructor_like_pixyz():
    net = ResNet(in_channels=2, mid_channels=4, out_channels=4, num_blocks=1, kernel_size=3,
                 padding=1, double_after_norm=True)
    assert net(torch.randn(2, 2, 6, 6)).shape == (2, 4, 6, 6)


def test_double_after_norm_changes_the_output():
    a = ResNet(2, 4, 4, 1, 3, 1, double_after_norm=False)
    b = ResNet(2, 4, 4, 1, 3, 1, double_after_norm=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 2, 4, 4)
    assert not torch.allclose(a(x), b(x))


def test_convolutions_are_weight_normalised():
    net = ResNet(2, 4, 4, 2, 3, 1, double_after_norm=False)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 2 + 3 * 2 + 1
    assert all(parametrize.is_parametrized(m, "weight") for m in convs)


def test_gradients_reach_every_parameter():
    net = ResNet(2, 4, 4, 2, 3, 1, double_after_norm=True)
    net(torch.randn(2, 2, 4, 4)).pow(2).sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_input_is_not_modified():
    net = ResNet(2, 4, 4, 1, 3, 1, double_after_norm=True)
    x = torch.randn(2, 2, 4, 4)
    before = x.clone()
    net(x)
    assert torch.equal(x, before)
