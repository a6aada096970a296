"""Catalogue cases, part 3: arguments refused at construction, and checkpoints refused
as a whole (issue 17)."""
import os
import random

import numpy as np
import torch
from _errors_cases_train import _TMP
from _errors_world import Decoder, Encoder, case
from torch import nn

from pixyz_pyro.dist import Deterministic, Normal
from pixyz_pyro.errors import ArgumentError, CheckpointError, ModelError
from pixyz_pyro.loss import LogProb
from pixyz_pyro.model import GAN, VAE, Model, OptimizerError


class _Generators:
    """Watch every generator a load restores: torch, Python and NumPy."""

    def state_dict(self):
        name, keys, pos, has_gauss, cached = np.random.get_state()
        return {"torch": torch.get_rng_state(), "python": random.getstate(),
                "numpy": (name, keys.tobytes(), pos, has_gauss, cached)}


def _tampered(world, name, edit, model=None):
    """The checkpoint of ``model`` (default: the world's), edited, in the catalogue's
    temporary folder; the generators are watched too."""
    state = (model or world.model).state_dict()
    edit(state)
    path = os.path.join(_TMP, name)
    torch.save(state, path)
    world.watch(_Generators())
    return path


# --- arguments -----------------------------------------------------------------------------
@case("A negative clip_grad_norm (it would turn into gradient ascent)", ArgumentError,
      "Model: clip_grad_norm must be a positive number, got -1.0",
      "a negative threshold would scale the gradients by a negative factor",
      code="Model(loss, distributions=[p, q], clip_grad_norm=-1.0)")
def clip_negative(w):
    return lambda: Model(w.loss, distributions=[w.p, w.q], clip_grad_norm=-1.0)


@case("A clip_grad_value of zero", ArgumentError,
      "Model: clip_grad_value must be a positive number, got 0 (None turns clipping off",
      code="Model(loss, distributions=[p, q], clip_grad_value=0)")
def clip_zero(w):
    return lambda: Model(w.loss, distributions=[w.p, w.q], clip_grad_value=0)


@case("One distribution where a list is expected", ArgumentError,
      "Model: distributions must be a list of Distribution, got the single distribution "
      "q(z|x); wrap it in a list", code="Model(loss, distributions=q)")
def one_distribution(w):
    return lambda: Model(w.loss, distributions=w.q)


@case("Distributions passed positionally land in test_loss", ArgumentError,
      "Model: test_loss got a list [p(x|z), q(z|x)]: the second positional parameter of "
      "Model is test_loss; pass the distributions by keyword",
      code="Model(loss, [p, q])")
def distributions_positional(w):
    return lambda: Model(w.loss, [w.p, w.q])


@case("A listed distribution that takes no part in the loss", ArgumentError,
      "Model: the distributions [r(u)] take no part in the loss",
      "they would get no gradient and never train",
      "or pass allow_unused=True",
      code="Model(loss, distributions=[p, q, Normal(..., var=['u'], name='r')])")
def unused_distribution(w):
    r = Normal(loc=nn.Parameter(torch.zeros(2)), scale=1.0, var=["u"], name="r")
    return lambda: Model(w.loss, distributions=[w.p, w.q, r])


@case("An optimizer that needs a closure", OptimizerError,
      "Model: optimizer=torch.optim.lbfgs.LBFGS needs a closure",
      "use a first-order optimizer (torch.optim.Adam, SGD, ...)",
      code="Model(loss, distributions=[p, q], optimizer=torch.optim.LBFGS)")
def closure_optimizer(w):
    return lambda: Model(w.loss, distributions=[w.p, w.q], optimizer=torch.optim.LBFGS)


@case("float16 parameters on the CPU", ModelError,
      "Model: p(x|z) has float16 parameters on the CPU (net.weight, net.bias)",
      "Use torch.bfloat16 (Decoder.to(torch.bfloat16)) or float32",
      code="Model(-LogProb(p.half()).mean(), distributions=[p])")
def float16_cpu(w):
    p = Decoder().half()
    return lambda: Model(-LogProb(p).mean(), distributions=[p])


