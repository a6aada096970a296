"""The Table 1 VAE, and its hand-written PyTorch implementations.

The networks are those of Pyro's ``examples/vae/vae_comparison.py`` (after
pytorch/examples): a 2-layer MLP encoder and decoder,

* encoder: ``h = relu(W1 x)``, ``loc = W21 h``, ``scale = exp(W22 h)``;
* decoder: ``probs = sigmoid(W4 relu(W3 z))``;

with a standard-normal prior on ``z`` and a Bernoulli likelihood on the 784 binarised
pixels.  Every implementation in :mod:`comparisons` builds its own copy of these two
modules and loads the same weights, so that their objectives can be compared number for
number.

The objective is the negative ELBO in nats per image, averaged over the batch:

.. math::

    \\mathcal{L} = \\frac{1}{B} \\sum_n \\left( -\\log p(x_n | z_n)
    + D_{KL}[q(z|x_n) \\| p(z)] \\right), \\quad z_n = \\mu_n + \\sigma_n \\epsilon_n,

with the KL in closed form (the "analytic" group) or estimated by
:math:`\\log q(z_n|x_n) - \\log p(z_n)` at the same :math:`z_n` (the "mc" group: Pyro's
``Trace_ELBO`` and pixyz_pyro's ``ELBO``).
"""
import math
import warnings
from typing import Dict

import torch
from torch import nn
from torch.nn import functional as F

X_DIM = 784


class Encoder(nn.Module):
    """``q(z|x)``: ``(loc, scale)`` of a diagonal Normal."""

    def __init__(self, z_dim: int, h_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(X_DIM, h_dim)
        self.fc21 = nn.Linear(h_dim, z_dim)
        self.fc22 = nn.Linear(h_dim, z_dim)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        return self.fc21(h), torch.exp(self.fc22(h))


class Decoder(nn.Module):
    """``p(x|z)``: Bernoulli probabilities (``logits`` for the BCE-with-logits variant)."""

    def __init__(self, z_dim: int, h_dim: int):
        super().__init__()
        self.fc3 = nn.Linear(z_dim, h_dim)
        self.fc4 = nn.Linear(h_dim, X_DIM)

    def logits(self, z):
        return self.fc4(F.relu(self.fc3(z)))

    def forward(self, z):
        return torch.sigmoid(self.logits(z))


def reference_weights(z_dim: int, h_dim: int, seed: int = 0) -> Dict[str, Dict]:
    """The one set of initial weights every implementation loads."""
    torch.manual_seed(seed)
    return {"encoder": Encoder(z_dim, h_dim).state_dict(),
            "decoder": Decoder(z_dim, h_dim).state_dict()}


class Implementation:
    """One way to write the VAE's training step.

    Subclasses set ``name``, ``label`` and ``group`` ("analytic" or "mc"), build
    ``self.encoder`` and ``self.decoder`` (loaded with the reference weights) and
    implement :meth:`step`: zero the gradients, forward, backward, optimizer step, and
    return the loss per image as a Python float (the ``.item()``).
    """

    name = "?"
    label = "?"
    group = "analytic"

    def __init__(self, weights: Dict[str, Dict], z_dim: int, h_dim: int, lr: float = 1e-3,
                 device: str = "cpu"):
        self.encoder = Encoder(z_dim, h_dim).to(device)
        self.decoder = Decoder(z_dim, h_dim).to(device)
        self.load(weights)
        self.lr, self.device = lr, device

    def load(self, weights: Dict[str, Dict]) -> None:
        """Copy ``weights`` into the parameters in place (compiled and traced graphs, and
        optimizers, keep pointing at the same tensors)."""
        with torch.no_grad():
            for module, key in ((self.encoder, "encoder"), (self.decoder, "decoder")):
                for name, t in module.state_dict().items():
                    t.copy_(weights[key][name])

    def parameters(self):
        return list(self.encoder.parameters()) + list(self.decoder.parameters())

    def step(self, x: torch.Tensor) -> float:
        raise NotImplementedError


class TorchBCE(Implementation):
    """Hand-written PyTorch, as pytorch/examples: analytic KL, BCE on the probabilities."""

    name, label = "torch", "hand-written PyTorch (BCE on probs)"

    def __init__(self, weights, z_dim, h_dim, lr=1e-3, device="cpu"):
        super().__init__(weights, z_dim, h_dim, lr, device)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=lr)

    def loss(self, x):
        loc, scale = self.encoder(x)
        z = loc + scale * torch.randn_like(loc)
        bce = F.binary_cross_entropy(self.decoder(z), x, reduction="sum")
        kl = 0.5 * torch.sum(loc.pow(2) + scale.pow(2) - 1 - 2 * scale.log())
        return (bce + kl) / x.shape[0]

    def step(self, x):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(x)
        loss.backward()
        self.optimizer.step()
        return loss.item()


