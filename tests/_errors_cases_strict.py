"""Catalogue cases of the evaluation core: strict signatures and shapes, checked on every
call (the world is warm: two steps were taken before each)."""
import torch
from _errors_world import case

import pixyz_pyro
from pixyz_pyro.dist import Normal
from pixyz_pyro.errors import KeywordError, LossError, ShapeError
from pixyz_pyro.loss import KullbackLeibler, LogProb


@case("A misspelt keyword of train, test or eval", KeywordError,
      "Model.train() got an unexpected keyword argument 'bacth_n' (did you mean "
      '"batch_n"?)', code='model.train({"x": x}, bacth_n=8)')
def keyword_typo(w):
    return lambda: w.model.train({"x": w.x}, bacth_n=8)


@case("A value whose features would broadcast", ShapeError,
      'p(x|z): "x" has shape (8, 1), but the parameters have shape (8, 4)',
      "features never broadcast", code='p.get_log_prob({"x": x[:, :1], "z": z})')
def features_broadcast(w):
    return lambda: w.p.get_log_prob({"x": w.x[:, :1], "z": torch.zeros(8, 2)})


@case("A value without its batch dimension, under strict validation", ShapeError,
      'p_{prior}(z): "z" has shape (2,), the features of this Normal, without a batch '
      "dimension; write z[None] (shape (1, 2)) for a batch of 1",
      code='with pixyz_pyro.validation("strict"):\n'
           '    prior.get_log_prob({"z": torch.zeros(2)})')
def unbatched(w):
    def call():
        with pixyz_pyro.validation("strict"):
            w.prior.get_log_prob({"z": torch.zeros(2)})
    return call


@case("A value without its batch dimension against a batch of parameters", ShapeError,
      'p(x|z): "x" has shape (4,), but the parameters have shape (8, 4)',
      code='p.get_log_prob({"x": x[0], "z": z})')
def unbatched_against_a_batch(w):
    return lambda: w.p.get_log_prob({"x": w.x[0], "z": torch.zeros(8, 2)})


@case("A KL divergence between different variables", LossError,
      "KullbackLeibler(q(z|x), p(w)): both sides must be distributions of the same variables",
      code='KullbackLeibler(q, Normal(loc=0., scale=1., var=["w"]))')
def kl_other_variables(w):
    return lambda: KullbackLeibler(w.q, Normal(loc=0., scale=1., var=["w"]))


@case("A loss plus a tensor that is not per batch element", ShapeError,
      "a tensor added to a loss must be a scalar or have one value per batch element",
      code="LogProb(p) + torch.zeros(8, 1)")
def loss_plus_matrix(w):
    return lambda: LogProb(w.p) + torch.zeros(8, 1)
