"""Step time against the number of Monte Carlo samples for the Table 1 VAE's ELBO
(z=10, h=400, batch 128).

.. math::

    \\mathcal{L} = -\\frac{1}{B}\\sum_n \\frac{1}{S}\\sum_{s=1}^{S}
    \\left[\\log p(x_n | z_{n,s}) + \\log p(z_{n,s}) - \\log q(z_{n,s} | x_n)\\right],
    \\quad z_{n,s} = \\mu_n + \\sigma_n \\epsilon_{n,s},

with the S draws vectorised, in three implementations:

* hand-written PyTorch: one ``randn(S, B, z)``, the decoder on all ``S x B`` rows;
* pixyz_pyro: ``Model(-ELBO(p * prior, q, sample_shape=S).mean())``, i.e.
  ``Expectation(q, LogProb(p * prior) - LogProb(q), sample_shape=S)``;
* Pyro: ``Trace_ELBO(num_particles=S, vectorize_particles=True)`` on the hand-written
  model and guide of :mod:`comparisons.vae_pyro`.

All draw the :math:`S \\times B` noise in one call after the same seed, so their first
losses agree to 1e-6.  Vectorised, the time should grow sublinearly in S until the
decoder's arithmetic dominates.
"""
import math

import torch
from pyro.infer import Trace_ELBO
from torch.nn import functional as F

from pixyz_pyro.loss import ELBO

from ..vae import TorchBCE, reference_weights
from ..vae_pixyz import PixyzMC
from ..vae_pyro import PyroSVI
from .batch import H_DIM, Z_DIM, images
from .curve import Curve, Setup

BATCH = 128
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class TorchParticles(TorchBCE):
    """The S-sample ELBO written out, vectorised over the samples."""

    name, label, group = "torch_particles", "hand-written PyTorch, S particles", "mc"
    particles = 1

    def loss(self, x):
        loc, scale = self.encoder(x)
        z = loc + scale * torch.randn(self.particles, *loc.shape, device=loc.device)
        log_px = -F.binary_cross_entropy(self.decoder(z), x.expand(z.shape[0], *x.shape),
                                         reduction="none").sum(-1)
        log_pz = (-z.pow(2) / 2 - _HALF_LOG_2PI).sum(-1)
        log_q = (-((z - loc) / scale).pow(2) / 2 - scale.log() - _HALF_LOG_2PI).sum(-1)
        return -(log_px + log_pz - log_q).mean()


class PixyzParticles(PixyzMC):
    """``Model`` on ``-ELBO(p * prior, q, sample_shape=S).mean()``."""

    particles = 1

    def make_loss(self, q, p, prior):
        return (-ELBO(p * prior, q, sample_shape=self.particles)).mean()


class PyroParticles(PyroSVI):
    """``Trace_ELBO(num_particles=S, vectorize_particles=True)``."""

    particles = 1

    def elbo(self):
        return Trace_ELBO(num_particles=self.particles, vectorize_particles=True,
                          max_plate_nesting=1)


IMPLEMENTATIONS = {"hand-written PyTorch, vectorised": TorchParticles,
                   "pixyz_pyro Expectation(sample_shape=S)": PixyzParticles,
                   "Pyro Trace_ELBO(vectorize_particles)": PyroParticles}


def _with_particles(cls, n: int):
    return type(cls.__name__, (cls,), {"particles": n})


def setup(n: int, device: str = "cpu", quick: bool = False, seed: int = 0) -> Setup:
    z, h, batch = (2, 8, 4) if quick else (Z_DIM, H_DIM, BATCH)
    weights = reference_weights(z, h, seed)
    data = images(4, batch, device, seed)
    classes = {name: _with_particles(cls, n) for name, cls in IMPLEMENTATIONS.items()}
    factories = {name: (lambda cls=cls: cls(weights, z, h, device=device))
                 for name, cls in classes.items()}
    return Setup(factories, data, details={"z": z, "h": h, "batch": batch})


CURVE = Curve(
    name="particles", title="Step time against the number of samples S (Monte Carlo ELBO)",
    axis="samples S (sample_shape)", sizes=(1, 2, 4, 8, 16, 32, 64), quick_sizes=(1, 3),
    reference="hand-written PyTorch, vectorised", setup=setup,
    description="The Table 1 VAE (z=10, h=400, batch 128) trained on the S-sample Monte "
                "Carlo ELBO, the S draws vectorised in every implementation.")
