"""Flows: log-determinants against autograd Jacobians, inverses, Pyro interop, errors."""

import doctest
import importlib
import pkgutil

import pyro.distributions as dist
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pyro.distributions.conditional import ConditionalTransform
from pyro.distributions.transforms import (
    AffineCoupling as PyroAffineCoupling,
)
from pyro.distributions.transforms import (
    ConditionalAffineCoupling,
    Spline,
)
from pyro.nn import ConditionalDenseNN, DenseNN
from torch import nn

import pixyz_pyro.flows
import pixyz_pyro.layers
from pixyz_pyro.flows import (
    ActNorm2d,
    AffineCoupling,
    BatchNorm1d,
    BatchNorm2d,
    ChannelConv,
    Flatten,
    Flow,
    FlowList,
    Permutation,
    PlanarFlow,
    Preprocess,
    PyroFlow,
    Reverse,
    Shuffle,
    Squeeze,
    Unsqueeze,
)
from pixyz_pyro.flows.transforms import MaskedAffineCoupling
from pixyz_pyro.layers import ResNet

# -- helpers ---------------------------------------------------------------------------------


def per_sample_jacobians(fn, x):
    """Jacobians of ``fn`` for each sample of ``x``, shape (N, D_out, D_in).

    Also checks that samples do not interact: the cross-sample blocks are zero.
    """
    n = x.shape[0]
    jac = torch.autograd.functional.jacobian(fn, x)
    jac = jac.reshape(n, -1, n, x[0].numel())
    idx = torch.arange(n)
    blocks = jac[idx, :, idx, :]
    cross = jac.clone()
    cross[idx, :, idx, :] = 0
    assert cross.abs().max() < 1e-10
    return blocks


def check_flow(flow, x, y=None, inverts=True):
    """logdet_jacobian == log|det| of the autograd Jacobian, and inverse(forward(x)) == x."""
    z = flow(x, y)
    logdet = flow.logdet_jacobian
    assert logdet.shape == x.shape[:1]
    blocks = per_sample_jacobians(lambda v: flow(v, y, compute_jacobian=False), x)
    expected = torch.linalg.slogdet(blocks).logabsdet
    torch.testing.assert_close(logdet, expected, atol=1e-6, rtol=1e-6)
    if inverts:
        back = flow.inverse(z.detach().clone(), y)
        torch.testing.assert_close(back, x, atol=1e-5, rtol=0)
        # what a density under the flow uses: the inverse and log|det| at that inverse
        back, back_logdet = flow.inverse_and_logdet(z.detach().clone(), y)
        torch.testing.assert_close(back, x, atol=1e-5, rtol=0)
        torch.testing.assert_close(back_logdet, expected, atol=1e-5, rtol=1e-5)
        assert flow.logdet_jacobian is back_logdet
    return z


def mlp(d_in, d_out):
    return nn.Sequential(nn.Linear(d_in, 8), nn.Tanh(), nn.Linear(8, d_out))


def conv(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, c_out, 3,
                                                                                  padding=1))


