"""Factors whose parameters one node reads once keep no memo entry
(:func:`pixyz_pyro.loss.plan.read_once`): their parameters are freed after their one use,
as in hand-written code, while every factor read twice still runs ``forward`` once."""
import weakref

import pytest
import torch
from _vae_world import Decoder, Inference, prior
from torch import nn

from pixyz_pyro.dist import Normal
from pixyz_pyro.loss import (
    ELBO,
    IWAE,
    Expectation,
    KullbackLeibler,
    LogProb,
)
from pixyz_pyro.loss.plan import compile_plan
from pixyz_pyro.model import Model

B = 4


class Link(Normal):
    """p(x_k | x_{k-1}) with a fixed scale; it keeps a weak reference to each mean."""

    def __init__(self, k):
        super().__init__(var=[f"x{k}"], cond_var=[f"x{k - 1}"], scale=torch.tensor(1.0),
                         name=f"p_{{{k}}}")
        self.fc = nn.Linear(2, 2)
        self.means, self.calls, self.before = [], 0, None

    def forward(self, **inputs):
        self.calls += 1
        if self.before is not None:  # the previous factor's mean, scored already
            self.before.alive.append(self.before.means[-1]() is not None)
        loc = self.fc(next(iter(inputs.values())))
        self.means.append(weakref.ref(loc))
        return {"loc": loc}


def chain(k=3):
    links = [Link(i) for i in range(1, k + 1)]
    for a, b in zip(links, links[1:]):
        b.before, a.alive = a, []
    joint = links[0]
    for f in links[1:]:
        joint = joint * f
    return links, joint


def vae():
    return Inference(3, 2), Decoder(2, 3), prior(2)


def ids(*dists):
    return frozenset(id(d) for d in dists)


def test_which_factors_are_read_once():
    links, joint = chain()
    assert compile_plan(-LogProb(joint).mean()).once == ids(*links)
    q, p, prior = vae()
    # the ELBO samples q and scores it: twice; p and the prior once
    assert compile_plan((-ELBO(p * prior, q)).mean()).once == ids(p, prior)
    # a closed-form KL counts as two reads of each side
    analytic = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean()
    assert compile_plan(analytic).once == ids(p)
    assert compile_plan((LogProb(p) + LogProb(p)).mean()).once == frozenset()
    # a node that may read a factor twice itself, or a distribution that is not a
    # product of plain factors: every factor keeps its memo entry
    assert compile_plan(-IWAE(p * prior, q, k=3).mean()).once == frozenset()
    assert compile_plan(-LogProb(p.replace_var(x="w")).mean()).once == frozenset()


def test_a_factor_read_once_is_freed_after_its_score():
    links, joint = chain()
    values = {f"x{i}": torch.randn(B, 2) for i in range(4)}
    loss = -LogProb(joint).mean()
    loss.eval(values)
    model = Model(loss, distributions=links, optimizer=torch.optim.SGD,
                  optimizer_params={"lr": 0.1})
    model.train(values)
    for a in links[:-1]:
        assert a.alive == [False, False]  # eval, then train
    assert all(f.calls == 2 for f in links)


@pytest.mark.parametrize("which", ["elbo", "analytic", "twice", "samples"])
def test_factors_read_twice_still_run_forward_once(which):
    q, p, prior = vae()
    loss = {"elbo": (-ELBO(p * prior, q)).mean(),
            "analytic": (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean(),
            "twice": Expectation(q, LogProb(p) + LogProb(p) - LogProb(q)).mean(),
            "samples": (-ELBO(p * prior, q, sample_shape=3)).mean()}[which]
    model = Model(loss, distributions=[q, p], optimizer=torch.optim.SGD,
                  optimizer_params={"lr": 0.1})
    x = torch.rand(B, 3).round()
    model.train({"x": x})
    loss.eval({"x": x})
    assert (q.calls, p.calls) == (2, 2)
