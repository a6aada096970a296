"""Small models shared by the Pyro-side tests: a VAE, an M2 model, and a comparison
helper.  Sizes are tiny so that every test runs in well under a second."""
import torch
from torch import nn
from torch.nn import functional as F

from pixyz_pyro.dist import Bernoulli, Categorical, Normal

X, Z, K, H = 6, 2, 3, 8


def cat(*ts: torch.Tensor) -> torch.Tensor:
    """Concatenate along the last dim after broadcasting the leading dims, so that a
    network accepts an enumerated one-hot ``y`` of shape ``(K, 1, K)`` beside ``x`` of
    shape ``(B, X)``."""
    shape = torch.broadcast_shapes(*(t.shape[:-1] for t in ts))
    return torch.cat([t.expand(*shape, t.shape[-1]) for t in ts], -1)


class Encoder(Normal):
    """q(z|x)"""

    def __init__(self):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.fc = nn.Linear(X, H)
        self.fc_loc = nn.Linear(H, Z)
        self.fc_scale = nn.Linear(H, Z)

    def forward(self, x):
        h = torch.tanh(self.fc(x))
        return {"loc": self.fc_loc(h), "scale": F.softplus(self.fc_scale(h))}


class Decoder(Bernoulli):
    """p(x|z)"""

    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.fc = nn.Linear(Z, H)
        self.fc_out = nn.Linear(H, X)

    def forward(self, z):
        return {"probs": torch.sigmoid(self.fc_out(torch.tanh(self.fc(z))))}


def prior_z() -> Normal:
    return Normal(loc=torch.tensor(0.), scale=torch.tensor(1.), var=["z"],
                  features_shape=[Z], name="p_{prior}")


def vae():
    """``(q, p, prior)`` with fresh networks."""
    return Encoder(), Decoder(), prior_z()


class M2Encoder(Normal):
    """q(z|x,y)"""

    def __init__(self):
        super().__init__(var=["z"], cond_var=["x", "y"], name="q")
        self.fc = nn.Linear(X + K, H)
        self.fc_loc = nn.Linear(H, Z)
        self.fc_scale = nn.Linear(H, Z)

    def forward(self, x, y):
        h = torch.tanh(self.fc(cat(x, y)))
        return {"loc": self.fc_loc(h), "scale": F.softplus(self.fc_scale(h))}


class M2Classifier(Categorical):
    """q(y|x)"""

    def __init__(self):
        super().__init__(var=["y"], cond_var=["x"], name="q")
        self.fc = nn.Linear(X, K)

    def forward(self, x):
        return {"probs": torch.softmax(self.fc(x), -1)}


class M2Decoder(Bernoulli):
    """p(x|z,y)"""

    def __init__(self):
        super().__init__(var=["x"], cond_var=["z", "y"], name="p")
        self.fc = nn.Linear(Z + K, H)
        self.fc_out = nn.Linear(H, X)

    def forward(self, z, y):
        return {"probs": torch.sigmoid(self.fc_out(torch.tanh(self.fc(cat(z, y)))))}


def m2():
    """``(q_z, q_y, p, prior_z, prior_y)`` of Kingma et al.'s M2 model."""
    prior_y = Categorical(probs=torch.ones(K) / K, var=["y"], name="p_{prior}")
    return M2Encoder(), M2Classifier(), M2Decoder(), prior_z(), prior_y


def params_of(*modules):
    return [t for m in modules for t in m.parameters()]


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max|a - b| / max|b|``: the relative difference the tests bound by 1e-5."""
    a, b = torch.as_tensor(a).detach(), torch.as_tensor(b).detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def value_and_grads(value: torch.Tensor, params):
    """The value and the gradient of every parameter (zeros where it does not reach)."""
    grads = torch.autograd.grad(value, params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    return value.detach(), grads


def max_rel_grads(ga, gb) -> float:
    return max(rel_diff(a, b) for a, b in zip(ga, gb))
