"""The small VAE every error case starts from, and the snapshot that proves a refused
call changed nothing (parameters, buffers, optimizer state, step counts).

The encoder has a ``BatchNorm1d``, so a forward pass that runs before the error would
move its running statistics: the snapshot catches that.
"""
import copy

import torch
from torch import nn

from pixyz_pyro.dist import Bernoulli, Normal
from pixyz_pyro.loss import Expectation, KullbackLeibler, LogProb
from pixyz_pyro.model import Model


class Encoder(Normal):
    """q(z|x): x (4 features) -> z (``z_dim`` features), with a BatchNorm."""

    def __init__(self, z_dim=2, name="q"):
        super().__init__(var=["z"], cond_var=["x"], name=name)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh())
        self.loc = nn.Linear(8, z_dim)
        self.log_scale = nn.Linear(8, z_dim)

    def forward(self, x):
        h = self.net(x)
        return {"loc": self.loc(h), "scale": self.log_scale(h).exp()}


class Decoder(Bernoulli):
    """p(x|z): z (2 features) -> x (4 features)."""

    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.net = nn.Linear(2, 4)

    def forward(self, z):
        return {"probs": torch.sigmoid(self.net(z))}


def prior(z_dim=2):
    return Normal(loc=torch.zeros(z_dim), scale=torch.ones(z_dim), var=["z"],
                  name="p_{prior}")


class World:
    """A VAE, its model and a batch; ``warm`` trains two steps first, so the optimizer
    state and the running statistics are not trivial (and first-call checks are done)."""

    def __init__(self, warm=True):
        torch.manual_seed(0)
        self.q, self.p, self.prior = Encoder(), Decoder(), prior()
        self.loss = (KullbackLeibler(self.q, self.prior)
                     - Expectation(self.q, LogProb(self.p))).mean()
        self.model = Model(self.loss, distributions=[self.p, self.q],
                           optimizer=torch.optim.Adam, optimizer_params={"lr": 1e-2})
        self.x = torch.rand(8, 4)
        if warm:
            for _ in range(2):
                self.model.train({"x": self.x})
        self.watched = [self.model]

    def watch(self, *objects):
        """Also prove these unchanged (modules, optimizers, models)."""
        self.watched.extend(objects)
        return objects[0] if len(objects) == 1 else objects


def state_of(obj):
    """Everything a refused call must leave alone, as plain data."""
    if isinstance(obj, Model):
        return {"distributions": [d.state_dict() for d in obj.distributions],
                "optimizer": obj.optimizer.state_dict(), "step_count": obj.step_count,
                "skipped_steps": obj.skipped_steps}
    return obj.state_dict()


def snapshot(objects):
    return copy.deepcopy([state_of(o) for o in objects])


def assert_same(a, b, where="state"):
    """Recursive equality; tensors element for element (NaN equals NaN)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert a.shape == b.shape and bool(((a == b) | (a != a) & (b != b)).all()), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys differ"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


class Case:
    """One kind of bad input: ``setup(world)`` returns the call that must fail with
    ``error``, whose message contains every one of ``fragments``."""

    def __init__(self, setup, title, error, fragments, warm, code):
        self.name, self.setup, self.title = setup.__name__, setup, title
        self.error, self.fragments, self.warm, self.code = error, fragments, warm, code

    def run(self):
        """Set up, snapshot, call; return (exception, before, after)."""
        world = World(warm=self.warm)
        call = self.setup(world)
        before = snapshot(world.watched)
        try:
            call()
        except Exception as e:  # noqa: BLE001 - the caller checks the type
            return e, before, snapshot(world.watched)
        raise AssertionError(f"{self.name}: no error was raised")


CASES = []


def case(title, error, *fragments, warm=True, code=""):
    """Register a catalogue case (see :class:`Case`)."""
    def register(setup):
        CASES.append(Case(setup, title, error, fragments, warm, code.strip()))
        return setup
    return register
