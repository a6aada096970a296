"""Data-parallel training on torch.distributed (gloo on loopback, two spawned processes).

* Two ranks that each train on their half of a batch end with parameters identical to
  each other and to one process trained on the whole batch (the loss is a batch mean and
  deterministic: a conditional log-likelihood plus an analytic KL, no sampling).
* A rank that raises inside ``train`` ends the job with its own error, and nothing hangs.
"""
import datetime
import os
import socket
import subprocess
import sys
import time
import traceback

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.multiprocessing.spawn import ProcessException
from torch.nn import functional as F

from pixyz_pyro.dist import Deterministic, Normal
from pixyz_pyro.loss import KullbackLeibler, LogProb
from pixyz_pyro.model import GAN, Model
from pixyz_pyro.model import distributed as ddp_util

pytestmark = pytest.mark.distributed

STEPS = 5
JOB_TIMEOUT = 120.0  # seconds; the job is killed (and the test fails) past this


class Decoder(Normal):
    """p(y|x): a Normal whose mean and scale come from linear layers."""

    def __init__(self):
        super().__init__(var=["y"], cond_var=["x"], name="p")
        self.loc_net = nn.Linear(3, 2)
        self.scale_net = nn.Linear(3, 2)

    def forward(self, x):
        return {"loc": self.loc_net(x), "scale": F.softplus(self.scale_net(x)) + 0.1}


class Encoder(Normal):
    """q(z|x)."""

    def __init__(self):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.net = nn.Linear(3, 4)

    def forward(self, x):
        h = self.net(x)
        return {"loc": h[:, :2], "scale": F.softplus(h[:, 2:]) + 0.1}


def build(seed: int, fused: bool = False, **model_kwargs) -> Model:
    """Two networks, a prior with a trainable mean (a parameter) and a constant scale (a
    buffer), and an unused distribution whose parameter never gets a gradient; ``fused``:
    a fused Adam (for ``check_every``)."""
    torch.manual_seed(seed)
    p, q = Decoder(), Encoder()
    prior = Normal(loc=nn.Parameter(torch.randn(2)), scale=1.0, var=["z"], name="p_prior")
    unused = Normal(loc=nn.Parameter(torch.randn(2)), scale=1.0, var=["w"], name="r")
    loss = (-LogProb(p) + KullbackLeibler(q, prior)).mean()
    return Model(loss, distributions=[p, q, prior, unused], optimizer=torch.optim.Adam,
                 optimizer_params={"lr": 0.05, **({"fused": True} if fused else {})},
                 allow_unused=True, **model_kwargs)


class Generator(Deterministic):
    def __init__(self):
        super().__init__(var=["y"], cond_var=["z"], name="g")
        self.net = nn.Linear(2, 2)

    def forward(self, z):
        return {"y": self.net(z)}


class Discriminator(Deterministic):
    def __init__(self):
        super().__init__(var=["t"], cond_var=["y"], name="d")
        self.net = nn.Linear(2, 1)

    def forward(self, y):
        return {"t": torch.sigmoid(self.net(y))}


def build_gan(seed: int) -> GAN:
    torch.manual_seed(seed)
    prior = Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2], name="p_z")
    p = (Generator() * prior).marginalize_var("z")
    return GAN(p, Discriminator(), optimizer_params={"lr": 0.05},
               d_optimizer_params={"lr": 0.05})


def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, generator=g), torch.randn(8, 2, generator=g)


def flat_params(model: Model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model._params])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the processes ---------------------------------------------------------------------
def _init(rank: int, world_size: int, port: int) -> None:
    if os.path.isdir("/sys/class/net/lo"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size,
        timeout=datetime.timedelta(seconds=30))


