"""Catalogue cases, part 2: training, optimizers, checkpoints, time series, Pyro."""
import os
import tempfile

import pyro
import pyro.distributions as pdist
import pyro.optim
import torch
from _errors_world import Decoder, Encoder, World, case, prior
from torch import nn

from pixyz_pyro.dist import Bernoulli, Categorical, CustomProb, Normal
from pixyz_pyro.errors import (
    CheckpointError,
    LossError,
    ModelError,
    NonFiniteError,
    ShapeError,
    VariableError,
)
from pixyz_pyro.infer import from_pyro, to_pyro
from pixyz_pyro.infer.translate import PyroTranslationError
from pixyz_pyro.loss import Expectation, IterativeLoss, KullbackLeibler, LogProb
from pixyz_pyro.model import Model, OptimizerError
from pixyz_pyro.model.checkpoint import FORMAT_VERSION

_TMP = tempfile.mkdtemp(prefix="pixyz_pyro_errors_")


def _saved(world, name):
    """Save ``world.model`` to a fresh path in the temporary folder."""
    path = os.path.join(_TMP, name)
    world.model.save(path)
    return path


class _RNG:
    """Watch the torch RNG too: a refused ``load`` must not restore it."""

    def state_dict(self):
        return {"torch": torch.get_rng_state()}


# --- training ---------------------------------------------------------------------------
@case("NaN in the data", NonFiniteError,
      "non-finite step 2: the loss", "is nan",
      "Non-finite terms: D_{KL} \\left[q(z|x)||p_{prior}(z) \\right]; "
      "\\mathbb{E}_{q(z|x)} \\left[\\log p(x|z) \\right]",
      "Inputs with NaN or inf: ['x']", "The optimizer step was refused",
      code='x[0, 0] = float("nan"); model.train({"x": x})')
def nan_in_data(w):
    x = w.x.clone()
    x[0, 0] = float("nan")
    return lambda: w.model.train({"x": x})


@case("A loss that is not a scalar when training", LossError,
      "the loss must be a scalar to train;", "has shape (8,). Reduce it with .mean() or .sum()",
      code="Model(KullbackLeibler(q, prior), ...).train({'x': x})")
def not_scalar(w):
    model = w.watch(Model(KullbackLeibler(w.q, w.prior) - Expectation(w.q, LogProb(w.p)),
                          distributions=[w.p, w.q]))
    return lambda: model.train({"x": w.x})


@case("No parameters to optimize", ModelError,
      "no parameters to optimize: the distributions ['p(x)'] have no trainable parameters",
      code="Model(-LogProb(Normal(loc=0., scale=1., var=['x'])).mean())")
def no_parameters(w):
    p = Normal(loc=0.0, scale=1.0, var=["x"])
    return lambda: Model(-LogProb(p).mean(), distributions=[p])


@case("An optimizer instance where a class is expected", OptimizerError,
      "optimizer must be an optimizer class such as torch.optim.Adam",
      "got an instance of Adam", code="Model(loss, optimizer=torch.optim.Adam(params))")
def optimizer_instance(w):
    opt = torch.optim.Adam(w.q.parameters())
    return lambda: Model(w.loss, distributions=[w.p, w.q], optimizer=opt)


@case("A Pyro optimizer factory that was not called", OptimizerError,
      "pyro.optim.pytorch_optimizers.Adam is a Pyro optimizer factory; call it with its "
      "arguments", code="Model(loss, optimizer=pyro.optim.Adam)")
def pyro_factory(w):
    return lambda: Model(w.loss, distributions=[w.p, w.q], optimizer=pyro.optim.Adam)


@case("Bad optimizer arguments", OptimizerError,
      "Adam(**{'learning_rate': 0.01}) failed",
      code="Model(loss, optimizer_params={'learning_rate': 1e-2})")
def optimizer_bad_args(w):
    return lambda: Model(w.loss, distributions=[w.p, w.q],
                         optimizer_params={"learning_rate": 1e-2})


@case("An unknown compile mode", ModelError,
      "Model(compile='fast'): compile is True, False or one of torch.compile's modes",
      "'reduce-overhead'", code="Model(loss, compile='fast')")
