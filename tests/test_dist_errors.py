
"""Errors are API: each names the distribution, the variable and what was expected."""
import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import pixyz_pyro
from pixyz_pyro import SupportWarning
from pixyz_pyro.dist import Bernoulli, Categorical, Normal
from pixyz_pyro.errors import (
    GraphError,
    LossError,
    ParameterError,
    ShapeError,
    SupportError,
    VariableError,
)
from pixyz_pyro.loss import Expectation, KullbackLeibler, LogProb


def m(text):
    """Match the literal text anywhere in the message."""
    return re.escape(text)


# --- graphs -------------------------------------------------------------------------------

def test_same_variable_defined_twice():
    a = Normal(loc=0.0, scale=1.0, var=["z"])
    b = Normal(loc=1.0, scale=1.0, var=["z"], name="q")
    with pytest.raises(GraphError, match=m('variable "z" is defined twice in the product: '
                                           "by p(z) and by q(z)")):
        a * b


def test_cycle():
    a = Normal(loc="y", scale=1.0, var=["x"], cond_var=["y"])
    b = Normal(loc="x", scale=1.0, var=["y"], cond_var=["x"], name="q")
    with pytest.raises(GraphError, match=m("the product has a cycle: p(x|y) -> q(y|x) -> p(x|y)")):
        a * b


def test_only_distributions_multiply():
    with pytest.raises(TypeError, match="only distributions can be multiplied, got int"):
        Normal(loc=0.0, scale=1.0, var=["x"]) * 3


def test_variable_in_var_and_cond_var():
    with pytest.raises(VariableError, match=m("['x'] appear in both var ['x'] and cond_var")):
        Normal(loc=0.0, scale=1.0, var=["x"], cond_var=["x"])


# --- missing variables ------------------------------------------------------------------------

def test_missing_cond_var_at_sample_suggests_the_case_fix():
    q = Normal(loc="x", scale=1.0, var=["z"], cond_var=["x"], name="q")
    with pytest.raises(VariableError, match=m('q(z|x) needs "x" (did you mean "X"?) for '
                                              "sampling, but the input has keys ['X']")):
        q.sample({"X": torch.zeros(2, 1)})


def test_missing_cond_var_at_log_prob_suggests_the_case_fix():
    q = Normal(loc="x", scale=1.0, var=["z"], cond_var=["x"], name="q")
    with pytest.raises(VariableError, match=m('q(z|x) needs "x" (did you mean "X"?) for '
                                              "log_prob, but the input has keys ['X', 'z']")):
        q.get_log_prob({"z": torch.zeros(2, 1), "X": torch.zeros(2, 1)})


def test_missing_var_at_log_prob():
    q = Normal(loc="x", scale=1.0, var=["z"], cond_var=["x"], name="q")
    with pytest.raises(VariableError, match=m('q(z|x) needs "z" for log_prob')):
        q.get_log_prob({"x": torch.zeros(2, 1)})


def test_missing_input_of_a_loss_names_the_loss_and_the_variable():
    q = Normal(loc="x", scale=1.0, var=["z"], cond_var=["x"], name="q")
    prior = Normal(loc=0.0, scale=1.0, var=["z"], name="p")
    with pytest.raises(VariableError, match=m("the loss D_{KL}") + ".*" + m("q(z|x)") + ".*"
                       + m('needs "x" (did you mean "X"?) for evaluation')):
        KullbackLeibler(q, prior).eval({"X": torch.zeros(2, 1)})


# --- parameters from forward and constructor --------------------------------------------------

class WrongNames(Normal):
    def __init__(self):
        super().__init__(var=["z"], cond_var=["x"], name="q")

    def forward(self, x):
        return {"mu": x, "sigma": x.exp()}


def test_forward_returning_wrong_parameter_names_lists_expected_and_given():
    with pytest.raises(ParameterError, match=m(
            "q(z|x).forward returned parameter names ['mu', 'sigma']; a Normal expects "
            "['loc', 'scale']")):
        WrongNames().sample({"x": torch.zeros(2, 1)})


def test_forward_returning_too_few_parameters():
    class OnlyLoc(Normal):
        def __init__(self):
            super().__init__(var=["z"], cond_var=["x"], name="q")

        def forward(self, x):
            return {"loc": x}

    with pytest.raises(ParameterError, match=m("q(z|x) has no value for parameter(s) ['scale']: "
                                               "a Normal needs ['loc', 'scale']")):
        OnlyLoc().sample({"x": torch.zeros(2, 1)})


