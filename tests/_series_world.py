"""The networks of the series tests: an inference network q(z|x, z_prev) and a Bernoulli
emission p(x|z), for ``x_dim`` binary features and ``z_dim`` latent ones."""
import torch
import torch.nn.functional as F
from torch import nn

from pixyz_pyro.dist import Bernoulli, Normal


class Inference(Normal):
    def __init__(self, x_dim, z_dim):
        super().__init__(var=["z"], cond_var=["x", "z_prev"], name="q",
                         features_shape=[z_dim])
        self.fc = nn.Linear(x_dim + z_dim, 2 * z_dim)

    def forward(self, x, z_prev):
        loc, s = self.fc(torch.cat([x, z_prev], -1)).chunk(2, -1)
        return {"loc": loc, "scale": F.softplus(s) + 0.1}


class Emission(Bernoulli):
    def __init__(self, x_dim, z_dim):
        super().__init__(var=["x"], cond_var=["z"], name="p", features_shape=[x_dim])
        self.fc = nn.Linear(z_dim, x_dim)

    def forward(self, z):
        return {"probs": torch.sigmoid(self.fc(z))}
