"""The Table 1 VAE in pixyz_pyro: the loss written as in the paper, trained by ``Model``.

.. math::

    \\mathcal{L} = \\mathrm{mean}\\left(D_{KL}[q(z|x) \\| p(z)]
    - \\mathbb{E}_{q(z|x)}[\\log p(x|z)]\\right)
    \\quad\\text{or}\\quad
    \\mathrm{mean}\\left(-\\mathbb{E}_{q(z|x)}[\\log p(x,z) - \\log q(z|x)]\\right)

or the Monte Carlo KL written out, :math:`\\mathbb{E}_{q}[\\log q(z|x) - \\log p(z)]`,
and turned into the first by ``loss.rewritten()``.

The distributions wrap the very encoder and decoder modules of
:class:`comparisons.vae.Implementation`, so the weights are shared, not copied.
"""
import torch

from pixyz_pyro.dist import Bernoulli, Normal
from pixyz_pyro.loss import ELBO, Expectation, KullbackLeibler, LogProb
from pixyz_pyro.model import Model

from .vae import Implementation


class Inference(Normal):
    """:math:`q(z|x)` around an :class:`~comparisons.vae.Encoder`."""

    def __init__(self, encoder):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.net = encoder

    def forward(self, x):
        loc, scale = self.net(x)
        return {"loc": loc, "scale": scale}


class Generator(Bernoulli):
    """:math:`p(x|z)` around a :class:`~comparisons.vae.Decoder`."""

    def __init__(self, decoder):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.net = decoder

    def forward(self, z):
        return {"probs": self.net(z)}


def distributions(impl: Implementation, z_dim: int):
    """``q(z|x)``, ``p(x|z)`` and the prior ``p(z)`` on ``impl``'s modules."""
    prior = Normal(loc=torch.tensor(0.0), scale=torch.tensor(1.0), var=["z"],
                   features_shape=[z_dim], name="p_{prior}")
    return Inference(impl.encoder), Generator(impl.decoder), prior.to(impl.device)


class PixyzAnalytic(Implementation):
    """``Model`` on :math:`D_{KL}` in closed form minus the expected log-likelihood."""

    name, label = "pixyz", "pixyz_pyro, analytic KL (Model)"
    compile = False
    #: ``Model(check_every=...)``; above 1 with a fused Adam.
    check_every = 1

    def __init__(self, weights, z_dim, h_dim, lr=1e-3, device="cpu"):
        super().__init__(weights, z_dim, h_dim, lr, device)
        q, p, prior = distributions(self, z_dim)
        fused = {"fused": True} if self.check_every > 1 else {}
        self.model = Model(self.make_loss(q, p, prior), distributions=[p, q],
                           optimizer=torch.optim.Adam, optimizer_params={"lr": lr, **fused},
                           compile=self.compile, check_every=self.check_every)

    @staticmethod
    def make_loss(q, p, prior):
        return (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean()

    def step(self, x):
        return self.model.train({"x": x}).item()


class PixyzMC(PixyzAnalytic):
    """``Model`` on the Monte Carlo ELBO, :math:`-\\mathbb{E}_q[\\log p(x,z) - \\log q]`."""

    name, label, group = "pixyz_mc", "pixyz_pyro, Monte Carlo ELBO (Model)", "mc"

    @staticmethod
    def make_loss(q, p, prior):
        return (-ELBO(p * prior, q)).mean()


class PixyzRewritten(PixyzAnalytic):
    """``Model`` on the Monte Carlo KL as one writes it,
    :math:`\\mathbb{E}_q[\\log q(z|x) - \\log p(z)] - \\mathbb{E}_q[\\log p(x|z)]`, passed
    through ``loss.rewritten()``: the analytic loss of :class:`PixyzAnalytic`, found by
    the rewrite."""

    name, label = "pixyz_rewritten", "pixyz_pyro, MC KL through loss.rewritten() (Model)"

    @staticmethod
    def make_loss(q, p, prior):
        written = Expectation(q, LogProb(q) - LogProb(prior)) - Expectation(q, LogProb(p))
        return written.mean().rewritten()


class PixyzCompiled(PixyzAnalytic):
    """``Model(..., compile=True)`` on the analytic loss."""

    name, label = "pixyz_compile", "pixyz_pyro, Model(compile=True)"
    compile = True


class PixyzDeferred(PixyzAnalytic):
    """``Model(..., check_every=16)`` with a fused Adam: the step guard's verdict stays on
    the device and is read once in 16 steps (against :class:`~comparisons.vae.TorchFused`)."""

    name, label = "pixyz_deferred", "pixyz_pyro, Model(check_every=16), fused Adam"
    check_every = 16


class PixyzCudaGraphs(PixyzAnalytic):
    """``Model(..., compile="reduce-overhead")``: CUDA graphs on a GPU."""

    name, label = "pixyz_cudagraphs", 'pixyz_pyro, Model(compile="reduce-overhead")'
    compile = "reduce-overhead"