def compile_mode(w):
    return lambda: Model(w.loss, distributions=[w.p, w.q], compile="fast")


@case("Expectation over a distribution that cannot be reparameterised", LossError,
      "Expectation over q(y|x): Categorical cannot be reparameterised",
      "Use REINFORCE(q, f)", warm=False,
      code="Expectation(Categorical(...), LogProb(p)) with a trainable q")
def not_reparameterisable(w):
    class Q(Categorical):
        def __init__(self):
            super().__init__(var=["y"], cond_var=["x"], name="q")
            self.net = nn.Linear(4, 3)

        def forward(self, x):
            return {"probs": torch.softmax(self.net(x), -1)}

    q = Q()
    p = Normal(loc=torch.zeros(3), scale=1.0, var=["y"])
    model = w.watch(Model(-Expectation(q, LogProb(p)).mean(), distributions=[q]))
    return lambda: model.train({"x": w.x})


@case("IterativeLoss with series of unequal lengths", ShapeError,
      "IterativeLoss over \\log p(x|y): the series_var ['x', 'y'] must have one length on "
      "dim 0 (time), got {'x': 5, 'y': 4}",
      code="IterativeLoss(step, series_var=['x', 'y']).eval({'x': (5, B, 1), 'y': (4, B, 1)})")
def iterative_unequal(w):
    h = nn.Parameter(torch.zeros(1))
    p = Normal(loc="y", scale=1.0, var=["x"], cond_var=["y"])
    p.register_parameter("shift", h)
    loss = IterativeLoss(LogProb(p), series_var=["x", "y"]).mean()
    model = w.watch(Model(-loss, distributions=[p]))
    return lambda: model.train({"x": torch.zeros(5, 2, 1), "y": torch.zeros(4, 2, 1)})


# --- checkpoints -------------------------------------------------------------------------------
@case("Model.load of a checkpoint from a different model", CheckpointError,
      "holds the distributions ['p(x|z)', 'q(z|x)'], this model has ['q(z|x)']",
      "it is from a different model", code="Model(KL(q, prior), [q]).load('vae.pt')")
def load_other_model(w):
    path = _saved(w, "vae.pt")
    other = World(warm=True)
    model = w.watch(Model(KullbackLeibler(other.q, other.prior).mean(),
                          distributions=[other.q]))
    w.watch(_RNG())
    return lambda: model.load(path)


@case("Model.load of a checkpoint whose shapes differ", CheckpointError,
      "does not fit q(z|x): loc.weight has shape (2, 8) in the file, (3, 8) in the model",
      code="same names, Encoder(z_dim=3) instead of z_dim=2")
def load_other_shapes(w):
    path = _saved(w, "vae_shapes.pt")
    q, p = Encoder(z_dim=3), Decoder()
    model = w.watch(Model(KullbackLeibler(q, prior(3)).mean(), distributions=[p, q],
                          allow_unused=True))
    w.watch(_RNG())
    return lambda: model.load(path)


@case("A truncated checkpoint file", CheckpointError, "is truncated or corrupt",
      code="open(path, 'r+b').truncate(100); model.load(path)")
def load_truncated(w):
    path = _saved(w, "truncated.pt")
    with open(path, "r+b") as f:
        f.truncate(100)
    w.watch(_RNG())
    return lambda: w.model.load(path)


@case("A corrupt checkpoint file", CheckpointError, "is truncated or corrupt",
      code="open(path, 'wb').write(b'not a checkpoint'); model.load(path)")
def load_corrupt(w):
    path = os.path.join(_TMP, "corrupt.pt")
    with open(path, "wb") as f:
        f.write(b"not a checkpoint at all")
    w.watch(_RNG())
    return lambda: w.model.load(path)


@case("A checkpoint from a newer format version", CheckpointError,
      f"has format version {FORMAT_VERSION + 1}, newer than this pixyz_pyro reads "
      f"({FORMAT_VERSION}); upgrade pixyz_pyro", code="model.load('from_the_future.pt')")