class TorchLogits(TorchBCE):
    """Hand-written PyTorch with ``binary_cross_entropy_with_logits`` on the decoder's
    logits (the faster, numerically safer form)."""

    name, label = "torch_logits", "hand-written PyTorch (BCE with logits)"

    def loss(self, x):
        loc, scale = self.encoder(x)
        z = loc + scale * torch.randn_like(loc)
        bce = F.binary_cross_entropy_with_logits(self.decoder.logits(z), x, reduction="sum")
        kl = 0.5 * torch.sum(loc.pow(2) + scale.pow(2) - 1 - 2 * scale.log())
        return (bce + kl) / x.shape[0]


class TorchFused(TorchBCE):
    """:class:`TorchBCE` with ``torch.optim.Adam(fused=True)``: the baseline of
    ``Model(check_every=...)``, which needs a fused optimizer."""

    name, label = "torch_fused", "hand-written PyTorch, fused Adam"

    def __init__(self, weights, z_dim, h_dim, lr=1e-3, device="cpu"):
        super().__init__(weights, z_dim, h_dim, lr, device)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=lr, fused=True)


class TorchCompiled(TorchBCE):
    """Hand-written PyTorch with its loss (and, through AOTAutograd, the backward) and its
    optimizer step under ``torch.compile`` in :attr:`mode`."""

    name, label = "torch_compile", "hand-written PyTorch, torch.compile"
    mode = None

    def __init__(self, weights, z_dim, h_dim, lr=1e-3, device="cpu"):
        super().__init__(weights, z_dim, h_dim, lr, device)
        options = {} if self.mode is None else {"mode": self.mode}
        with warnings.catch_warnings():  # torch's own deprecation notes on first import
            warnings.simplefilter("ignore", DeprecationWarning)
            self._loss = torch.compile(self.loss, **options)
            self._optimizer_step = torch.compile(self.optimizer.step, **options)

    def step(self, x):
        self.optimizer.zero_grad(set_to_none=True)
        if self.mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()
        loss = self._loss(x)
        loss.backward()
        self._optimizer_step()
        return loss.item()


class TorchCudaGraphs(TorchCompiled):
    """:class:`TorchCompiled` in ``mode="reduce-overhead"``: CUDA graphs on a GPU."""

    name, label = "torch_cudagraphs", "hand-written PyTorch, torch.compile(reduce-overhead)"
    mode = "reduce-overhead"


def mc_reference(weights: Dict[str, Dict], z_dim: int, h_dim: int, x: torch.Tensor,
                 seed: int) -> float:
    """The Monte Carlo negative ELBO per image, written out by hand (the reference of the
    "mc" group; not timed): the same draw of :math:`\\epsilon` as every implementation
    takes first after ``torch.manual_seed(seed)``."""
    impl = Implementation(weights, z_dim, h_dim, device=x.device)
    torch.manual_seed(seed)
    with torch.no_grad():
        loc, scale = impl.encoder(x)
        z = loc + scale * torch.randn_like(loc)
        log_px = -F.binary_cross_entropy(impl.decoder(z), x, reduction="none").sum(-1)
        half_log_2pi = 0.5 * math.log(2 * math.pi)
        log_q = (-((z - loc) / scale).pow(2) / 2 - scale.log() - half_log_2pi).sum(-1)
        log_pz = (-z.pow(2) / 2 - half_log_2pi).sum(-1)
        return float(-(log_px + log_pz - log_q).mean())
