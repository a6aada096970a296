"""AutoregressiveCategorical (MADE) and PixelCNN (masked convolutions): the autoregressive
property through gradient masks, the exact one-pass log_prob against the sequential
conditionals computed one at a time and against enumeration, sampling frequencies, and
their use as the decoder p(x|z) of a VAE."""
import itertools
import math

import pytest
import torch
from torch import nn

from pixyz_pyro.dist import AutoregressiveCategorical, Normal, PixelCNN
from pixyz_pyro.dist.pixelcnn import MaskedConv2d
from pixyz_pyro.errors import ShapeError
from pixyz_pyro.loss import ELBO, IWAE, LogProb
from pixyz_pyro.model import Model


def randomise(p, scale=1.0):
    with torch.no_grad():
        for t in p.parameters():
            t.copy_(torch.randn_like(t) * scale)


def outcomes(n, k):
    return torch.tensor(list(itertools.product(range(k), repeat=n))).float()


def tv_of_samples(p, grid, n, **kw):
    """Total variation between ``n`` samples' frequencies and the exact probabilities."""
    x = p.sample(batch_n=n, **kw)["x"].reshape(n, -1)
    k = int(grid.max()) + 1
    weights = k ** torch.arange(grid.shape[1] - 1, -1, -1)
    codes = (x.long() * weights).sum(1)
    freq = torch.bincount(codes, minlength=len(grid)).float() / n
    with torch.no_grad():
        exact = p.get_log_prob({"x": grid.reshape(len(grid), *p.features_shape)}).exp()
    return 0.5 * float((freq - exact).abs().sum())


# --- AutoregressiveCategorical ---------------------------------------------------------------
def test_categorical_log_prob_is_exact_and_the_sum_of_its_sequential_conditionals():
    torch.manual_seed(0)
    p = AutoregressiveCategorical(dim=3, num_categories=3, hidden=16, cond_var=["z"],
                                  cond_dim=2)
    randomise(p)
    x = outcomes(3, 3)
    z = torch.randn(1, 2).expand(27, 2)
    with torch.no_grad():
        lp = p.get_log_prob({"x": x, "z": z})
        assert abs(float(lp.exp().sum()) - 1.0) < 1e-5
        chain = torch.zeros(27)
        for d in range(3):  # conditional d, with the features from d on set to noise
            seen = torch.where(torch.arange(3) < d, x, torch.randint(0, 3, x.shape).float())
            logits = p._logits(seen, z)[:, d]
            chain += torch.log_softmax(logits, -1).gather(-1, x[:, d:d + 1].long())[:, 0]
    assert torch.allclose(lp, chain, atol=1e-5)
    assert p.get_log_prob({"x": x.long(), "z": z}).shape == (27,)  # integer codes too


def test_categorical_logits_d_read_only_the_features_before_d():
    torch.manual_seed(1)
    p = AutoregressiveCategorical(dim=4, num_categories=3, hidden=24)
    randomise(p)
    code = torch.rand(12)
    jac = torch.autograd.functional.jacobian(lambda v: p.made(v[None])[0], code)
    blocks = jac.reshape(4, 3, 4, 3).abs().sum((1, 3))  # [output feature, input feature]
    assert torch.all(blocks.triu() == 0)
    assert torch.all(blocks.tril(-1)[1:, 0] > 0)


def test_categorical_sampling_frequencies_match_the_exact_probabilities():
    torch.manual_seed(2)
    p = AutoregressiveCategorical(dim=2, num_categories=3, hidden=12)
    randomise(p)
    assert tv_of_samples(p, outcomes(2, 3), 40000) < 0.02
    assert p.sample(sample_shape=[3], batch_n=2)["x"].shape == (3, 2, 2)


def test_categorical_fits_a_known_distribution_by_maximum_likelihood():
    torch.manual_seed(3)
    target = torch.softmax(torch.randn(9) * 2, 0)
    data = outcomes(2, 3)[torch.multinomial(target, 4096, replacement=True)]
    p = AutoregressiveCategorical(dim=2, num_categories=3, hidden=16)
    model = Model(-LogProb(p).mean(), distributions=[p], optimizer=torch.optim.Adam,
                  optimizer_params={"lr": 0.05})
    for _ in range(300):
        model.train({"x": data})
    with torch.no_grad():
        lp = p.get_log_prob({"x": outcomes(2, 3)})
    empirical = torch.bincount((data[:, 0] * 3 + data[:, 1]).long(), minlength=9) / 4096.
    keep = empirical > 0
    kl = float((empirical[keep] * (empirical[keep].log() - lp[keep])).sum())
    assert kl < 0.01, kl


# --- PixelCNN ------------------------------------------------------------------------------
@pytest.mark.parametrize("mask_type,k", [("A", 3), ("B", 3), ("A", 5)])
def test_masked_convolution_reads_only_the_pixels_before_in_raster_order(mask_type, k):
    torch.manual_seed(4)
    conv = MaskedConv2d(2, 3, k, mask_type)
    h, w = 4, 5
    x = torch.randn(1, 2, h, w)
    for i in range(h * w):
        r, c = divmod(i, w)
        g = torch.autograd.functional.jacobian(lambda v, r=r, c=c: conv(v)[0, :, r, c], x)
        reach = g.abs().sum((0, 1, 2)).reshape(-1)  # per input pixel
        later = torch.arange(h * w) > i if mask_type == "B" else torch.arange(h * w) >= i
        assert torch.all(reach[later] == 0), (i, mask_type)
        if mask_type == "B":
            assert reach[i] > 0


