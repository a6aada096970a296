"""Step time against the batch size for the Table 1 VAE (z=10, h=400).

The implementations of :mod:`comparisons.vae`, :mod:`comparisons.vae_pixyz` and
:mod:`comparisons.vae_pyro`: hand-written PyTorch (analytic KL, BCE on probabilities, the
reference), pixyz_pyro ``Model`` on the analytic loss and on the Monte Carlo ELBO, and
Pyro's ``SVI`` with ``Trace_ELBO``.  Each analytic one must match the hand-written first
loss, each Monte Carlo one the hand-written Monte Carlo ELBO at the same draw
(:func:`comparisons.vae.mc_reference`), to 1e-6.  The images are random binary ones (the
arithmetic, hence the time, does not depend on the pixels).
"""
from typing import Dict

import torch

from ..vae import TorchBCE, mc_reference, reference_weights
from ..vae_pixyz import PixyzAnalytic, PixyzMC
from ..vae_pyro import PyroSVI
from .curve import FIRST_SEED, Curve, Setup

Z_DIM, H_DIM = 10, 400
IMPLEMENTATIONS = {"hand-written PyTorch": TorchBCE, "pixyz_pyro, analytic KL": PixyzAnalytic,
                   "pixyz_pyro, Monte Carlo ELBO": PixyzMC, "Pyro SVI, Trace_ELBO": PyroSVI}


def images(n: int, batch: int, device: str, seed: int):
    """``n`` batches of random binary 784-pixel images."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(batch, 784, generator=g) > 0.5).float().to(device) for _ in range(n)]


def vae_references(weights: Dict, z: int, h: int, x: torch.Tensor, reference: str):
    """References by group: the hand-written analytic loss, or the hand-written Monte
    Carlo ELBO at the first draw after :data:`~.curve.FIRST_SEED`."""
    def references(losses, impls):
        mc = mc_reference(weights, z, h, x, FIRST_SEED)
        return {n: losses[reference] if i.group == "analytic" else mc for n, i in impls.items()}
    return references


def setup(batch: int, device: str = "cpu", quick: bool = False, seed: int = 0) -> Setup:
    z, h = (2, 8) if quick else (Z_DIM, H_DIM)
    weights = reference_weights(z, h, seed)
    data = images(4, batch, device, seed)
    factories = {name: (lambda cls=cls: cls(weights, z, h, device=device))
                 for name, cls in IMPLEMENTATIONS.items()}
    return Setup(factories, data, vae_references(weights, z, h, data[0], CURVE.reference),
                 details={"z": z, "h": h})


CURVE = Curve(
    name="batch", title="Step time against the batch size (Table 1 VAE, z=10, h=400)",
    axis="batch size", sizes=(32, 64, 128, 256, 512, 1024, 2048, 4096), quick_sizes=(4, 8),
    reference="hand-written PyTorch", setup=setup,
    description="The Table 1 VAE (784 binary pixels, 2-layer MLPs, z=10, h=400); "
                "analytic-KL and Monte Carlo implementations, each checked against its "
                "hand-written objective.")