def load_newer(w):
    path = os.path.join(_TMP, "future.pt")
    state = w.model.state_dict()
    state["format_version"] = FORMAT_VERSION + 1
    torch.save(state, path)
    w.watch(_RNG())
    return lambda: w.model.load(path)


@case("A checkpoint with another optimizer", CheckpointError,
      "the optimizer was SGD in the file, Adam in the model",
      code="Model(..., optimizer=torch.optim.SGD).save(path); model.load(path)")
def load_other_optimizer(w):
    other = World(warm=False)
    sgd = Model(other.loss, distributions=[other.p, other.q], optimizer=torch.optim.SGD,
                optimizer_params={"lr": 0.1, "momentum": 0.9})
    sgd.train({"x": other.x})
    path = os.path.join(_TMP, "sgd.pt")
    sgd.save(path)
    w.watch(_RNG())
    return lambda: w.model.load(path)


# --- Pyro ----------------------------------------------------------------------------------
@case("to_pyro with a variable named like the plate", VariableError,
      'to_pyro: variable "data" of p(data) clashes with the Pyro plate of the same name',
      "rename it with replace_var or pass plate_name=...",
      code="to_pyro(Bernoulli(probs=0.5, var=['data']), observed=['data'])")
def to_pyro_clash(w):
    return lambda: to_pyro(Bernoulli(probs=0.5, var=["data"]), observed=["data"])


@case("to_pyro with an unknown observed variable", VariableError,
      'to_pyro: p(x,z) has no variable "X" (did you mean "x"?)', "its variables are ['x', 'z']",
      code="to_pyro(p * prior, observed=['X'])")
def to_pyro_unknown(w):
    return lambda: to_pyro(w.p * w.prior, observed=["X"])


@case("to_pyro called without an observed variable", VariableError,
      'to_pyro(p(x,z), observed=[\'x\']) needs "x" for the Pyro program (observed variables '
      'are data, never sampled), but the input has keys [\'images\']',
      code="to_pyro(p * prior, observed=['x'])(images=x)")
def to_pyro_missing_observed(w):
    return lambda: to_pyro(w.p * w.prior, observed=["x"])(images=w.x)


@case("to_pyro on a density without a sampler", PyroTranslationError,
      "to_pyro: p(x) is a CustomProb, a density without a sampler, so it cannot be a Pyro "
      "sample site",
      code="to_pyro(CustomProb(lambda x: -x.pow(2).sum(-1), var=['x']))")
def to_pyro_custom(w):
    return lambda: to_pyro(CustomProb(lambda x: -x.pow(2).sum(-1), var=["x"]))


def _pyro_guide(x):
    with pyro.plate("data", x.shape[0]):
        pyro.sample("latent", pdist.Normal(x, 1.).to_event(1))


@case("from_pyro with a variable that has no site", VariableError,
      'q(z|x): the variable "z" has no sample site "z" in _pyro_guide; its sites are '
      "['latent']", 'map a variable to a site with sites={"z": ...}',
      code='from_pyro(guide, var=["z"], name="q").sample({"x": x})')
def from_pyro_no_site(w):
    return lambda: from_pyro(_pyro_guide, var=["z"], name="q").sample({"x": w.x})


def _pyro_discrete_guide(x):
    logits = pyro.param("logits", torch.zeros(3))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("y", pdist.OneHotCategorical(logits=logits))


@case("An expectation over a wrapped guide with a discrete site", LossError,
      'q(y|x): the site "y" (OneHotCategorical) of _pyro_discrete_guide cannot be '
      "reparameterised", "Use pixyz_pyro.infer.pyro_elbo(p, q)",
      code='KullbackLeibler(from_pyro(guide, var=["y"], name="q"), prior_y, '
           'analytical=False).eval({"x": x})')
def from_pyro_discrete(w):
    q = from_pyro(_pyro_discrete_guide, var=["y"], name="q")
    q.sample({"x": w.x})  # creates its parameter
    prior_y = Categorical(probs=torch.ones(3) / 3, var=["y"])
    return lambda: KullbackLeibler(q, prior_y, analytical=False).eval({"x": w.x})