def test_forward_must_return_a_dict():
    class Tuple_(Normal):
        def __init__(self):
            super().__init__(var=["z"], cond_var=["x"], name="q")

        def forward(self, x):
            return x, x

    with pytest.raises(ParameterError, match=m("q(z|x).forward must return a dict of parameters "
                                               "['loc', 'scale'], got tuple")):
        Tuple_().sample({"x": torch.zeros(2, 1)})


def test_unknown_constructor_parameter():
    with pytest.raises(ParameterError, match=m("Normal has no parameter(s) ['mu']; its parameters "
                                               "are ['loc', 'scale']")):
        Normal(mu=0.0, scale=1.0, var=["x"])


def test_string_parameter_must_name_a_conditioning_variable():
    with pytest.raises(VariableError, match=m('p(x): parameter loc="y" binds a conditioning '
                                              "variable, but cond_var is []")):
        Normal(loc="y", scale=1.0, var=["x"])


def test_constant_that_does_not_fit_features_shape():
    with pytest.raises(ShapeError, match=m("p(x): constant loc has shape (3,), which does not fit "
                                           "features_shape (2,)")):
        Normal(loc=torch.zeros(3), scale=1.0, var=["x"], features_shape=[2])


# --- shapes -----------------------------------------------------------------------------------

class Encoder(Normal):
    def __init__(self, features):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.fc = nn.Linear(5, 2 * features)

    def forward(self, x):
        loc, s = self.fc(x).chunk(2, -1)
        return {"loc": loc, "scale": F.softplus(s)}


def test_kl_feature_shapes_disagree():
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[32], name="p")
    with pytest.raises(ShapeError, match=m("q(z|x) gave z with features (64,), p(z) expects "
                                           "(32,)")):
        KullbackLeibler(Encoder(64), prior).eval({"x": torch.zeros(2, 5)})


def test_value_shape_disagrees_with_parameters():
    p = Normal(loc=0.0, scale=1.0, var=["x"], features_shape=[3])
    with pytest.raises(ShapeError, match=m('p(x): "x" has shape (2, 4), but the parameters have '
                                           "shape (1, 3)")):
        p.get_log_prob({"x": torch.zeros(2, 4)})


# --- supports ---------------------------------------------------------------------------------

def test_negative_scale():
    with pytest.raises(SupportError, match=m("p(x): parameter scale is outside its support")):
        Normal(loc=0.0, scale=-1.0, var=["x"]).sample()


def test_negative_scale_from_a_bound_variable():
    p = Normal(loc="y", scale="s", var=["x"], cond_var=["y", "s"])
    with pytest.raises(SupportError, match=m("p(x|y,s): parameter scale is outside its support "
                                             "(GreaterThan(lower_bound=0.0)); got values in "
                                             "[-1, -1]")):
        p.get_log_prob({"x": torch.zeros(2, 1), "y": torch.zeros(2, 1),
                        "s": -torch.ones(2, 1)})


def test_probs_outside_unit_interval():
    with pytest.raises(SupportError, match=m("p(x): parameter probs is outside its support")):
        Bernoulli(probs=1.5, var=["x"]).sample()


def test_bernoulli_value_outside_unit_interval():
    """Pixyz scores any real value with the formula: the default warns, strict raises."""
    p = Bernoulli(probs=0.5, var=["x"])
    x = torch.tensor([[1.5], [-0.5]])
    with pytest.warns(SupportWarning, match=m('p(x): "x" must lie in [0, 1]; got values in '
                                              "[-0.5, 1.5]")):
        lp = p.get_log_prob({"x": x})
    assert torch.allclose(lp, x.squeeze(1) * math.log(0.5) + (1 - x.squeeze(1)) * math.log(0.5))
    with pixyz_pyro.validation("strict"), pytest.raises(
            SupportError, match=m('p(x): "x" must lie in [0, 1]; got values in [-0.5, 1.5]')):
        p.get_log_prob({"x": x})


