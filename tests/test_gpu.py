"""Device and dtype placement, and GPU readiness.

On CPU (always run): ``.to(...)`` / ``.double()`` on a distribution or a joint converts
every parameter, buffer and constant parameter, and no tensor hides in a plain attribute
where ``.to`` cannot reach it.  Checked on the ``meta`` device and with ``float64``
(a float64 log-density must match the closed form to 1e-12, which float32 cannot).

On CUDA (marked ``gpu``, skipped without a GPU): the same placement on ``cuda``; the loss
evaluation and its backward make no host synchronisation
(``torch.cuda.set_sync_debug_mode("error")``); a ``Model.train`` step synchronises exactly
once (reading the value it returns); checkpoints round-trip; DDP on nccl runs.
"""
import contextlib
import datetime
import math
import socket
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from pixyz_pyro.dist import (
    Bernoulli,
    Categorical,
    Deterministic,
    ElementWiseProductOfNormal,
    MixtureModel,
    MixtureOfNormal,
    Multinomial,
    Normal,
    ProductOfNormal,
    RelaxedBernoulli,
    TransformedDistribution,
)
from pixyz_pyro.flows import PlanarFlow
from pixyz_pyro.loss import Expectation, KullbackLeibler, LogProb
from pixyz_pyro.model import Model

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


class Encoder(Normal):
    def __init__(self):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.net = nn.Linear(6, 4)

    def forward(self, x):
        h = self.net(x)
        return {"loc": h[:, :2], "scale": F.softplus(h[:, 2:]) + 0.1}


class Decoder(Bernoulli):
    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.net = nn.Linear(2, 6)

    def forward(self, z):
        return {"probs": torch.sigmoid(self.net(z))}


class Embed(Deterministic):
    def __init__(self):
        super().__init__(var=["h"], cond_var=["x"], name="f")
        self.net = nn.Linear(6, 2)

    def forward(self, x):
        return {"h": self.net(x)}


def catalog():
    """``name -> (distribution, its conditioning inputs)``: networks, constants, trainable
    constants (nn.Parameter), defaults kept as buffers (temperature), joints, mixtures,
    experts and flows."""
    torch.manual_seed(0)
    x = torch.rand(4, 6)
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2], name="p_prior")
    trainable = Normal(loc=nn.Parameter(torch.zeros(2)), scale=torch.ones(2), var=["z"],
                       name="p_t")
    comps = [Normal(loc=float(m), scale=1.0, var=["y"], name=f"p_{i}")
             for i, m in enumerate((-1, 1))]
    experts = [Normal(loc="a", scale=1.0, var=["w"], cond_var=["a"], name="p_a"),
               Normal(loc="b", scale=2.0, var=["w"], cond_var=["b"], name="p_b")]
    return {
        "network": (Encoder(), {"x": x}),
        "constant": (prior, {}),
        "trainable constant": (trainable, {}),
        "relaxed (temperature buffer)": (RelaxedBernoulli(probs=torch.full((3,), 0.3),
                                                          var=["r"]), {}),
        "categorical": (Categorical(probs=torch.tensor([0.2, 0.8]), var=["c"]), {}),
        "multinomial": (Multinomial(total_count=3, probs=torch.tensor([0.2, 0.8]),
                                    var=["m"]), {}),
        "joint": (Decoder() * Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2]), {}),
        "deterministic": (Embed(), {"x": x}),
        "mixture": (MixtureModel(comps, prior=Categorical(probs=torch.tensor([0.3, 0.7]),
                                                          var=["k"], name="p_k")), {}),
        "experts": (MixtureOfNormal(experts),
                    {"a": torch.zeros(4, 1), "b": torch.ones(4, 1)}),
        "product of experts": (ProductOfNormal(experts, weight_modalities=[1.0, 2.0, 0.5]),
                               {"a": torch.zeros(4, 1), "b": torch.ones(4, 1)}),
        "product of experts, none given": (ProductOfNormal(experts), {}),
        "element-wise experts": (ElementWiseProductOfNormal(Encoder()), {"x": x}),
        "flow": (TransformedDistribution(Normal(loc=torch.zeros(2), scale=1.0, var=["u"]),
                                         PlanarFlow(2), var=["v"]), {}),
    }


def state(d: nn.Module):
    return list(d.parameters()) + list(d.buffers())


