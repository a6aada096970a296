"""Step time against the sequence length T for the deep Markov model of
:mod:`comparisons.dmm`.

Three implementations of the same negative ELBO (KL in closed form at each step, the
likelihood at the step's reparameterised draw, :math:`z_{t-1}` the previous draw):

* hand-written PyTorch: :class:`comparisons.dmm.HandwrittenDMM`, a Python loop over t;
* pixyz_pyro: :class:`comparisons.dmm.PixyzDMM`, ``IterativeLoss`` over T steps;
* Pyro: :class:`PyroDMM`, a model and a guide in the style of Pyro's DMM example, a loop
  over ``pyro.markov(range(T))`` in a batch plate, trained by ``SVI`` with
  ``TraceMeanField_ELBO`` (which takes the KL of each step in closed form, as the other
  two do; with ``Trace_ELBO`` the objective would be a different, Monte Carlo, one).

The three share the networks' initial weights (copied) and draw their noise in the same
order, so their first losses agree to 1e-6.
"""
import copy
from typing import Dict

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, TraceMeanField_ELBO

from .. import dmm
from .curve import Curve, Setup

X_DIM, Z_DIM, H_DIM, BATCH = 32, 16, 64, 16


class PyroDMM:
    """The deep Markov model as a Pyro model and guide over ``pyro.markov``."""

    def __init__(self, nets: dmm.Nets, lr: float = 1e-3):
        tag = f"dmm_{id(self):x}"

        def model(x, z0):
            pyro.module(tag, nets)
            z = z0
            with pyro.plate("batch", x.shape[1]):
                for t in pyro.markov(range(x.shape[0])):
                    loc, scale = nets.transition(z)
                    z = pyro.sample(f"z_{t}", dist.Normal(loc, scale).to_event(1))
                    pyro.sample(f"x_{t}", dist.Bernoulli(nets.emission(z)).to_event(1),
                                obs=x[t])

        def guide(x, z0):
            pyro.module(tag, nets)
            z = z0
            with pyro.plate("batch", x.shape[1]):
                for t in pyro.markov(range(x.shape[0])):
                    loc, scale = nets.inference(x[t], z)
                    z = pyro.sample(f"z_{t}", dist.Normal(loc, scale).to_event(1))

        self.svi = SVI(model, guide, pyro.optim.Adam({"lr": lr}), loss=TraceMeanField_ELBO())

    def step(self, data: Dict[str, torch.Tensor]) -> float:
        x = data["x"]
        return self.svi.step(x, data["z_prev"]) / x.shape[1]


def setup(t: int, device: str = "cpu", quick: bool = False, seed: int = 0) -> Setup:
    """The DMM over ``t`` steps (tiny networks with ``quick``)."""
    x_dim, z_dim, h_dim, batch = (6, 2, 8, 4) if quick else (X_DIM, Z_DIM, H_DIM, BATCH)
    torch.manual_seed(seed)
    nets = dmm.Nets(x_dim, z_dim, h_dim).to(device)
    g = torch.Generator().manual_seed(seed)
    data = [{"x": (torch.rand(t, batch, x_dim, generator=g) > 0.5).float().to(device),
             "z_prev": torch.zeros(batch, z_dim, device=device)} for _ in range(4)]
    factories = {
        "hand-written loop": lambda: dmm.HandwrittenDMM(copy.deepcopy(nets)),
        "pixyz_pyro IterativeLoss": lambda: dmm.PixyzDMM(copy.deepcopy(nets), t),
        "Pyro SVI, pyro.markov": lambda: PyroDMM(copy.deepcopy(nets)),
    }
    return Setup(factories, data, details={"x": x_dim, "z": z_dim, "h": h_dim,
                                           "batch": batch})


CURVE = Curve(
    name="sequence", title="Step time against the sequence length T (deep Markov model)",
    axis="sequence length T", sizes=(10, 20, 50, 100, 200, 500), quick_sizes=(2, 4),
    reference="hand-written loop", setup=setup,
    description="The DMM of comparisons/dmm.py (32 binary pixels, z 16, hidden 64, batch "
                "16), KL in closed form at each step; Pyro with TraceMeanField_ELBO.")
