"""Losses take distributions, not names or numbers."""
from pixyz_pyro.dist import Normal
from pixyz_pyro.loss import Expectation, KullbackLeibler, LogProb

p = Normal(var=["x"], loc=0.0, scale=1.0)
kl = KullbackLeibler(p, "q")  # rejected: 2 to "KullbackLeibler" .* "str"
e = Expectation(p, LogProb(1.0))  # rejected: 1 to "LogProb" .* "float"
