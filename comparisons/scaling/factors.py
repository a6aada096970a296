"""Step time against the number of factors in a joint: K chained Normals.

.. math::

    p(x_0, \\dots, x_{K-1}) = \\mathcal{N}(x_0 | \\mu_0, 1)
    \\prod_{k=1}^{K-1} \\mathcal{N}(x_k | W_k x_{k-1} + b_k, 1),

fitted by maximum likelihood on observed :math:`x_0, \\dots, x_{K-1}` (batch 8, 2
features: tiny tensors, so the step time is almost all per-factor overhead):

* hand-written PyTorch: the K log-densities summed, ``.mean()``, Adam;
* pixyz_pyro: ``Model(-LogProb(p_0 * p_1 * ... * p_{K-1}).mean())``, the joint built with
  ``functools.reduce`` as a user writes it;
* Pyro: a model with K observed ``pyro.sample`` sites in a plate, an empty guide,
  ``SVI(..., Trace_ELBO())`` (maximum likelihood; the loss is summed over the batch and
  divided by it).

All three start from copies of the same weights; their first losses agree to 1e-6.
"""
import copy
import math
from functools import reduce
from typing import Dict

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO
from torch import nn

from pixyz_pyro.dist import Normal
from pixyz_pyro.loss import LogProb
from pixyz_pyro.model import Model

from .curve import Curve, Setup

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
BATCH, DIM = 8, 2


class Chain(nn.Module):
    """:math:`\\mu_0` and the K-1 links :math:`x_{k-1} \\mapsto W_k x_{k-1} + b_k`."""

    def __init__(self, k: int, dim: int):
        super().__init__()
        self.root = nn.Parameter(torch.zeros(dim))
        self.links = nn.ModuleList(nn.Linear(dim, dim) for _ in range(k - 1))


class Handwritten:
    """The K log-densities written out."""

    def __init__(self, chain: Chain, lr: float = 1e-3):
        self.chain = chain
        self.optimizer = torch.optim.Adam(chain.parameters(), lr=lr)

    def loss(self, data: Dict[str, torch.Tensor]) -> torch.Tensor:
        def nll(x, loc):
            return ((x - loc) ** 2 / 2 + _HALF_LOG_2PI).sum(-1)

        total = nll(data["x0"], self.chain.root)
        for k, link in enumerate(self.chain.links, start=1):
            total = total + nll(data[f"x{k}"], link(data[f"x{k - 1}"]))
        return total.mean()

    def step(self, data: Dict[str, torch.Tensor]) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(data)
        loss.backward()
        self.optimizer.step()
        return loss.item()


class Link(Normal):
    """:math:`p_k(x_k | x_{k-1}) = \\mathcal{N}(W_k x_{k-1} + b_k, 1)`."""

    def __init__(self, k: int, linear: nn.Linear):
        super().__init__(var=[f"x{k}"], cond_var=[f"x{k - 1}"], name=f"p_{{{k}}}",
                         scale=torch.tensor(1.0))
        self.linear = linear
        self._input = f"x{k - 1}"

    def forward(self, **inputs):
        return {"loc": self.linear(inputs[self._input])}


class Pixyz:
    """``Model`` on the negative log-likelihood of the product of the K factors."""

    def __init__(self, chain: Chain, lr: float = 1e-3):
        device = chain.root.device
        root = Normal(loc=chain.root, scale=torch.tensor(1.0, device=device), var=["x0"],
                      name="p_{0}")
        factors = [root] + [Link(k, link).to(device)  # its fixed scale too
                            for k, link in enumerate(chain.links, start=1)]
        joint = reduce(lambda a, b: a * b, factors)
        self.model = Model(-LogProb(joint).mean(), distributions=factors,
                           optimizer=torch.optim.Adam, optimizer_params={"lr": lr})

    def step(self, data: Dict[str, torch.Tensor]) -> float:
        return self.model.train(data).item()


class PyroMLE:
    """K observed sites in a plate, an empty guide, ``Trace_ELBO``."""

    def __init__(self, chain: Chain, lr: float = 1e-3):
        tag = f"chain_{id(self):x}"

        def model(data):
            pyro.module(tag, chain)
            x0 = data["x0"]
            with pyro.plate("batch", x0.shape[0]):
                pyro.sample("x0", dist.Normal(chain.root, 1.0).expand(x0.shape).to_event(1),
                            obs=x0)
                for k, link in enumerate(chain.links, start=1):
                    pyro.sample(f"x{k}", dist.Normal(link(data[f"x{k - 1}"]), 1.0)
                                .to_event(1), obs=data[f"x{k}"])

        def guide(data):
            pass

        self.svi = SVI(model, guide, pyro.optim.Adam({"lr": lr}), loss=Trace_ELBO())

    def step(self, data: Dict[str, torch.Tensor]) -> float:
        return self.svi.step(data) / data["x0"].shape[0]


IMPLEMENTATIONS = {"hand-written PyTorch": Handwritten, "pixyz_pyro Model": Pixyz,
                   "Pyro SVI (empty guide)": PyroMLE}


def setup(k: int, device: str = "cpu", quick: bool = False, seed: int = 0) -> Setup:
    """K chained Normals: one initial :class:`Chain`, copied into each implementation."""
    torch.manual_seed(seed)
    chain = Chain(k, DIM).to(device)
    g = torch.Generator().manual_seed(seed)
    data = [{f"x{i}": torch.randn(BATCH, DIM, generator=g).to(device) for i in range(k)}
            for _ in range(4)]
    factories = {name: (lambda cls=cls: cls(copy.deepcopy(chain)))
                 for name, cls in IMPLEMENTATIONS.items()}
    return Setup(factories, data, details={"batch": BATCH, "features": DIM})


CURVE = Curve(
    name="factors", title="Step time against the number of factors in a joint",
    axis="factors K", sizes=(1, 2, 4, 8, 16, 32, 64, 128, 256), quick_sizes=(1, 3),
    reference="hand-written PyTorch", setup=setup,
    description="K chained Normals x_k ~ N(W_k x_{k-1} + b_k, 1), maximum likelihood on "
                "observed x (batch 8, 2 features): the step is almost all per-factor "
                "overhead.")