@case("A preset given a list where one distribution is expected", ArgumentError,
      "VAE: encoder must be a pixyz_pyro Distribution, got list; pass one distribution "
      "here (the others go in other_distributions)", code="VAE([q, q2], p)")
def preset_list(w):
    return lambda: VAE([w.q, Encoder(name="q_2")], w.p)


# --- checkpoints ---------------------------------------------------------------------------
@case("A checkpoint whose Adam state lacks its second moments", CheckpointError,
      "adam.pt': the optimizer state of parameter 0 (group 0) has the entries "
      "['exp_avg', 'step'] in the file; Adam keeps ['exp_avg', 'exp_avg_sq', 'step']",
      code="del state['optimizer']['state'][0]['exp_avg_sq']; model.load(path)")
def load_adam_without_second_moments(w):
    path = _tampered(w, "adam.pt", lambda s: s["optimizer"]["state"][0].pop("exp_avg_sq"))
    return lambda: w.model.load(path)


@case("A checkpoint with a sparse tensor of the right shape", CheckpointError,
      "sparse.pt': q(z|x): loc.weight is a sparse_coo tensor in the file; only dense "
      "tensors load", code="state['distributions'][1][1]['loc.weight'] = w.to_sparse()")
def load_sparse(w):
    def edit(s):
        q = s["distributions"][1][1]
        q["loc.weight"] = q["loc.weight"].to_sparse()

    path = _tampered(w, "sparse.pt", edit)
    return lambda: w.model.load(path)


@case("A checkpoint weight of another dtype", CheckpointError,
      "double.pt' does not fit p(x|z): net.weight has dtype torch.float64 in the file, "
      "torch.float32 in the model",
      code="state['distributions'][0][1]['net.weight'] = w.double()")
def load_other_dtype(w):
    def edit(s):
        p = s["distributions"][0][1]
        p["net.weight"] = p["net.weight"].double()

    path = _tampered(w, "double.pt", edit)
    return lambda: w.model.load(path)


@case("A checkpoint with a hostile NumPy RNG state", CheckpointError,
      "numpy.pt': the NumPy RNG state is malformed (rng['numpy']: position 100000 is not "
      "an int in [0, 624])", code="state['rng']['numpy'] = ('MT19937', keys, 100000, 0, 0.)")
def load_hostile_numpy(w):
    def edit(s):
        name, keys, _, has_gauss, cached = s["rng"]["numpy"]
        s["rng"]["numpy"] = (name, keys, 100000, has_gauss, cached)

    path = _tampered(w, "numpy.pt", edit)
    return lambda: w.model.load(path)


@case("A checkpoint whose skipped-step count is a string", CheckpointError,
      "skipped.pt': skipped_steps '3' is not a count (a non-negative int)",
      code="state['skipped_steps'] = '3'; model.load(path)")
def load_skipped_string(w):
    path = _tampered(w, "skipped.pt", lambda s: s.update(skipped_steps="3"))
    return lambda: w.model.load(path)


class _D(Deterministic):
    def __init__(self):
        super().__init__(var=["t"], cond_var=["x"], name="d")
        self.net = nn.Linear(4, 1)

    def forward(self, x):
        return {"t": torch.sigmoid(self.net(x))}


def _gan(d_optimizer, **d_params):
    p = Normal(loc=nn.Parameter(torch.zeros(4)), scale=1.0, var=["x"], features_shape=[4])
    gan = GAN(p, _D(), d_optimizer=d_optimizer, d_optimizer_params=d_params)
    gan.train({"x": torch.rand(8, 4)})
    return gan


@case("A GAN checkpoint made with another discriminator optimizer", CheckpointError,
      "gan_sgd.pt': d_optimizer was SGD in the file, Adam in the model",
      code="GAN(p, d, d_optimizer=torch.optim.SGD).save(path); GAN(p, d).load(path)")
def load_gan_other_optimizer(w):
    path = _tampered(w, "gan_sgd.pt", lambda s: None,
                     model=_gan(torch.optim.SGD, lr=0.1, momentum=0.9))
    gan = _gan(torch.optim.Adam)
    w.watch(gan, gan.discriminator, gan.d_optimizer)
    return lambda: gan.load(path)
