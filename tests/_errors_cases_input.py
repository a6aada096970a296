"""Catalogue cases, part 1: names, inputs, ``forward``, the graph, supports."""
import torch
import torch.nn.functional as F
from _errors_world import Encoder, case, prior
from torch import nn

import pixyz_pyro
from pixyz_pyro.dist import Bernoulli, Categorical, Normal
from pixyz_pyro.errors import (
    GraphError,
    InputError,
    ParameterError,
    ShapeError,
    SupportError,
    VariableError,
)
from pixyz_pyro.loss import Expectation, KullbackLeibler, LogProb
from pixyz_pyro.model import Model

# --- names and inputs ---------------------------------------------------------------------


@case("A required variable is missing while a near name is given", VariableError,
      'needs "x" (did you mean "X"?)', "q(z|x)", "p(x|z)", "the input has keys ['X']",
      code='model.train({"X": x})')
def near_name(w):
    return lambda: w.model.train({"X": w.x})


@case("A conditioning variable is missing when sampling", VariableError,
      'q(z|x) needs "x" for sampling', "the input has keys ['y']",
      code='q.sample({"y": x})')
def missing_cond_var_sample(w):
    return lambda: w.q.sample({"y": w.x})


@case("A conditioning variable is missing for log_prob", VariableError,
      'q(z|x) needs "x" for log_prob', "the input has keys ['z']",
      code='q.get_log_prob({"z": z})')
def missing_cond_var_log_prob(w):
    return lambda: w.q.get_log_prob({"z": torch.zeros(8, 2)})


@case("The input is not a dict", InputError,
      "takes a dict {name: tensor}, got float32 (8, 4) on cpu", code="model.train(x)")
def input_not_a_dict(w):
    return lambda: w.model.train(w.x)


@case("A variable's value is None, a string or a list", InputError,
      'takes a tensor for "x", got None', code='model.train({"x": None})')
def value_is_none(w):
    return lambda: w.model.train({"x": None})


@case("An empty batch", InputError,
      'got an empty batch for "x" (shape (0, 4))', code='model.train({"x": x[:0]})')
def empty_batch(w):
    return lambda: w.model.train({"x": w.x[:0]})


@case("Wrong dtype for a network", InputError,
      "q(z|x).forward failed on {x: int64 (8, 4) on cpu}",
      "its parameters are float32 (8, 4) on cpu",
      code='model.train({"x": x.long()})')
def wrong_dtype_network(w):
    return lambda: w.model.train({"x": w.x.long()})


@case("Wrong dtype for a value that is scored", SupportError,
      'p(x|z): "x" has dtype torch.int64; a Bernoulli takes floating-point values',
      warm=False, code='p.get_log_prob({"x": x.long(), "z": z})')
def wrong_dtype_value(w):
    return lambda: w.p.get_log_prob({"x": w.x.round().long(), "z": torch.zeros(8, 2)})


@case("Wrong device", InputError,
      "q(z|x).forward failed on {x: float32 (8, 4) on meta}",
      "its parameters are float32 (8, 4) on cpu",
      code='model.train({"x": x.to("meta")})')
def wrong_device(w):
    return lambda: w.model.train({"x": w.x.to("meta")})


@case("Wrong feature shape for a network", InputError,
      "q(z|x).forward failed on {x: float32 (8, 5) on cpu}",
      "its parameters are float32 (8, 4) on cpu",
      code='model.train({"x": torch.rand(8, 5)})')
def wrong_feature_shape(w):
    return lambda: w.model.train({"x": torch.rand(8, 5)})


# --- forward --------------------------------------------------------------------------------
class _Bad(Normal):
    def __init__(self, out, features_shape=()):
        super().__init__(var=["z"], cond_var=["x"], name="q", features_shape=features_shape)
        self.net, self.out = nn.Linear(4, 2), out

    def forward(self, x):
        return self.out(self.net(x))


def _train_bad(w, out, features_shape=()):
    q = _Bad(out, features_shape)
    model = w.watch(Model(KullbackLeibler(q, prior()).mean(), distributions=[q]))
    return lambda: model.train({"x": w.x})


@case("forward returns the wrong parameter names", ParameterError,
      "q(z|x).forward returned parameter names ['mu', 'scale']",
      "a Normal expects ['loc', 'scale'] (unknown: ['mu'])", warm=False,
      code='def forward(self, x): return {"mu": h, "scale": s}')
def forward_wrong_names(w):
    return _train_bad(w, lambda h: {"mu": h, "scale": h.exp()})


@case("forward returns something other than a dict", ParameterError,
      "q(z|x).forward must return a dict of parameters ['loc', 'scale'], got Tensor",
      warm=False, code="def forward(self, x): return h")
def forward_not_a_dict(w):
    return _train_bad(w, lambda h: h)


@case("forward leaves out a parameter", ParameterError,
      "q(z|x) has no value for parameter(s) ['scale']: a Normal needs ['loc', 'scale'], "
      "got ['loc']", warm=False, code='def forward(self, x): return {"loc": h}')
def forward_missing_param(w):
    return _train_bad(w, lambda h: {"loc": h})


