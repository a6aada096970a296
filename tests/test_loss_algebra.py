"""Property tests of the loss algebra.

The leaves are log-densities of fixed inputs, so every expression evaluates
deterministically; hypothesis builds random expression trees over them.
"""
import torch
from hypothesis import given
from hypothesis import strategies as st

from pixyz_pyro.dist import Normal
from pixyz_pyro.loss import LogProb, Parameter, ValueLoss

_P = Normal(loc="z", scale=1.0, var=["x"], cond_var=["z"])
_Q = Normal(loc="x", scale=2.0, var=["z"], cond_var=["x"], name="q")
_R = Normal(loc=0.5, scale=0.7, var=["y"], features_shape=[3], name="r")
LEAVES = [LogProb(_P), LogProb(_Q), LogProb(_R)]
DATA = {"x": torch.tensor([[0.3, -1.0, 2.0], [1.0, 0.5, -0.2]]),
        "z": torch.tensor([[0.0, 1.0, -1.0], [2.0, 0.0, 0.1]]),
        "y": torch.tensor([[1.0, 0.0, 0.5], [-1.0, 2.0, 0.0]]),
        "beta": torch.tensor(0.75)}

leaves = st.sampled_from(LEAVES)
numbers = st.one_of(st.integers(min_value=1, max_value=5),
                    st.sampled_from([0.5, 1.5, 2.0, 3.25]))


def _extend(children):
    return st.one_of(
        st.tuples(children, children).map(lambda ab: ab[0] + ab[1]),
        st.tuples(children, children).map(lambda ab: ab[0] - ab[1]),
        st.tuples(numbers, children).map(lambda kc: kc[0] * kc[1]),
        st.tuples(children, numbers).map(lambda ck: ck[0] / ck[1]),
        children.map(lambda c: -c),
        children.map(lambda c: c * Parameter("beta")),
    )


exprs = st.recursive(leaves, _extend, max_leaves=6)


def ev(loss):
    return loss.eval(DATA)


def same(a, b):
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), (a, b)


@given(exprs, exprs)
def test_sum_and_difference_evaluate_termwise(a, b):
    same(ev(a + b), ev(a) + ev(b))
    same(ev(a - b), ev(a) - ev(b))


@given(exprs)
def test_double_negation_is_identity(a):
    neg = -a
    same(ev(-neg), ev(a))
    assert str(-neg) == str(a)


@given(exprs, numbers)
def test_scaling(a, k):
    same(ev(k * a), k * ev(a))
    same(ev(a * k), k * ev(a))
    same(ev(a / k), ev(a) / k)


@given(exprs)
def test_mean_and_sum_reduce_the_batch(a):
    value = ev(a)
    assert value.shape == (2,)
    same(ev(a.mean()), value.mean())
    same(ev(a.sum()), value.sum())
    same(ev(a.abs()), value.abs())
    same(ev((2 * a).mean()), 2 * value.mean())


@given(exprs, exprs)
def test_addition_prints_commutatively(a, b):
    assert str(a + b) == str(b + a)
    assert str((a + b).mean()) == str((b + a).mean())


@given(exprs)
def test_integer_multiples_print_as_repeated_sums(a):
    assert str(2 * a) == str(a + a)
    assert str(3 * a) == str(a + a + a)
    assert str(a - a) == "0"


@given(exprs, exprs)
def test_returned_terms_sum_to_the_value(a, b):
    loss = (a - 2 * b).mean() + 1.5
    value, terms = loss.eval(DATA, return_terms=True)
    same(value, ev(loss))
    same(sum(terms.values()), value)


def test_leaves_are_the_log_densities():
    """The leaves are real numbers, not placeholders: check one against its formula."""
    x, z = DATA["x"], DATA["z"]
    expect = (-0.5 * (x - z) ** 2 - 0.5 * torch.log(torch.tensor(2 * torch.pi))).sum(-1)
    same(ev(LEAVES[0]), expect)
    same(ev(ValueLoss(2.0) * LEAVES[0]), 2 * expect)
    same(ev(LEAVES[0] * Parameter("beta")), 0.75 * expect)
