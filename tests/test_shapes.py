"""The shape helpers: broadcasting as torch broadcasts, eagerly (ATen's rule) and in the
Python loop that ``torch.compile`` traces."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pixyz_pyro.dist.shapes import _broadcast_in_python, broadcast_shapes

shapes = st.lists(st.lists(st.sampled_from([1, 2, 3]), max_size=3).map(tuple), min_size=1,
                  max_size=4)


def _torch(shapes):
    try:
        return torch.broadcast_shapes(*shapes)
    except RuntimeError:
        return "error"


@given(shapes)
def test_broadcast_shapes_agrees_with_torch_on_both_paths(shapes):
    expected = _torch(shapes)
    for fn in (lambda s: broadcast_shapes(*s), _broadcast_in_python):
        try:
            got = fn(shapes)
        except RuntimeError:
            got = "error"
        assert got == expected
        if got != "error":
            assert type(got) is torch.Size


def test_broadcast_shapes_of_nothing_and_of_one_shape():
    assert broadcast_shapes() == torch.Size([])
    assert broadcast_shapes(torch.Size([2, 3])) == torch.Size([2, 3])
    assert broadcast_shapes([4, 1], (1, 5)) == torch.Size([4, 5])  # lists and tuples


def test_shapes_that_do_not_broadcast_raise_a_runtime_error():
    with pytest.raises(RuntimeError):
        broadcast_shapes(torch.Size([8, 2]), torch.Size([3]))
    with pytest.raises(RuntimeError, match="do not broadcast"):
        _broadcast_in_python((torch.Size([8, 2]), torch.Size([3])))