@case("forward returns the wrong feature shape", ShapeError,
      "q(z|x): parameter loc has features (2,), but features_shape is (3,)", warm=False,
      code="Normal(..., features_shape=[3]) whose forward returns (8, 2)")
def forward_wrong_features(w):
    return _train_bad(w, lambda h: {"loc": h, "scale": h.exp()}, features_shape=[3])


@case("forward returns shapes that do not broadcast", ShapeError,
      "q(z|x): parameter shapes {'loc': '(8, 2)', 'scale': '(8, 3)'} do not broadcast",
      warm=False, code='return {"loc": h[:, :2], "scale": h3}')
def forward_no_broadcast(w):
    return _train_bad(w, lambda h: {"loc": h, "scale": torch.ones(8, 3)})


@case("forward returns the wrong batch", ShapeError,
      "q(z|x).forward returned loc with batch 4 (shape (4, 2)) for x with batch 8",
      warm=False, code='return {"loc": h[:4], ...}')
def forward_wrong_batch(w):
    return _train_bad(w, lambda h: {"loc": h[:4], "scale": h[:4].exp()})


# --- the graph --------------------------------------------------------------------------------
@case("Feature shapes disagree between factors", ShapeError,
      "q(z|x) gave z with features (3,), p_{prior}(z) expects (2,)", warm=False,
      code="KullbackLeibler(Encoder(z_dim=3), prior(z_dim=2))")
def features_disagree(w):
    q = Encoder(z_dim=3)
    model = w.watch(Model(KullbackLeibler(q, prior(2)).mean(), distributions=[q]))
    return lambda: model.train({"x": w.x})


@case("Feature shapes disagree inside a joint", InputError,
      "p(x|z).forward failed on {z: float32 (8, 3) on cpu}", warm=False,
      code="Expectation(Encoder(z_dim=3), LogProb(p))  # p reads z with 2 features")
def features_disagree_joint(w):
    q = Encoder(z_dim=3)
    model = w.watch(Model(-Expectation(q, LogProb(w.p)).mean(), distributions=[q, w.p]))
    return lambda: model.train({"x": w.x})


@case("The same variable defined twice in a product", GraphError,
      'variable "z" is defined twice in the product: by q(z|x) and by p_{prior}(z)',
      code="q * prior")
def defined_twice(w):
    return lambda: w.q * w.prior


@case("A cycle", GraphError, "the product has a cycle: p(x|z) -> q(z|x) -> p(x|z)",
      code="p * q")
def cycle(w):
    return lambda: w.p * w.q


@case("replace_var of a name that does not exist", VariableError,
      'replace_var: q(z|x) has no variable "Z" (did you mean "z"?); its variables are '
      "['z', 'x']", code='q.replace_var(Z="z2")')
def replace_unknown(w):
    return lambda: w.q.replace_var(Z="z2")


@case("Marginalizing a conditioning variable", VariableError,
      'marginalize_var: "z" is a conditioning variable of p(x|z)',
      code='p.marginalize_var(["z"])')
def marginalize_cond_var(w):
    return lambda: w.p.marginalize_var(["z"])


@case("Multiplying by a factor that needs a marginalized variable", GraphError,
      'r(y|z) conditions on "z", which p(x) = \\int p(x|z)p_{prior}(z)dz has marginalized out',
      "(a * b).marginalize_var(['z'])",
      code='r * (p * prior).marginalize_var(["z"])  # r(y|z)')
def marginalized_needed(w):
    r = Normal(loc="z", scale=1.0, var=["y"], cond_var=["z"], name="r")
    return lambda: r * (w.p * w.prior).marginalize_var(["z"])


# --- supports -----------------------------------------------------------------------------
@case("A negative scale", SupportError,
      "p(x): parameter scale is outside its support (GreaterThan(lower_bound=0.0)); got "
      "values in [-1, -1]", code="Normal(loc=0., scale=-1., var=['x']).sample()")
def negative_scale(w):
    return lambda: Normal(loc=0.0, scale=-1.0, var=["x"]).sample(batch_n=2)


@case("Probabilities outside [0, 1]", SupportError,
      "p(x): parameter probs is outside its support", "got values in [1.5, 1.5]",
      code="Bernoulli(probs=1.5, var=['x']).sample()")
def probs_outside(w):
    return lambda: Bernoulli(probs=1.5, var=["x"]).sample(batch_n=2)


@case("A Bernoulli value outside [0, 1] under strict validation", SupportError,
      'p(x|z): "x" must lie in [0, 1]; got values in [',
      code='with pixyz_pyro.validation("strict"): model.train({"x": x + 1})')
def value_outside_unit(w):
    def run():
        with pixyz_pyro.validation("strict"):
            w.model.train({"x": w.x + 1})
    return run


@case("A categorical value that is not one-hot", SupportError,
      'p(y): "y" must be one-hot along its last dimension (use F.one_hot)',
      code="Categorical(probs=..., var=['y']).get_log_prob({'y': labels})")
def not_one_hot(w):
    c = Categorical(probs=torch.ones(3) / 3, var=["y"])
    bad = F.one_hot(torch.tensor([0, 2]), 3).float() * 2
    return lambda: c.get_log_prob({"y": bad})