def test_categorical_value_not_one_hot():
    p = Categorical(probs=torch.tensor([0.5, 0.5]), var=["y"])
    with pytest.raises(SupportError, match=m('p(y): "y" must be one-hot along its last dimension '
                                             "(use F.one_hot)")):
        p.get_log_prob({"y": torch.tensor([[0.5, 0.5]])})
    with pytest.raises(SupportError, match="must be one-hot"):
        Categorical(probs=torch.tensor([0.5, 0.5]), var=["y"]).get_log_prob(
            {"y": torch.tensor([[1.0, 1.0]])})


def test_integer_value_for_a_continuous_family():
    p = Normal(loc=0.0, scale=1.0, var=["x"])
    with pytest.raises(SupportError, match=m('p(x): "x" has dtype torch.int64; a Normal takes '
                                             "floating-point values (use .float())")):
        p.get_log_prob({"x": torch.zeros(2, dtype=torch.long)})


# --- replace_var / marginalize_var --------------------------------------------------------------

def test_replace_var_of_unknown_name():
    p = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"])
    with pytest.raises(VariableError, match=m('replace_var: p(x|z) has no variable "Z" (did you '
                                              "mean \"z\"?); its variables are ['x', 'z']")):
        p.replace_var(Z="y")


def test_replace_var_onto_an_existing_name():
    p = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"])
    # Pixyz's documented ValueError, caused by ours
    with pytest.raises(ValueError, match=m("['x', 'z'] are conflicted after replaced.")) as info:
        p.replace_var(z="x")
    assert isinstance(info.value.__cause__, VariableError)
    assert "maps two variables to one name: ['x', 'z']" in str(info.value.__cause__)


def test_marginalize_unknown_variable():
    joint = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"]) * Normal(
        loc=0.0, scale=1.0, var=["z"])
    with pytest.raises(VariableError, match=m('marginalize_var: p(x,z) has no variable "w"; its '
                                              "variables are ['x', 'z']")):
        joint.marginalize_var(["w"])


def test_marginalize_conditioning_variable():
    p = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"])
    with pytest.raises(VariableError, match=m('marginalize_var: "z" is a conditioning variable of '
                                              "p(x|z); only variables it defines (['x']) can be "
                                              "marginalized")):
        p.marginalize_var(["z"])


def test_marginal_has_no_log_density():
    joint = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"]) * Normal(
        loc=0.0, scale=1.0, var=["z"])
    # Pixyz documents a bare NotImplementedError; the reason is its cause (shown in the
    # traceback).
    with pytest.raises(NotImplementedError) as info:
        joint.marginalize_var("z").get_log_prob({"x": torch.zeros(1, 1)})
    assert str(info.value) == ""
    assert "has no closed-form log-density; use an ELBO" in str(info.value.__cause__)


# --- expectations over non-reparameterisable distributions ---------------------------------------

class DiscreteEncoder(Categorical):
    def __init__(self):
        super().__init__(var=["y"], cond_var=["x"], name="q")
        self.fc = nn.Linear(3, 4)

    def forward(self, x):
        return {"probs": F.softmax(self.fc(x), -1)}


def test_expectation_over_non_reparameterisable_points_to_reinforce():
    q = DiscreteEncoder()
    p = Normal(loc="y", scale=1.0, var=["x"], cond_var=["y"])
    loss = Expectation(q, LogProb(p.replace_var(x="w")))
    with pytest.raises(LossError, match=m("Expectation over q(y|x): Categorical cannot be "
                                          "reparameterised") + ".*" + m("Use REINFORCE(q, f)")):
        loss.eval({"x": torch.zeros(2, 3), "w": torch.zeros(2, 4)})
    # without gradients (evaluation only) the same expectation is allowed
    with torch.no_grad():
        value = Expectation(q, LogProb(p.replace_var(x="w"))).eval(
            {"x": torch.zeros(2, 3), "w": torch.zeros(2, 4)})
    assert torch.isfinite(value).all()


# --- losses are immutable values ---------------------------------------------------------------

def test_loss_has_no_truth_value_and_is_immutable():
    loss = LogProb(Normal(loc=0.0, scale=1.0, var=["x"]))
    with pytest.raises(LossError, match="a loss expression has no truth value; call .eval()"):
        bool(loss)
    with pytest.raises(AttributeError, match="loss expressions are immutable; cannot set 'p'"):
        loss.p = None
