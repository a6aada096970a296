"""A deep Markov model over T = 50 steps: ``IterativeLoss`` against a hand-written loop.

The model (a filtering variant of Krishnan et al.'s DMM), for binary frames
:math:`x_t \\in \\{0, 1\\}^{D}`:

.. math::

    p(z_t | z_{t-1}) = \\mathcal{N}(\\mu(z_{t-1}), \\sigma(z_{t-1})), \\quad
    p(x_t | z_t) = \\mathrm{Bernoulli}(\\pi(z_t)), \\quad
    q(z_t | x_t, z_{t-1}) = \\mathcal{N}(\\mu_q(x_t, z_{t-1}), \\sigma_q(x_t, z_{t-1}))

and the negative ELBO, averaged over the batch,

.. math::

    \\mathcal{L} = \\mathrm{mean}\\sum_{t=0}^{T-1}\\left(D_{KL}[q(z_t|x_t, z_{t-1}) \\|
    p(z_t|z_{t-1})] - \\mathbb{E}_{q(z_t|x_t, z_{t-1})}[\\log p(x_t|z_t)]\\right),

where :math:`z_{t-1}` is the sample drawn at step :math:`t-1` (``update_value={"z":
"z_prev"}``) and :math:`z_{-1} = 0`.  The hand-written loop computes the same terms
with the same formulas and the same draws (checked to 1e-6 before timing).
"""
import time
from typing import Dict

import torch
from torch import nn
from torch.nn import functional as F

from pixyz_pyro import validation
from pixyz_pyro.dist import Bernoulli, Normal
from pixyz_pyro.loss import Expectation, IterativeLoss, KullbackLeibler, LogProb
from pixyz_pyro.model import Model


class Nets(nn.Module):
    """The three networks, shared by both implementations (weights are copied)."""

    def __init__(self, x_dim: int, z_dim: int, h_dim: int):
        super().__init__()
        self.trans = nn.Sequential(nn.Linear(z_dim, h_dim), nn.ReLU(), nn.Linear(h_dim, 2 * z_dim))
        self.emit = nn.Sequential(nn.Linear(z_dim, h_dim), nn.ReLU(), nn.Linear(h_dim, x_dim))
        self.infer = nn.Sequential(nn.Linear(x_dim + z_dim, h_dim), nn.ReLU(),
                                   nn.Linear(h_dim, 2 * z_dim))

    def transition(self, z_prev):
        loc, s = self.trans(z_prev).chunk(2, dim=-1)
        return loc, F.softplus(s)

    def emission(self, z):
        return torch.sigmoid(self.emit(z))

    def inference(self, x, z_prev):
        loc, s = self.infer(torch.cat([x, z_prev], dim=-1)).chunk(2, dim=-1)
        return loc, F.softplus(s)