class ScaleTranslate(nn.Module):
    """Pixyz's usual scale_translate_net: one network, output chunked into (log_s, t)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        log_s, t = self.net(x).chunk(2, dim=1)
        return torch.tanh(log_s), t


class ConditionalNet(nn.Module):
    """``(x, y) -> (log_s, t)`` for vectors of size 4 and a condition of size 2."""

    def __init__(self):
        super().__init__()
        self.x_net = mlp(4, 8)
        self.y_net = nn.Linear(2, 8)

    def forward(self, x, y):
        log_s, t = (self.x_net(x) + self.y_net(y)).chunk(2, dim=1)
        return torch.tanh(log_s), t


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def vec(n=3, d=4):
    return torch.randn(n, d, dtype=torch.float64)


def img(n=2, c=2, h=4, w=4):
    return torch.randn(n, c, h, w, dtype=torch.float64)


# -- log-determinants and inverses, per flow -------------------------------------------------


def test_identity_flow():
    check_flow(Flow(4), vec())


@pytest.mark.parametrize("constraint_u", [False, True])
def test_planar_logdet(constraint_u):
    flow = PlanarFlow(4, constraint_u=constraint_u).double()
    check_flow(flow, vec(), inverts=False)


def test_planar_chain_inverts_its_last_output():
    flow = FlowList([PlanarFlow(2) for _ in range(3)])
    x = torch.randn(4, 2)
    assert flow.inverse(flow(x)) is x


def test_planar_inverse_only_from_cache():
    flow = PlanarFlow(4)
    x = torch.randn(3, 4)
    z = flow(x)
    assert flow.inverse(z) is x
    with pytest.raises(NotImplementedError, match="no closed-form inverse"):
        flow.inverse(z.clone())


@pytest.mark.parametrize("inverse_mask", [False, True])
def test_coupling_channel_wise_vectors(inverse_mask):
    flow = AffineCoupling(4, "channel_wise", scale_net=mlp(4, 4), translate_net=mlp(4, 4),
                          inverse_mask=inverse_mask).double()
    x = vec()
    z = check_flow(flow, x)
    kept = slice(2, 4) if inverse_mask else slice(0, 2)
    assert torch.equal(z[:, kept], x[:, kept])
    assert flow.event_dim == 1


@pytest.mark.parametrize("mask_type", ["channel_wise", "checkerboard"])
@pytest.mark.parametrize("inverse_mask", [False, True])
def test_coupling_images(mask_type, inverse_mask):
    flow = AffineCoupling(2, mask_type, scale_translate_net=ScaleTranslate(conv(2, 4)),
                          inverse_mask=inverse_mask).double()
    check_flow(flow, img())
    assert flow.event_dim == 3


def test_coupling_conditional():
    flow = AffineCoupling(4, scale_translate_net=ConditionalNet()).double()
    x, y = vec(), torch.randn(3, 2, dtype=torch.float64)
    z = check_flow(flow, x, y)
    assert not torch.allclose(z, flow(x, torch.zeros_like(y)))
    # the Pyro side: condition(y) gives the same map, and so does ConditionalTransform
    t = flow.transform
    assert isinstance(t, ConditionalTransform)
    torch.testing.assert_close(t.condition(y)(x), z)
    torch.testing.assert_close(flow.condition(y)(x), z)


def test_coupling_masks_match_pixyz():
    f = AffineCoupling(4, "channel_wise", scale_translate_net=lambda x: (x, x))
    assert f.build_mask(torch.zeros(1, 4, 3, 3)).flatten().tolist() == [1, 1, 0, 0]
    assert f.build_mask(torch.zeros(1, 4, 3, 3)).shape == (1, 4, 1, 1)
    f = AffineCoupling(2, "checkerboard", scale_translate_net=lambda x: (x, x),
                       inverse_mask=True)
    mask = f.build_mask(torch.zeros(1, 2, 5, 5))
    assert mask.shape == (1, 1, 5, 5)
    assert mask[0, 0, 0].tolist() == [0, 1, 0, 1, 0]
    log_s, t = f.get_parameters(torch.ones(1, 2, 5, 5))
    assert torch.equal(log_s, torch.ones(1, 2, 5, 5))


@pytest.mark.parametrize("decomposed", [False, True])
def test_channel_conv(decomposed):
    flow = ChannelConv(3, decomposed=decomposed).double()
    check_flow(flow, img(c=3, h=2, w=2))
    params = dict(flow.named_parameters())
    assert ("pyro_transform.LU" in params) == decomposed


def test_squeeze_and_unsqueeze():
    x = img()
    z = check_flow(Squeeze(), x)
    assert z.shape == (2, 8, 2, 2)
    back = check_flow(Unsqueeze(), z)
    assert torch.equal(back, x)


def test_squeeze_matches_pixyz_doc():
    a = torch.arange(1, 17).view(1, 1, 4, 4)
    z = Squeeze()(a)
    assert z[0, :, 0, 0].tolist() == [1, 2, 5, 6]
    assert z[0, 0].tolist() == [[1, 3], [9, 11]]
    b = torch.arange(1, 17).view(1, 4, 2, 2)
    assert Unsqueeze()(b)[0, 0, 0].tolist() == [1, 5, 2, 6]


@pytest.mark.parametrize("make", [lambda: Permutation([2, 0, 3, 1]), lambda: Shuffle(4),
                                  lambda: Reverse(4)])
def test_permutations(make):
    x = vec()
    z = check_flow(make(), x)
    assert sorted(z[0].tolist()) == sorted(x[0].tolist())
    check_flow(make(), img(c=4, h=2, w=2))


def test_permutation_values():
    a = torch.arange(1, 17).view(1, 4, 2, 2)
    f = Permutation([0, 3, 1, 2])
    assert f(a)[0, :, 0, 0].tolist() == [1, 13, 5, 9]
    assert torch.equal(f.inverse(f(a)), a)
    assert f.inv_permute_indices.tolist() == [0, 2, 3, 1]
    assert Reverse(3)(torch.tensor([[1, 2, 3]])).tolist() == [[3, 2, 1]]


def test_flatten():
    flow = Flatten()
    z = check_flow(flow, img(c=2, h=2, w=3))
    assert z.shape == (2, 12) and flow.in_size == (2, 2, 3)
    with pytest.raises(ValueError, match=r"expects features \(2, 2, 3\), got \(2, 3, 2\)"):
        flow(img(c=2, h=3, w=2))


def test_preprocess_logdet_is_that_of_the_dequantised_input():
    flow = Preprocess().double()
    x = torch.rand(2, 1, 2, 2, dtype=torch.float64)
    torch.manual_seed(1)
    z = flow(x)
    torch.manual_seed(1)
    u = (x * 255 + torch.rand_like(x)) / 256
    torch.testing.assert_close(z, flow.transform(u))
    blocks = per_sample_jacobians(flow.transform, u)
    torch.testing.assert_close(flow.logdet_jacobian, torch.linalg.slogdet(blocks).logabsdet)
    torch.testing.assert_close(flow.inverse(z), u)
    assert (flow.inverse(z) - x).abs().max() < 1 / 256


@pytest.mark.parametrize("flow_cls, shape", [(BatchNorm1d, (8, 3)), (BatchNorm2d, (4, 3, 2, 2))])
def test_batchnorm(flow_cls, shape):
    flow = flow_cls(3).double()
    x = 2 + 3 * torch.randn(shape, dtype=torch.float64)
    z = flow(x)  # training: batch statistics
    dims = [0] if x.dim() == 2 else [0, 2, 3]
    assert z.mean(dims).abs().max() < 1e-6
    train_logdet = flow.logdet_jacobian
    torch.testing.assert_close(flow.inverse(z), x)  # momentum 0: running == last batch
    flow.eval()
    check_flow(flow, x)  # eval: running statistics, an ordinary affine map
    torch.testing.assert_close(flow.logdet_jacobian, train_logdet)


def test_batchnorm_momentum_keeps_pixyz_convention():
    flow = BatchNorm1d(2, momentum=0.9)
    flow(torch.full((4, 2), 10.0) + torch.randn(4, 2))
    moving_mean = flow.pyro_transform.moving_mean
    assert torch.allclose(moving_mean, 0.1 * torch.full((2,), 10.0), atol=0.2)


def test_batchnorm_pixyz_doc_reconstruction():
    for f, x in [(BatchNorm1d(100), torch.randn(20, 100)),
                 (BatchNorm2d(10), torch.randn(20, 10, 5, 7))]:
        assert torch.sum(torch.abs(f.inverse(f(x)) - x)).item() < 0.1


def test_actnorm():
    flow = ActNorm2d(3).double()
    x = 4 + 2 * img(4, 3, 2, 2)
    assert not flow.inited
    z = flow(x)
    assert flow.inited
    assert z.mean([0, 2, 3]).abs().max() < 1e-6
    assert torch.allclose(z.std([0, 2, 3], unbiased=False), torch.ones(3, dtype=z.dtype))
    check_flow(flow, x)


def test_actnorm_initialisation_survives_state_dict():
    flow = ActNorm2d(3)
    flow(torch.randn(2, 3, 4, 4) * 5)
    fresh = ActNorm2d(3)
    fresh.load_state_dict(flow.state_dict())
    assert fresh.inited
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(fresh(x), flow(x))


def test_actnorm_does_not_initialise_in_eval_mode():
    flow = ActNorm2d(3).eval()
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(flow(x), x) and not flow.inited


def test_flow_list_sums_logdets_and_inverts():
    flows = [PlanarFlow(4, constraint_u=True), Reverse(4),
             AffineCoupling(4, scale_net=mlp(4, 4), translate_net=mlp(4, 4)),
             Shuffle(4)]
    flow = FlowList(flows).double()
    x = vec()
    flow(x)
    torch.testing.assert_close(flow.logdet_jacobian,
                               sum(f.logdet_jacobian for f in flows))
    blocks = per_sample_jacobians(lambda v: flow(v, compute_jacobian=False), x)
    torch.testing.assert_close(flow.logdet_jacobian, torch.linalg.slogdet(blocks).logabsdet)
    assert len(flow) == 4 and flow[1] is flows[1] and isinstance(flow[1:], FlowList)
    assert repr(flow).startswith("FlowList(")
    # only the planar flow lacks an analytic inverse: check the rest
    tail = flow[1:]
    w = tail(x)
    torch.testing.assert_close(tail.inverse(w.clone()), x)


def test_flow_list_passes_y_to_every_flow():
    flow = FlowList([Reverse(4), AffineCoupling(4, scale_translate_net=ConditionalNet())])
    x, y = torch.randn(3, 4), torch.randn(3, 2)
    z = flow(x, y)
    torch.testing.assert_close(flow.inverse(z.clone(), y), x)
    torch.testing.assert_close(flow.condition(y)(x), z)


# -- Glow-sized blocks -----------------------------------------------------------------------


def glow_step(channels):
    net = ResNet(channels, 16, 2 * channels, num_blocks=1, kernel_size=3, padding=1,
                 double_after_norm=True)
    return [ActNorm2d(channels), ChannelConv(channels),
            AffineCoupling(channels, "channel_wise", scale_translate_net=ScaleTranslate(net))]


def test_glow_blocks_on_32x32_images():
    flow = FlowList([Squeeze(), *glow_step(12), ChannelConv(12, decomposed=True),
                     AffineCoupling(12, "checkerboard",
                                    scale_translate_net=ScaleTranslate(conv(12, 24))),
                     Unsqueeze()])
    x = torch.randn(2, 3, 32, 32)
    z = flow(x)
    assert z.shape == x.shape and flow.logdet_jacobian.shape == (2,)
    assert torch.isfinite(flow.logdet_jacobian).all()
    torch.testing.assert_close(flow.inverse(z.detach().clone()), x, atol=1e-5, rtol=0)
    flow.logdet_jacobian.sum().backward()
    assert all(p.grad is not None for p in flow.parameters() if p.requires_grad)


def test_glow_step_logdet_on_small_images():
    flow = FlowList([Squeeze(), *glow_step(8), Unsqueeze()]).double()
    x = img(2, 2, 2, 2)
    flow(x)  # initialises ActNorm
    flow.eval()  # the ResNet's batch norm then treats samples independently
    check_flow(flow, x)


# -- the Pyro side ---------------------------------------------------------------------------


def test_transform_builds_a_pyro_transformed_distribution():
    flow = FlowList([AffineCoupling(4, scale_net=mlp(4, 4), translate_net=mlp(4, 4)),
                     Reverse(4), BatchNorm1d(4)]).double()
    flow(vec(16, 4))  # learn event dims and batch statistics
    flow.eval()
    base = dist.Normal(torch.zeros(4, dtype=torch.float64), 1.0).to_event(1)
    # Pixyz's InverseTransformedDistribution: z = f(x) is the base variable.
    d = dist.TransformedDistribution(base, [flow.transform.inv])
    x = vec()
    expected = base.log_prob(flow(x)) + flow.logdet_jacobian
    torch.testing.assert_close(d.log_prob(x), expected)


def test_image_transform_in_pyro_distribution():
    flow = FlowList([ActNorm2d(2), ChannelConv(2), Squeeze(), Flatten()]).double()
    x = img()
    flow(x)
    t = flow.transform
    assert t.domain.event_dim == 3 and t.codomain.event_dim == 1
    base = dist.Normal(torch.zeros(32, dtype=torch.float64), 1.0).to_event(1)
    d = dist.TransformedDistribution(base, [t.inv])
    torch.testing.assert_close(d.log_prob(x), base.log_prob(flow(x)) + flow.logdet_jacobian)


def test_conditional_transform_in_pyro_distribution():
    flow = AffineCoupling(4, scale_translate_net=ConditionalNet(), event_dim=1).double()
    x, y = vec(), torch.randn(3, 2, dtype=torch.float64)
    base = dist.Normal(torch.zeros(4, dtype=torch.float64), 1.0).to_event(1)
    d = dist.ConditionalTransformedDistribution(base, [flow.conditional_transform.inv])
    expected = base.log_prob(flow(x, y)) + flow.logdet_jacobian
    torch.testing.assert_close(d.condition(y).log_prob(x), expected)


def test_pyro_transforms_as_flows():
    spline = Flow.from_pyro(Spline(4)).double()
    check_flow(spline, vec())
    assert spline.event_dim == 1 and any(True for _ in spline.parameters())
    coupling = PyroFlow(PyroAffineCoupling(2, DenseNN(2, [8], [2, 2]))).double()
    check_flow(coupling, vec())
    cond = PyroFlow(ConditionalAffineCoupling(2, ConditionalDenseNN(2, 3, [8], [2, 2]))).double()
    y = torch.randn(3, 3, dtype=torch.float64)
    check_flow(cond, vec(), y)
    with pytest.raises(ValueError, match="is conditional: call it with y"):
        cond(vec())


def test_pixyz_style_subclass_is_a_pyro_transform():
    class Scale(Flow):
        def __init__(self):
            super().__init__(2, event_dim=1)

        def forward(self, x, y=None, compute_jacobian=True):
            self._logdet_jacobian = x.new_full(x.shape[:1], 2 * torch.log(torch.tensor(3.0)))
            return 3 * x

        def inverse(self, z, y=None):
            return z / 3

    flow = Scale()
    base = dist.Normal(torch.zeros(2), 1.0).to_event(1)
    d = dist.TransformedDistribution(base, [flow.transform])
    x = torch.randn(5, 2)
    torch.testing.assert_close(d.log_prob(x), base.log_prob(x / 3) - 2 * torch.log(
        torch.tensor(3.0)))


@pytest.mark.parametrize("make", [
    lambda: PlanarFlow(4), lambda: AffineCoupling(4, scale_net=mlp(4, 4), translate_net=mlp(4, 4)),
    lambda: PyroFlow(Spline(4)), lambda: FlowList([Reverse(4), PlanarFlow(4, constraint_u=True)]),
])
def test_training_on_a_fixed_batch_recomputes_every_step(make):
    flow = make()
    x = torch.randn(3, 4)
    opt = torch.optim.SGD(flow.parameters(), lr=0.1)
    losses = []
    for _ in range(3):
        loss = flow(x).pow(2).sum() - flow.logdet_jacobian.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert len(set(losses)) == 3


def test_transform_clear_cache_reaches_wrapped_transforms():
    flow = PyroFlow(Spline(4))
    flow(torch.randn(3, 4))
    t = flow.transform
    x = torch.randn(3, 4)
    z = t(x)
    t.clear_cache()
    assert t.base_transform._cached_x_y == (None, None)
    assert torch.equal(t(x), z)


def test_extra_batch_dims_follow_pyro_shapes():
    flow = AffineCoupling(2, scale_translate_net=ScaleTranslate(conv(2, 4)))
    flow(torch.randn(2, 2, 4, 4))
    x = torch.randn(5, 2, 2, 4, 4)
    z = flow(x)
    assert flow.logdet_jacobian.shape == (5, 2)
    torch.testing.assert_close(flow.inverse(z.clone()), x, atol=1e-5, rtol=0)


# -- errors ------------------------------------------------------------------------------


def test_errors_in_users_terms():
    with pytest.raises(ValueError, match="mask_type must be one of"):
        AffineCoupling(4, mask_type="diagonal", scale_translate_net=lambda x: (x, x))
    with pytest.raises(ValueError, match="needs scale_net and translate_net"):
        AffineCoupling(4, scale_net=mlp(4, 4))
    with pytest.raises(ValueError, match="permutation of range"):
        Permutation([0, 0, 1])
    with pytest.raises(ValueError, match="even height and width"):
        Squeeze()(torch.zeros(1, 1, 3, 4))
    with pytest.raises(ValueError, match="channels divisible by 4"):
        Unsqueeze()(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="call it forward once"):
        Flatten().inverse(torch.zeros(2, 4))
    with pytest.raises(RuntimeError, match="learns its event_dim"):
        _ = Reverse(4).transform
    with pytest.raises(ValueError, match=r"3 feature dims, got shape \(4, 4\)"):
        ChannelConv(4)(torch.zeros(4, 4))
    with pytest.raises(TypeError, match="wraps a pyro.distributions Transform"):
        PyroFlow(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="at least one flow"):
        FlowList([])


# -- properties and docs -----------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))
def test_squeeze_permute_roundtrip(n, c, h, w):
    x = torch.randn(n, c, 2 * h, 2 * w)
    flow = FlowList([Squeeze(), Shuffle(4 * c), Unsqueeze()])
    assert torch.equal(flow.inverse(flow(x).clone()), x)
    assert torch.equal(flow.logdet_jacobian, torch.zeros(n))


def test_parameters_are_registered_once():
    net = mlp(4, 4)
    flow = AffineCoupling(4, scale_net=net, translate_net=mlp(4, 4))
    names = [name for name, _ in flow.named_parameters()]
    assert len(names) == len(set(names)) == 8
    assert flow.scale_net is net


def _modules(package):
    yield package
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        yield importlib.import_module(info.name)


@pytest.mark.parametrize("module", [*_modules(pixyz_pyro.flows), *_modules(pixyz_pyro.layers)],
                         ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_pixyz_name_is_exported():
    names = ["Flow", "FlowList", "PlanarFlow", "AffineCoupling", "ChannelConv", "Squeeze",
             "Unsqueeze", "Permutation", "Shuffle", "Reverse", "Flatten", "Preprocess",
             "BatchNorm1d", "BatchNorm2d", "ActNorm2d"]
    assert set(names) <= set(pixyz_pyro.flows.__all__)
    assert MaskedAffineCoupling is pixyz_pyro.flows.transforms.MaskedAffineCoupling
