"""A small VAE whose networks count their calls: q(z|x), a Bernoulli p(x|z) and the
standard Normal prior, at any widths (shared by the memo and repeats tests)."""
import torch
import torch.nn.functional as F
from torch import nn

from pixyz_pyro.dist import Bernoulli, Normal


class Inference(Normal):
    """q(z|x), a Normal whose scale is at least 0.1."""

    def __init__(self, x_dim: int, z_dim: int):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.fc = nn.Linear(x_dim, 2 * z_dim)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        loc, s = self.fc(x).chunk(2, -1)
        return {"loc": loc, "scale": F.softplus(s) + 0.1}


class Decoder(Bernoulli):
    """p(x|z) on probabilities."""

    def __init__(self, z_dim: int, x_dim: int):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.fc = nn.Linear(z_dim, x_dim)
        self.calls = 0

    def forward(self, z):
        self.calls += 1
        return {"probs": torch.sigmoid(self.fc(z))}


def prior(z_dim: int) -> Normal:
    return Normal(loc=torch.tensor(0.0), scale=torch.tensor(1.0), var=["z"],
                  features_shape=[z_dim], name="p_{prior}")