def test_pixelcnn_output_i_does_not_depend_on_inputs_from_i_on():
    torch.manual_seed(5)
    p = PixelCNN(4, 4, num_categories=3, channels=8, layers=2, kernel_size=3)
    randomise(p, 0.5)
    code = torch.rand(1, 3, 4, 4)  # a relaxed one-hot image: the gradient reaches every input
    for i in range(16):
        r, c = divmod(i, 4)
        g = torch.autograd.functional.jacobian(lambda v, r=r, c=c: p.net(v)[0, :, r, c], code)
        reach = g.abs().sum((0, 1, 2)).reshape(16)
        assert torch.all(reach[i:] == 0), i
        if c > 0:
            assert reach[i - 1] > 0  # and it does read the pixel on its left


def test_pixelcnn_six_pixels_log_prob_is_exact_and_the_sum_of_sequential_conditionals():
    torch.manual_seed(6)
    p = PixelCNN(2, 3, num_categories=2, channels=8, layers=2, kernel_size=3,
                 cond_var=["z"], cond_dim=2)
    randomise(p, 0.7)
    x = outcomes(6, 2).reshape(64, 2, 3)
    z = torch.randn(1, 2).expand(64, 2)
    with torch.no_grad():
        lp = p.get_log_prob({"x": x, "z": z})
        assert abs(float(lp.exp().sum()) - 1.0) < 1e-5  # all 64 images: a distribution
        chain = torch.zeros(64)
        flat = x.reshape(64, 6)
        for i in range(6):  # one conditional at a time, the pixels from i on set to noise
            seen = torch.where(torch.arange(6) < i, flat, torch.randint(0, 2, flat.shape))
            logits = p.logits(seen.reshape(64, 2, 3), z)[:, :, i // 3, i % 3]
            chain += torch.log_softmax(logits, -1).gather(-1, flat[:, i:i + 1].long())[:, 0]
    assert torch.allclose(lp, chain, atol=1e-5)
    per_pixel = p.get_log_prob({"x": x, "z": z}, sum_features=False)
    assert per_pixel.shape == (64, 2, 3) and torch.allclose(per_pixel.sum((1, 2)), lp)


def test_pixelcnn_sampling_frequencies_match_the_exact_probabilities():
    torch.manual_seed(7)
    p = PixelCNN(2, 2, num_categories=2, channels=8, layers=1, kernel_size=3)
    randomise(p, 0.7)
    assert tv_of_samples(p, outcomes(4, 2), 40000) < 0.02
    q = PixelCNN(2, 2, num_categories=3, channels=8, layers=1, kernel_size=3, flatten=True)
    randomise(q, 0.7)
    assert tv_of_samples(q, outcomes(4, 3), 40000) < 0.03


class _Encoder(Normal):
    def __init__(self, x_dim, z_dim):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.net = nn.Linear(x_dim, 2 * z_dim)

    def forward(self, x):
        loc, s = self.net(x.reshape(x.shape[0], -1)).chunk(2, -1)
        return {"loc": loc, "scale": nn.functional.softplus(s) + 1e-3}


@pytest.mark.parametrize("flatten,bound", [(False, "elbo"), (True, "iwae")])
def test_pixelcnn_is_the_decoder_of_a_vae_that_trains(flatten, bound):
    torch.manual_seed(8)
    bars = torch.zeros(4, 4, 4)
    for j in range(4):
        bars[j, j] = 1  # four one-row images
    x = bars[torch.randint(0, 4, (64,))]
    x = x.reshape(64, 16) if flatten else x
    dec = PixelCNN(4, 4, num_categories=2, channels=16, layers=2, kernel_size=3,
                   cond_var=["z"], cond_dim=2, flatten=flatten)
    q = _Encoder(16, 2)
    prior = Normal(loc=0., scale=1., var=["z"], features_shape=[2], name="p_{prior}")
    loss = -ELBO(dec * prior, q).mean() if bound == "elbo" else \
        -IWAE(dec * prior, q, k=4).mean()
    model = Model(loss, distributions=[q, dec], optimizer=torch.optim.Adam,
                  optimizer_params={"lr": 1e-2})
    before = float(model.test({"x": x}))
    for _ in range(80):
        model.train({"x": x})
    after = float(model.test({"x": x}))
    assert math.isfinite(before) and after < before - 3.0, (before, after)
    draw = dec.sample({"z": torch.randn(3, 2)})["x"]
    assert draw.shape == ((3, 16) if flatten else (3, 4, 4))
    assert set(draw.unique().tolist()) <= {0.0, 1.0}


def test_errors_in_user_terms():
    p = PixelCNN(3, 3, channels=4, layers=1, kernel_size=3)
    with pytest.raises(ShapeError, match=r'p\(x\): "x" must have shape \(batch, 3, 3\), '
                                          r"got \(2, 9\)"):
        p.get_log_prob({"x": torch.zeros(2, 9)})
    with pytest.raises(ShapeError, match="give cond_dim"):
        PixelCNN(3, 3, cond_var=["z"])
    with pytest.raises(ShapeError, match="num_categories must be an integer >= 2, got 1"):
        PixelCNN(3, 3, num_categories=1)
    with pytest.raises(ShapeError, match="AutoregressiveCategorical: num_categories must be "
                                         "an integer >= 2, got 1"):
        AutoregressiveCategorical(3, 1)
    with pytest.raises(ValueError, match="mask_type is 'A' or 'B' and kernel_size is odd"):
        MaskedConv2d(1, 1, 4, "A")
    c = AutoregressiveCategorical(3, 4, hidden=4)
    with pytest.raises(ShapeError, match=r'"x" must have shape \(batch, 3\), got \(2, 2\)'):
        c.get_log_prob({"x": torch.zeros(2, 2)})