def _rank_main(rank, port, out, job):
    """Run the job named ``job`` on this rank; on an exception write its text and time to
    ``error<rank>.txt`` (as torchrun's error files do) and re-raise."""
    try:
        JOBS[job](rank, port, out)
    except BaseException:
        with open(os.path.join(out, f"error{rank}.txt"), "w") as f:
            f.write(f"{time.time()!r}\n{traceback.format_exc()}")
        raise
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _agree(rank, port, out):
    _init(rank, 2, port)
    # Different seeds per rank: DDP must broadcast rank 0's parameters.
    start = flat_params(build(seed=100 + rank, distributed=False))
    model = build(seed=100 + rank)
    calls = []

    def counting_allreduce(state, bucket):
        calls.append(bucket.buffer().numel())
        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
        return allreduce_hook(state, bucket)

    model.ddp.register_comm_hook(None, counting_allreduce)
    x, y = data()
    xs, ys = x[rank::2], y[rank::2]
    losses = [model.train({"x": xs, "y": ys}, average_across_ranks=True) for _ in range(STEPS)]
    model.save(os.path.join(out, f"rank{rank}", "ckpt.pt"))
    gan = build_gan(seed=200 + rank)
    d_start = torch.cat([t.detach().flatten() for t in gan.discriminator.parameters()])
    for _ in range(3):
        gan.train({"y": ys})
    gan_params = torch.cat([t.detach().flatten() for t in gan.discriminator.parameters()]
                           + [flat_params(gan)])
    auto = Model(model.loss_cls, distributions=list(model.distributions), allow_unused=True)
    off = Model(model.loss_cls, distributions=list(model.distributions), distributed=False,
                allow_unused=True)
    torch.save({"start": start, "params": flat_params(model), "losses": torch.stack(losses),
                "allreduced": calls, "auto": auto.distributed,
                "off": off.distributed, "distributed": model.distributed,
                "gan": gan_params, "d_start": d_start},
               os.path.join(out, f"result{rank}.pt"))


def _fail_on_rank1(rank, port, out):
    _init(rank, 2, port)
    model = build(seed=100)
    x, y = data()
    model.train({"x": x[rank::2], "y": y[rank::2]})
    batch = {"x": x[rank::2]} if rank == 1 else {"x": x[rank::2], "y": y[rank::2]}
    model.train(batch)  # rank 1 forgot "y"
    model.train(batch)


def with_nan(x, step, row):
    """``x``, or at ``step`` a copy with a NaN in ``row``."""
    if step != 2:
        return x
    x = x.clone()
    x[row, 0] = float("nan")
    return x


def _deferred(rank, port, out):
    """``check_every=3`` on two ranks: rank 1's half-batch of step 2 has a NaN, the
    all-reduced gradients make both ranks skip it on the device."""
    _init(rank, 2, port)
    model = build(seed=100, fused=True, check_every=3, skip_nonfinite=True)
    x, y = data()
    xs, ys = x[rank::2], y[rank::2]
    for step in range(STEPS):
        model.train({"x": with_nan(xs, step if rank == 1 else -1, 0), "y": ys},
                    average_across_ranks=True)
    model.sync()
    torch.save({"params": flat_params(model), "skipped": model.skipped_steps,
                "steps": model.step_count}, os.path.join(out, f"result{rank}.pt"))
    torch.distributed.barrier()  # neither rank tears gloo down while the other still uses it


JOBS = {"agree": _agree, "fail_on_rank1": _fail_on_rank1, "deferred": _deferred}


def run_job(job: str, out, nprocs: int = 2):
    """Spawn ``nprocs`` ranks of the job ``job``; return the exception that ended the job
    (or None).  Every process is gone when this returns: a job that outlives JOB_TIMEOUT is
    killed."""
    ctx = mp.start_processes(_rank_main, args=(free_port(), str(out), job), nprocs=nprocs,
                             join=False, start_method="spawn")
    deadline = time.monotonic() + JOB_TIMEOUT
    error = None
    try:
        while not ctx.join(timeout=1.0):
            if time.monotonic() > deadline:
                raise AssertionError(f"the job did not finish within {JOB_TIMEOUT} s")
    except ProcessException as e:
        error = e
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
            p.join()
    return error


