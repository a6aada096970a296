"""A Model takes a loss expression and distributions."""
import torch

from pixyz_pyro.dist import Normal
from pixyz_pyro.model import Model

p = Normal(var=["x"], loc=torch.zeros(1), scale=1.0)
model = Model("p", distributions=[p])  # rejected: 1 to "Model" .* "str"