def stray_tensors(module: nn.Module):
    """Tensors kept in plain attributes (also inside dicts, lists and tuples) of any
    submodule: ``.to`` does not move those."""
    out = []

    def walk(obj, where):
        if isinstance(obj, torch.Tensor):
            out.append(where)
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{where}[{k!r}]")
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                walk(v, f"{where}[{i}]")

    for name, m in module.named_modules():
        for k, v in vars(m).items():
            if k not in ("_parameters", "_buffers", "_modules"):
                walk(v, f"{name or type(m).__name__}.{k}")
    return out


@contextlib.contextmanager
def sync_debug(mode):
    """``torch.cuda.set_sync_debug_mode(mode)`` inside the block, ``"default"`` after it
    (also when setting it raised), without torch's "prototype feature" notice."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Synchronization debug mode is a "
                                                      "prototype feature")
            torch.cuda.set_sync_debug_mode(mode)
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def _to(values, device):
    return {k: v.to(device) for k, v in values.items()}


# --- CPU: .to reaches everything --------------------------------------------------------
@pytest.mark.parametrize("name", list(catalog()))
def test_every_tensor_is_a_parameter_or_buffer(name):
    d, _ = catalog()[name]
    assert state(d), name
    assert stray_tensors(d) == []


@pytest.mark.parametrize("name", list(catalog()))
def test_to_meta_moves_parameters_buffers_and_constants(name):
    d, _ = catalog()[name]
    d = d.to("meta")
    assert {t.device.type for t in state(d)} == {"meta"}


@pytest.mark.parametrize("name", list(catalog()))
def test_double_converts_everything_and_still_samples(name):
    d, cond = catalog()[name]
    d = d.double()
    assert {t.dtype for t in state(d) if t.is_floating_point()} == {torch.float64}
    out = d.sample(_to({k: v.double() for k, v in cond.items()}, "cpu"), batch_n=4)
    assert all(out[v].dtype == torch.float64 for v in d.var if out[v].is_floating_point())


def test_double_joint_log_prob_matches_the_closed_form_in_float64():
    """log N(x; 0.125, 0.375) + log N(z; x, 1) at float64 precision: the constants were
    converted, not just the parameters.  (Constants are stored in the default dtype, so
    they are chosen exact in float32.)"""
    px = Normal(loc=0.125, scale=0.375, var=["x"])
    pz = Normal(loc="x", scale=1.0, var=["z"], cond_var=["x"])
    joint = (pz * px).double()
    x = torch.tensor([[0.7], [-1.3]], dtype=torch.float64)
    z = torch.tensor([[0.2], [2.9]], dtype=torch.float64)

    def log_normal(v, m, s):
        return -0.5 * ((v - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)

    want = torch.tensor([log_normal(a, 0.125, 0.375) + log_normal(b, a, 1.0)
                         for a, b in zip(x.flatten().tolist(), z.flatten().tolist())],
                        dtype=torch.float64)
    got = joint.get_log_prob({"x": x, "z": z})
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


# --- CUDA ---------------------------------------------------------------------------------
def vae():
    torch.manual_seed(0)
    q, p = Encoder(), Decoder()
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2], name="p_prior")
    loss = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean()
    return q, p, prior, loss


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("name", list(catalog()))
def test_to_cuda_moves_everything_and_evaluates_there(name):
    d, cond = catalog()[name]
    d = d.to("cuda")
    assert {t.device.type for t in state(d)} == {"cuda"}
    out = d.sample(_to(cond, "cuda"), batch_n=4)
    assert all(out[v].device.type == "cuda" for v in d.var)


@pytest.mark.gpu
@needs_cuda
def test_loss_evaluation_makes_no_host_sync():
    q, p, prior, loss = vae()
    for d in (q, p, prior):
        d.to("cuda")
    x = torch.rand(16, 6, device="cuda")
    loss.eval({"x": x}).backward()  # first call: validation may read values
    torch.cuda.synchronize()
    with sync_debug("error"):
        value, terms = loss.eval({"x": x}, return_terms=True)
        value.backward()
    assert value.device.type == "cuda" and len(terms) == 2
    assert all(t.device.type == "cuda" for t in terms.values())


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("compile", [False, "reduce-overhead"])
def test_check_every_steps_make_no_host_sync_between_reads(compile):
    """``check_every=16`` with a fused Adam, eagerly and under CUDA graphs: once warm (the
    first step reads; compiling and recording the graphs may sync), the steps between two
    reads launch everything without a sync, a refused one is skipped on the device, and
    the read sees it."""
    q, p, prior, loss = vae()
    for d in (q, p, prior):
        d.to("cuda")
    model = Model(loss, distributions=[q, p], check_every=16, skip_nonfinite=True,
                  compile=compile, optimizer_params={"lr": 1e-2, "fused": True})
    x = torch.rand(16, 6, device="cuda")
    bad = x.clone()
    bad[0, 0] = float("nan")
    for _ in range(4):
        model.train({"x": x})
    torch.cuda.synchronize()
    with sync_debug("error"):
        for batch in (x, bad, x, x):
            value = model.train({"x": batch})
    assert value.device.type == "cuda" and model.skipped_steps == 0
    model.sync()
    assert (model.step_count, model.skipped_steps) == (7, 1)
    assert all(torch.isfinite(t).all() for t in state(q))


@pytest.mark.gpu
@needs_cuda
def test_a_train_step_syncs_once_to_read_its_value(tmp_path):
    q, p, prior, loss = vae()
    model = Model(loss, distributions=[q, p], optimizer_params={"lr": 1e-2})
    for d in (q, p, prior):
        d.to("cuda")
    x = torch.rand(16, 6, device="cuda")
    for _ in range(2):  # warm-up: first-call validation, optimizer state
        model.train({"x": x})
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with sync_debug("warn"):
            value = model.train({"x": x})
    syncs = [w for w in seen if "called a synchronizing" in str(w.message)]
    assert len(syncs) == 1, [str(w.message) for w in syncs]
    assert value.device.type == "cuda"
    model.save(str(tmp_path / "ckpt.pt"))
    before = [t.clone() for t in state(q)]
    model.train({"x": x})
    model.load(str(tmp_path / "ckpt.pt"))
    assert all(torch.equal(a, b) and b.device.type == "cuda" for a, b in zip(before, state(q)))


@pytest.mark.gpu
@needs_cuda
@pytest.mark.skipif(not torch.distributed.is_available()
                    or not torch.distributed.is_nccl_available(), reason="needs nccl")
def test_ddp_on_nccl_with_one_rank_trains_like_no_ddp():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    x = torch.rand(16, 6, device="cuda")

    def run(distributed):
        torch.manual_seed(1)
        q, p, prior, loss = vae()
        for d in (q, p, prior):
            d.to("cuda")
        model = Model(loss, distributions=[q, p], optimizer_params={"lr": 1e-2},
                      distributed=distributed)
        for _ in range(3):
            torch.manual_seed(2)
            model.train({"x": x})
        return model, torch.cat([t.detach().flatten() for t in model._params])

    with warnings.catch_warnings():  # NCCL's start-up notices are not what is tested
        warnings.simplefilter("ignore")
        torch.distributed.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}",
                                             rank=0, world_size=1, device_id=torch.device(
                                                 "cuda", torch.cuda.current_device()),
                                             timeout=datetime.timedelta(seconds=60))
        try:
            model, ddp_params = run(None)  # switches on by itself
            assert model.distributed
            _, plain = run(False)
        finally:
            torch.distributed.destroy_process_group()
    torch.testing.assert_close(ddp_params, plain, rtol=0, atol=1e-6)


@pytest.mark.gpu
@needs_cuda
def test_cuda_graph_steps_match_eager_and_their_values_stay_valid():
    """``Model(compile="reduce-overhead")`` replays the step as CUDA graphs: the same
    losses and parameters as eager (both draw from the same generator), and a value that
    ``train`` returned is still readable after later replays have reused the graph's
    memory."""
    xs = torch.rand(6, 16, 6, device="cuda",
                    generator=torch.Generator(device="cuda").manual_seed(0)).round()

    def run(compile):
        q, p, prior, loss = vae()
        for d in (q, p, prior):
            d.to("cuda")
        model = Model(loss, distributions=[q, p], optimizer_params={"lr": 1e-2},
                      compile=compile)
        torch.manual_seed(2)
        values = [model.train({"x": x}) for x in xs]  # read only after every step
        return [float(v) for v in values], torch.cat([t.detach().flatten()
                                                      for t in model._params])

    with torch._inductor.config.patch(fallback_random=True):
        eager_values, eager_params = run(False)
        graph_values, graph_params = run("reduce-overhead")
    assert graph_values == pytest.approx(eager_values, rel=1e-5)
    torch.testing.assert_close(graph_params, eager_params, rtol=1e-4, atol=1e-6)
