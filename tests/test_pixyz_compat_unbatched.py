"""A value without its batch dimension whose shape is exactly the declared features.

Pixyz scores ``{"x": torch.tensor([0., 1.])}`` against features ``(2,)`` as a batch of 1.
That reading is the only one, so pixyz_pyro does the same with an
:class:`~pixyz_pyro.UnbatchedValueWarning` on every call, and raises the
:class:`~pixyz_pyro.errors.ShapeError` under strict validation.  A value that could also
be read as a batch (parameters with a batch of their own), or whose shape is not the
features', stays an error.
"""
import math
import re
import warnings

import pytest
import torch

import pixyz_pyro
from pixyz_pyro import UnbatchedValueWarning
from pixyz_pyro.dist import Bernoulli, Normal, RelaxedBernoulli
from pixyz_pyro.errors import ShapeError
from pixyz_pyro.loss import LogProb

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def m(text):
    return re.escape(text)


def _caught(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = call()
    return out, [w for w in caught if issubclass(w.category, UnbatchedValueWarning)]


def test_a_hard_value_of_a_relaxed_bernoulli_is_scored_as_a_batch_of_one():
    rb = RelaxedBernoulli(var=["x"], temperature=torch.tensor(0.5), probs=torch.ones(2))
    x = torch.tensor([0., 1.])
    lp, caught = _caught(lambda: rb.get_log_prob({"x": x}))
    assert len(caught) == 1
    assert torch.equal(lp, rb.get_log_prob({"x": x[None]}))
    assert lp.shape == (1,)


def test_the_value_equals_the_batched_value_and_the_closed_form():
    p = Normal(loc=torch.tensor([0.5, -1.0]), scale=torch.tensor([1.0, 2.0]), var=["x"])
    x = torch.tensor([1.0, 0.0])
    lp, caught = _caught(lambda: p.get_log_prob({"x": x}))
    by_hand = (-(x - p.loc[0]) ** 2 / (2 * p.scale[0] ** 2) - p.scale[0].log()
               - LOG_SQRT_2PI).sum()
    assert len(caught) == 1
    assert torch.equal(lp, p.get_log_prob({"x": x[None]}))
    assert torch.allclose(lp, by_hand[None])
    # through a loss as well
    value, caught = _caught(lambda: LogProb(p).eval({"x": x}))
    assert len(caught) == 1 and torch.equal(value, LogProb(p).eval({"x": x[None]}))


def test_the_warning_names_the_distribution_the_variable_the_shapes_and_the_fix():
    p = Bernoulli(probs=torch.full((3,), 0.5), var=["y"], name="q")
    with pytest.warns(UnbatchedValueWarning) as record:
        p.get_log_prob({"y": torch.ones(3)})
    text = str(record[0].message)
    assert text == ('q(y): "y" has shape (3,), the features of this Bernoulli, without a '
                    "batch dimension: it is scored as a batch of 1, as Pixyz does; write "
                    "y[None] (shape (1, 3)) to say so (strict validation makes this an "
                    "error)")
    assert record[0].filename == __file__  # the user's line, not the library's


@pytest.mark.parametrize("warm_calls", [0, 3])
def test_the_check_runs_fresh_and_warm(warm_calls):
    p = Normal(loc=torch.zeros(2), scale=1., var=["x"])
    for _ in range(warm_calls):  # batched calls, then unbatched ones: no history
        p.get_log_prob({"x": torch.zeros(4, 2)})
        _caught(lambda: p.get_log_prob({"x": torch.zeros(2)}))
    for _ in range(2):
        _, caught = _caught(lambda: p.get_log_prob({"x": torch.zeros(2)}))
        assert len(caught) == 1
        _, caught = _caught(lambda: p.get_log_prob({"x": torch.zeros(1, 2)}))
        assert caught == []


@pytest.mark.parametrize("warm_calls", [0, 2])
def test_strict_validation_raises_the_shape_error(warm_calls):
    p = Normal(loc=torch.zeros(2), scale=1., var=["x"])
    for _ in range(warm_calls):
        _caught(lambda: p.get_log_prob({"x": torch.zeros(2)}))
    with pixyz_pyro.validation("strict"):
        for _ in range(2):
            with pytest.raises(ShapeError, match=m(
                    'p(x): "x" has shape (2,), the features of this Normal, without a batch '
                    "dimension; write x[None] (shape (1, 2)) for a batch of 1")):
                p.get_log_prob({"x": torch.zeros(2)})
            with pytest.raises(ShapeError, match=m('"x" has shape (2,)')):
                LogProb(p).eval({"x": torch.zeros(2)})
        assert p.get_log_prob({"x": torch.zeros(1, 2)}).shape == (1,)


def test_a_value_that_could_be_a_batch_is_still_an_error():
    # parameters with a batch of 2: a value (2,) is one example broadcast over the rows,
    # or a batch of 2 scalars; neither reading is taken
    p = Normal(loc="y", scale=1., var=["x"], cond_var=["y"])
    with pytest.raises(ShapeError, match=m('p(x|y): "x" has shape (2,), but the parameters '
                                           "have shape (2, 2)")):
        p.get_log_prob({"x": torch.zeros(2), "y": torch.zeros(2, 2)})
    # other shapes never broadcast
    q = Normal(loc=torch.zeros(2), scale=1., var=["x"])
    for bad in (torch.zeros(3), torch.zeros(1), torch.zeros(2, 1)):
        with pytest.raises(ShapeError, match="features never broadcast"):
            q.get_log_prob({"x": bad})


def test_two_feature_dimensions():
    p = Normal(loc=torch.zeros(2, 3), scale=1., var=["x"])
    x = torch.randn(2, 3)
    lp, caught = _caught(lambda: p.get_log_prob({"x": x}))
    assert len(caught) == 1 and torch.equal(lp, p.get_log_prob({"x": x[None]}))
    with pytest.raises(ShapeError, match="features never broadcast"):
        p.get_log_prob({"x": torch.zeros(3)})  # the last features only


def test_validation_off_gives_the_same_number_without_a_check():
    p = Normal(loc=torch.zeros(2), scale=1., var=["x"])
    with pixyz_pyro.validation("off"):
        lp, caught = _caught(lambda: p.get_log_prob({"x": torch.ones(2)}))
    assert caught == [] and torch.allclose(lp, p.get_log_prob({"x": torch.ones(1, 2)}))