class HandwrittenDMM:
    """The loop written out in PyTorch."""

    def __init__(self, nets: Nets, lr: float = 1e-3):
        self.nets = nets
        self.optimizer = torch.optim.Adam(nets.parameters(), lr=lr)

    def loss(self, x: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        z_prev, total = z0, 0
        for t in range(x.shape[0]):
            loc_q, scale_q = self.nets.inference(x[t], z_prev)
            loc_p, scale_p = self.nets.transition(z_prev)
            var_ratio = (scale_q / scale_p).pow(2)
            t1 = ((loc_q - loc_p) / scale_p).pow(2)
            kl = (0.5 * (var_ratio + t1 - 1 - var_ratio.log())).sum(-1)
            z = loc_q + torch.randn_like(loc_q) * scale_q
            nll = F.binary_cross_entropy(self.nets.emission(z), x[t], reduction="none").sum(-1)
            total = total + kl + nll
            z_prev = z
        return total.mean()

    def step(self, data: Dict[str, torch.Tensor]) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(data["x"], data["z_prev"])
        loss.backward()
        self.optimizer.step()
        return loss.item()


class Transition(Normal):
    def __init__(self, nets: Nets):
        super().__init__(var=["z"], cond_var=["z_prev"], name="p")
        self.nets = nets

    def forward(self, z_prev):
        loc, scale = self.nets.transition(z_prev)
        return {"loc": loc, "scale": scale}


class Emission(Bernoulli):
    def __init__(self, nets: Nets):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.nets = nets

    def forward(self, z):
        return {"probs": self.nets.emission(z)}


class Inference(Normal):
    def __init__(self, nets: Nets):
        super().__init__(var=["z"], cond_var=["x", "z_prev"], name="q")
        self.nets = nets

    def forward(self, x, z_prev):
        loc, scale = self.nets.inference(x, z_prev)
        return {"loc": loc, "scale": scale}


class PixyzDMM:
    """The same model as an ``IterativeLoss`` trained by ``Model``."""

    def __init__(self, nets: Nets, steps: int, lr: float = 1e-3, compile: bool = False):
        self.nets = nets
        q, trans, emit = Inference(nets), Transition(nets), Emission(nets)
        step_loss = KullbackLeibler(q, trans) - Expectation(q, LogProb(emit))
        self.loss_expr = IterativeLoss(step_loss, max_iter=steps, series_var=["x"],
                                       update_value={"z": "z_prev"}).mean()
        self.model = Model(self.loss_expr, distributions=[q, trans, emit],
                           optimizer=torch.optim.Adam, optimizer_params={"lr": lr},
                           compile=compile)

    def step(self, data: Dict[str, torch.Tensor]) -> float:
        return self.model.train(data).item()


class PixyzDMMUnchecked(PixyzDMM):
    """:class:`PixyzDMM` with validation off (``pixyz_pyro.validation("off")``): not a
    configuration to benchmark by, the default checks every step, but what the checks
    cost, read as the difference from :class:`PixyzDMM`'s step in the same run."""

    def step(self, data: Dict[str, torch.Tensor]) -> float:
        with validation("off"):
            return self.model.train(data).item()


#: The name of the compiled implementation in :func:`build`'s result.
COMPILED = "pixyz_pyro IterativeLoss, compile=True"
#: The name of :class:`PixyzDMMUnchecked` in :func:`build`'s result.
UNCHECKED = "pixyz_pyro IterativeLoss, validation off"


def build(x_dim: int = 32, z_dim: int = 16, h_dim: int = 64, steps: int = 50,
          batch: int = 16, seed: int = 0, device: str = "cpu", compiled: bool = False,
          unchecked: bool = False):
    """Both implementations on copies of the same weights, and a few batches, on
    ``device``; with ``unchecked``, also :class:`PixyzDMMUnchecked`; with ``compiled``,
    also ``Model(..., compile=True)`` (not yet compiled: see :func:`warm_compiled`)."""
    torch.manual_seed(seed)
    nets = Nets(x_dim, z_dim, h_dim).to(device)

    def copy() -> Nets:  # the same weights
        twin = Nets(x_dim, z_dim, h_dim).to(device)
        twin.load_state_dict(nets.state_dict())
        return twin
    g = torch.Generator().manual_seed(seed)
    data = [{"x": (torch.rand(steps, batch, x_dim, generator=g) > 0.5).float().to(device),
             "z_prev": torch.zeros(batch, z_dim, device=device)} for _ in range(4)]
    impls = {"hand-written loop": HandwrittenDMM(nets), "pixyz_pyro IterativeLoss":
             PixyzDMM(copy(), steps)}
    if unchecked:
        impls[UNCHECKED] = PixyzDMMUnchecked(copy(), steps)
    if compiled:
        impls[COMPILED] = PixyzDMM(copy(), steps, compile=True)
    return impls, data


def warm_compiled(impl: PixyzDMM, data) -> float:
    """Compile ``impl`` (an eager step, then the first compiled one) and put its initial
    weights back in place, so that it starts where the others do; the seconds it took."""
    initial = {k: v.clone() for k, v in impl.nets.state_dict().items()}
    start = time.perf_counter()
    for _ in range(2):
        impl.step(data[0])
    seconds = time.perf_counter() - start
    with torch.no_grad():
        for k, v in impl.nets.state_dict().items():
            v.copy_(initial[k])
    return seconds


def same_objective(impls: Dict, data, seed: int = 1) -> Dict[str, float]:
    """The loss of one step of each, from the same weights, batch and seed."""
    out = {}
    for name, impl in impls.items():
        torch.manual_seed(seed)
        out[name] = impl.step(data[0])
    return out
