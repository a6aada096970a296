"""The fused Bernoulli score: the value of the composed kernels (Pyro's expression) to
float32 rounding and closer to float64 than they are, its hand-written gradient equal to
autograd's through them, gradients of gradients, and the memory it saves."""
import pyro.distributions as pd
import pytest
import torch

from pixyz_pyro.dist import Bernoulli
from pixyz_pyro.dist.family import _bernoulli_log_prob
from pixyz_pyro.dist.fused import FUSED_MIN, BernoulliLogProb

EPS = torch.finfo(torch.float32).eps


def composed(p, x, eps):
    return -torch.binary_cross_entropy_with_logits(torch.logit(p, eps), x, None, None, 0)


def probs_and_values(shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    h = 3 * torch.randn(shape, generator=g, dtype=dtype)
    h[0, :3] = torch.tensor([-40.0, 40.0, -20.0], dtype=dtype)  # inside the clamp's zone
    h.requires_grad_()
    p = torch.sigmoid(h)
    return h, p, (torch.rand(shape, generator=g, dtype=dtype) > 0.5).to(dtype)


def exact(p, x, eps):
    """:math:`x \\log \\pi_c + (1 - x) \\log(1 - \\pi_c)` in float64."""
    pc = p.detach().double().clamp(eps, 1 - eps)
    return x.double() * pc.log() + (1 - x.double()) * torch.log1p(-pc)


def test_value_matches_the_composed_kernels_to_float32_rounding():
    _, p, x = probs_and_values((8, 50))
    torch.testing.assert_close(BernoulliLogProb.apply(p, x, EPS), composed(p, x, EPS),
                               rtol=1e-6, atol=1e-6)


def test_value_is_accurate_elementwise_where_pyros_expression_cancels():
    """Against float64, every element within 2e-7 of itself, binary and fractional values,
    probabilities down to the clamp; Pyro's logit form loses background pixels'
    :math:`\\log(1 - \\pi) \\approx -\\pi` to cancellation."""
    g = torch.Generator().manual_seed(3)
    p = torch.sigmoid(8 * torch.randn(20000, generator=g))
    x = torch.cat([(torch.rand(15000, generator=g) > 0.5).float(), torch.rand(5000, generator=g)])
    ref = exact(p, x, EPS)
    background = (x == 0) & (p < 1e-6)  # log(1 - p) of a near-certain 0
    assert background.sum() > 100

    def worst(lp, where=slice(None)):
        return ((lp.double() - ref).abs() / ref.abs())[where].max().item()

    assert worst(BernoulliLogProb.apply(p, x, EPS)) < 2e-7
    assert worst(composed(p, x, EPS), background) > 1e-2
    assert torch.equal(BernoulliLogProb.apply(p, x, EPS)[x == 1],
                       p.clamp(EPS, 1 - EPS).log()[x == 1])  # exactly log(pi_c)


def test_value_equals_pyro_on_probabilities_inside_the_clamp():
    _, p, x = probs_and_values((8, 50))
    p = p.detach().clamp(0.01, 0.99)
    expected = pd.Bernoulli(probs=p).log_prob(x)
    assert torch.allclose(BernoulliLogProb.apply(p, x, EPS), expected, rtol=1e-6, atol=1e-6)


def test_gradient_equals_autograd_through_the_composed_kernels():
    h, p, x = probs_and_values((8, 50))
    w = torch.rand(8, 50)
    (g_fused,) = torch.autograd.grad((BernoulliLogProb.apply(p, x, EPS) * w).sum(), h,
                                     retain_graph=True)
    (g_ref,) = torch.autograd.grad((composed(p, x, EPS) * w).sum(), h)
    assert torch.allclose(g_fused, g_ref, rtol=1e-5, atol=1e-6)
    assert g_fused[0, :3].abs().max() == 0  # the clamp is active there: no gradient


def test_gradient_with_respect_to_the_value_is_the_logit():
    p = torch.tensor([[0.2, 0.7]])
    x = torch.tensor([[0.3, 0.6]], requires_grad=True)
    BernoulliLogProb.apply(p, x, EPS).sum().backward()
    assert torch.allclose(x.grad, torch.logit(p), atol=1e-6)


def test_gradients_of_gradients():
    p = torch.tensor([[0.2, 0.55, 0.9]], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([[0.0, 1.0, 1.0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda q: BernoulliLogProb.apply(q, x, 1e-6), (p,))
    assert torch.autograd.gradgradcheck(lambda q: BernoulliLogProb.apply(q, x, 1e-6), (p,))


@pytest.mark.parametrize("features", [4, FUSED_MIN // 2])
def test_the_numerics_table_scores_small_and_large_batches_alike(features):
    """Below FUSED_MIN the composed kernels (Pyro's expression, exactly), from it the fused
    node: the same numbers to float32 rounding."""
    _, p, x = probs_and_values((2, features))
    lp = _bernoulli_log_prob({"probs": p}, x)
    fused = p.numel() >= FUSED_MIN
    assert (type(lp.grad_fn).__name__ == "BernoulliLogProbBackward") == fused
    if fused:
        torch.testing.assert_close(lp, composed(p, x, EPS), rtol=1e-6, atol=1e-6)
    else:
        assert torch.equal(lp, composed(p, x, EPS))


def test_a_bernoulli_decoder_trains_through_the_fused_node():
    class Decoder(Bernoulli):
        def __init__(self):
            super().__init__(var=["x"], cond_var=["z"], name="p")
            self.fc = torch.nn.Linear(3, FUSED_MIN // 64)

        def forward(self, z):
            return {"probs": torch.sigmoid(self.fc(z))}

    p = Decoder()
    z = torch.randn(64, 3)
    x = (torch.rand(64, FUSED_MIN // 64) > 0.5).float()
    lp = p.get_log_prob({"x": x, "z": z})
    ref = composed(torch.sigmoid(p.fc(z)), x, EPS).sum(-1)
    torch.testing.assert_close(lp, ref, rtol=1e-6, atol=1e-5)
    lp.sum().backward()
    assert p.fc.weight.grad is not None and torch.isfinite(p.fc.weight.grad).all()


def test_it_keeps_fewer_batch_sized_buffers_alive():
    """Measured with the comparisons' live-tensor counter: at the backward's peak the
    composed kernels hold the logits and two more batch-sized buffers."""
    from comparisons.scaling.memory import tensor_peak
    h = torch.randn(256, 784, requires_grad=True)
    x = (torch.rand(256, 784) > 0.5).float()
    batch = h.numel() * 4

    def step(score):
        return lambda: score(torch.sigmoid(h), x, EPS).sum().backward()

    saved = tensor_peak(step(composed)) - tensor_peak(step(BernoulliLogProb.apply))
    assert saved >= batch


def test_its_forward_holds_two_batch_sized_buffers_at_its_peak():
    """The clamped probabilities and the value, computed in place: a third buffer set the
    VAE's peak memory per step at batch 1024-4096 (1.21-1.24x of hand-written code)."""
    from comparisons.scaling.memory import tensor_peak
    probs = torch.rand(256, 784)
    x = (torch.rand(256, 784) > 0.5).float()
    peak = tensor_peak(lambda: BernoulliLogProb.apply(probs, x, EPS))
    assert peak == 2 * probs.numel() * 4


# --- the Normal ------------------------------------------------------------------------------
def test_the_fused_normal_score_is_torchs_value_and_gradients():
    """NormalLogProb: the composed score bit for bit and torch's Normal.log_prob to
    float32 rounding; its closed-form gradients for x, loc and a broadcast scale pass
    gradcheck and gradgradcheck (float64), and a fixed scale gets no gradient."""
    from pixyz_pyro.dist.fused import NormalLogProb, normal_log_density
    g = torch.Generator().manual_seed(0)
    x, loc = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    for scale in (torch.rand(6, 5, generator=g) + 0.1, torch.rand(1, 5, generator=g) + 0.1,
                  torch.tensor(0.7)):
        fused = NormalLogProb.apply(x, loc, scale)
        assert torch.equal(fused, normal_log_density(x, loc, scale))
        torch.testing.assert_close(fused, torch.distributions.Normal(loc, scale).log_prob(x),
                                   rtol=1e-6, atol=1e-6)
    d = torch.double
    xd = torch.randn(4, 3, dtype=d, generator=g).requires_grad_()
    ld = torch.randn(4, 3, dtype=d, generator=g).requires_grad_()
    for sd in ((torch.rand(1, 3, dtype=d, generator=g) + 0.5).requires_grad_(),
               torch.tensor(1.3, dtype=d, requires_grad=True)):
        assert torch.autograd.gradcheck(NormalLogProb.apply, (xd, ld, sd))
        assert torch.autograd.gradgradcheck(NormalLogProb.apply, (xd, ld, sd))
    fixed = torch.tensor(0.5)
    loc2 = loc.clone().requires_grad_()
    NormalLogProb.apply(x, loc2, fixed).sum().backward()
    torch.testing.assert_close(loc2.grad, (x - loc) / 0.25)
    assert fixed.grad is None


@pytest.mark.parametrize("features", [4, FUSED_MIN // 2])
def test_the_numerics_table_scores_small_and_large_normal_batches_alike(features):
    """Below FUSED_MIN the composed kernels, from it the fused node: torch's values and
    gradients, to float32 rounding."""
    from pixyz_pyro.dist.family import _normal_log_prob
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, features, generator=g)
    loc = torch.randn(2, features, generator=g).requires_grad_()
    scale = (torch.rand(1, features, generator=g) + 0.2).requires_grad_()
    lp = _normal_log_prob({"loc": loc, "scale": scale}, x)
    fused = x.numel() >= FUSED_MIN
    assert (type(lp.grad_fn).__name__ == "NormalLogProbBackward") == fused
    ref_loc, ref_scale = loc.detach().requires_grad_(), scale.detach().requires_grad_()
    ref = torch.distributions.Normal(ref_loc, ref_scale).log_prob(x)
    torch.testing.assert_close(lp, ref, rtol=1e-6, atol=1e-6)
    lp.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(loc.grad, ref_loc.grad)
    torch.testing.assert_close(scale.grad, ref_scale.grad)


def test_a_gaussian_decoder_with_a_fixed_scale_keeps_fewer_batch_sized_buffers_alive():
    """Measured with the comparisons' live-tensor counter, as for the Bernoulli."""
    from comparisons.scaling.memory import tensor_peak
    from pixyz_pyro.dist.fused import NormalLogProb
    h = torch.randn(256, 784, requires_grad=True)
    x = torch.rand(256, 784)
    scale = torch.tensor(0.1)
    batch = h.numel() * 4

    def step(score):
        return lambda: score(x, torch.tanh(h), scale).sum().backward()

    composed_normal = lambda x, loc, s: torch.distributions.Normal(loc, s).log_prob(x)  # noqa: E731
    saved = tensor_peak(step(composed_normal)) - tensor_peak(step(NormalLogProb.apply))
    assert saved >= batch
