"""Correct user code: ``mypy --strict`` accepts all of it (tests/test_typing.py)."""
from typing import Dict

import torch
from torch import nn

from pixyz_pyro.dist import Bernoulli, Normal
from pixyz_pyro.loss import ELBO, Expectation, KullbackLeibler, LogProb, Loss
from pixyz_pyro.model import VAE, Model


class Encoder(Normal):
    """q(z|x): a network that gives the Normal's parameters."""

    def __init__(self) -> None:
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        h = self.fc(x)
        return {"loc": h[:, :2], "scale": nn.functional.softplus(h[:, 2:])}


class Decoder(Bernoulli):
    """p(x|z)."""

    def __init__(self) -> None:
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.fc = nn.Linear(2, 4)

    def forward(self, z: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {"probs": torch.sigmoid(self.fc(z))}


q = Encoder()
p = Decoder()
prior = Normal(var=["z"], loc=torch.tensor(0.0), scale=torch.tensor(1.0), features_shape=[2],
               name="p_{prior}")
loss: Loss = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean()
elbo: Loss = ELBO(p * prior, q).mean()
model = Model(loss, distributions=[p, q], optimizer=torch.optim.Adam,
              optimizer_params={"lr": 1e-3})
vae = VAE(q, p, regularizer=KullbackLeibler(q, prior).mean(), optimizer_params={"lr": 1e-3})
x = torch.zeros(3, 4)
value: float = loss.eval({"x": x}).item()
train_value: float = model.train({"x": x}).item()
test_value: float = model.test({"x": x}).item()
samples: Dict[str, torch.Tensor] = q.sample({"x": x})