# --- the tests ---------------------------------------------------------------------------
def test_two_ranks_train_like_one_process_on_the_whole_batch(tmp_path):
    error = run_job("agree", tmp_path)
    assert error is None, str(error)
    r0, r1 = (torch.load(tmp_path / f"result{r}.pt") for r in range(2))
    assert not torch.equal(r0["start"], r1["start"])  # they were built differently...
    assert torch.equal(r0["params"], r1["params"])     # ...and end identical

    one = build(seed=100)
    assert one.distributed is False  # no process group in this process
    x, y = data()
    losses = torch.stack([one.train({"x": x, "y": y}) for _ in range(STEPS)])
    torch.testing.assert_close(r0["params"], flat_params(one), rtol=0, atol=1e-5)
    # average_across_ranks: the mean of the half-batch means is the full-batch mean
    torch.testing.assert_close(r0["losses"], losses, rtol=0, atol=1e-5)
    torch.testing.assert_close(r1["losses"], losses, rtol=0, atol=1e-5)
    # every gradient is all-reduced once per step, here in one bucket (a small model)
    n = r0["params"].numel()
    assert r0["allreduced"] == r1["allreduced"] == [n] * STEPS
    assert r0["distributed"] and r0["auto"] and not r0["off"]
    # a GAN's discriminator, trained outside DDP, starts and stays equal across ranks too
    assert torch.equal(r0["gan"], r1["gan"])
    assert not torch.equal(r0["gan"][:3], r0["d_start"])  # and it was trained
    # only rank 0 writes checkpoints
    assert (tmp_path / "rank0" / "ckpt.pt").exists()
    assert not (tmp_path / "rank1").exists()


def test_check_every_skips_a_step_on_every_rank_as_one_process_skips_it(tmp_path):
    error = run_job("deferred", tmp_path)
    assert error is None, str(error)
    r0, r1 = (torch.load(tmp_path / f"result{r}.pt") for r in range(2))
    assert torch.equal(r0["params"], r1["params"])
    assert (r0["steps"], r0["skipped"]) == (r1["steps"], r1["skipped"]) == (STEPS - 1, 1)
    one = build(seed=100, fused=True, skip_nonfinite=True)
    x, y = data()
    for step in range(STEPS):
        one.train({"x": with_nan(x, step, 1), "y": y})  # row 1 is rank 1's first
    assert (one.step_count, one.skipped_steps) == (STEPS - 1, 1)
    torch.testing.assert_close(r0["params"], flat_params(one), rtol=0, atol=1e-5)


def test_a_failing_rank_stops_the_job_with_its_error(tmp_path):
    error = run_job("fail_on_rank1", tmp_path)
    assert error is not None, "the job should have failed"
    files = sorted(tmp_path.glob("error*.txt"),
                   key=lambda f: float(f.read_text().split("\n", 1)[0]))
    first = files[0]
    assert first.name == "error1.txt"
    text = first.read_text()
    assert "VariableError" in text and 'needs "y" for evaluation' in text
    if error.error_index == 1:
        assert "VariableError" in str(error)


def test_distributed_true_without_a_process_group_says_how_to_start(monkeypatch):
    for k in ddp_util.TORCHRUN_ENV:
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ddp_util.DistributedError,
                       match=r"Model\(distributed=True\) needs torch.distributed"
                             r".*torchrun --nproc_per_node=N"):
        build_distributed_true()


def build_distributed_true():
    p = Normal(loc=nn.Parameter(torch.zeros(1)), scale=1.0, var=["x"])
    return Model(-LogProb(p).mean(), distributions=[p], distributed=True)


def test_backend_is_gloo_on_cpu_and_nccl_on_cuda():
    assert ddp_util.backend_for("cpu") == "gloo"
    assert ddp_util.backend_for("cuda") == "nccl"
    assert ddp_util.backend_for(torch.device("cuda", 1)) == "nccl"


def test_without_a_process_group_everything_is_rank_0_of_1():
    assert (ddp_util.get_rank(), ddp_util.get_world_size()) == (0, 1)
    assert ddp_util.is_main_process()
    v = torch.tensor(2.5)
    assert ddp_util.average_across_ranks(v) is v


@pytest.mark.examples
def test_torchrun_runs_the_vae_example_on_two_processes(tmp_path):
    """The README's command, shortened: 2 ranks, 2 steps each; only rank 0 prints and
    writes the pictures."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node=2", "-m", "examples.vae", "--distributed", "--epochs", "1",
           "--limit", "512", "--test-limit", "100", "--batch-size", "64", "--max-steps", "2",
           "--no-progress", "--out", str(tmp_path)]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": os.environ.get("GLOO_SOCKET_IFNAME", "lo")}
    if not os.path.isdir("/sys/class/net/lo"):
        env.pop("GLOO_SOCKET_IFNAME")
    run = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                         timeout=JOB_TIMEOUT)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert run.stdout.count("epoch 1: train neg-ELBO") == 1
    for name in ("reconstructions.png", "samples.png", "loss_curve.png", "metrics.json"):
        assert (tmp_path / name).exists(), name
