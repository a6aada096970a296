"""The per-evaluation memo of ``Deterministic`` and ``ProductOfNormal`` goes through
``Context.recall``/``remember``: keyed by the ids of the inputs eagerly, compared with
``is`` under ``torch.compile`` (so a compiled step guards on no tensor's identity)."""
import torch

from pixyz_pyro.dist import Deterministic, Normal, ProductOfNormal
from pixyz_pyro.dist.context import Context


def contexts():
    eager, traced = Context(), Context()
    traced.traced = True  # as under torch.compile
    return eager, traced


def tensor_ids_in_keys(ctx: Context, tensors) -> bool:
    ids = {id(t) for t in tensors}
    return any(k in ids for key in ctx.memo for k in key[1:])


class Double(Deterministic):
    def __init__(self, calls):
        super().__init__(var=["h"], cond_var=["x"], name="f")
        self.calls = calls

    def forward(self, x):
        self.calls.append(1)
        return {"h": 2 * x}


def test_deterministic_runs_forward_once_per_input_object():
    for ctx in contexts():
        calls = []
        f = Double(calls)
        x, y = torch.ones(2, 1), torch.ones(2, 1)
        a = f._sample_values({"x": x}, ctx, True, None)
        assert f._sample_values({"x": x}, ctx, True, None) is a and len(calls) == 1
        b = f._sample_values({"x": y}, ctx, True, None)  # equal values, another tensor
        assert len(calls) == 2 and torch.equal(b["h"], 2 * y)
        assert tensor_ids_in_keys(ctx, (x, y)) != ctx.traced


def test_product_of_normal_memo_tells_subsets_of_experts_apart():
    qx = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q_x")
    qy = Normal(loc="y", scale=1., var=["z"], cond_var=["y"], name="q_y")
    q = ProductOfNormal([qx, qy], name="q")
    x, y = torch.ones(1, 1), torch.ones(1, 1) * 4
    for ctx in contexts():
        both = q._params({"x": x, "y": y}, ctx)
        assert q._params({"x": x, "y": y}, ctx) is both
        only_y = q._params({"y": y}, ctx)
        only_x = q._params({"x": y}, ctx)  # the same tensor, given as the other input
        assert only_y is not both and only_x is not only_y
        # N(0,1) N(1,1) N(4,1) -> mean 5/3; N(0,1) N(4,1) -> mean 2
        assert torch.allclose(both["loc"], torch.tensor([[5 / 3]]))
        assert torch.equal(only_y["loc"], torch.tensor([[2.0]]))
        assert torch.equal(only_x["loc"], torch.tensor([[2.0]]))
        assert q._params({"y": y}, ctx) is only_y
        assert tensor_ids_in_keys(ctx, (x, y)) != ctx.traced
