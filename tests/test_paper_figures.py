"""The code of the Pixyz paper's figures runs as printed, with our imports.

Figure 2 is the VAE (distributions with networks, the loss, ``Model``); Figure 3 gives
the M2 losses and the TD-VAE loss.  Only the imports change:
``pixyz.distributions -> pixyz_pyro.dist``, ``pixyz.losses -> pixyz_pyro.loss`` and
``pixyz.models -> pixyz_pyro.model``.  Each figure's value is also checked against the
same computation written by hand, with the same random draws.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn, optim

from pixyz_pyro.dist import Bernoulli, Deterministic, Normal, RelaxedCategorical
from pixyz_pyro.loss import ELBO, NLL, IterativeLoss, KullbackLeibler, LogProb, LossExpectation
from pixyz_pyro.loss import Expectation as E

# --- Figure 2: the VAE ----------------------------------------------------------------------------

x_dim, z_dim = 784, 64


class Inference(Normal):
    def __init__(self):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.fc1 = nn.Linear(x_dim, 512)
        self.fc21 = nn.Linear(512, z_dim)
        self.fc22 = nn.Linear(512, z_dim)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        return {"loc": self.fc21(h), "scale": F.softplus(self.fc22(h))}


class Generator(Bernoulli):
    def __init__(self):
        super().__init__(var=["x"], cond_var=["z"], name="p")
        self.fc1 = nn.Linear(z_dim, 512)
        self.fc2 = nn.Linear(512, x_dim)

    def forward(self, z):
        h = F.relu(self.fc1(z))
        return {"probs": torch.sigmoid(self.fc2(h))}


def figure2():
    p = Generator()
    q = Inference()
    prior = Normal(loc=torch.tensor(0.), scale=torch.tensor(1.),
                   var=["z"], features_shape=[z_dim], name="p_{prior}")
    loss_cls = (KullbackLeibler(q, prior) - E(q, LogProb(p))).mean()
    return p, q, prior, loss_cls


def test_figure2_vae_loss_equals_the_hand_written_vae():
    p, q, prior, loss_cls = figure2()
    x = torch.rand(8, x_dim).bernoulli()
    torch.manual_seed(11)
    value = loss_cls.eval({"x": x})

    torch.manual_seed(11)
    h = F.relu(q.fc1(x))
    loc, scale = q.fc21(h), F.softplus(q.fc22(h))
    kl = (-scale.log() + 0.5 * (scale ** 2 + loc ** 2) - 0.5).sum(-1)
    z = torch.distributions.Normal(loc, scale).rsample()
    probs = torch.sigmoid(p.fc2(F.relu(p.fc1(z))))
    rec = (x * probs.log() + (1 - x) * (1 - probs).log()).sum(-1)
    assert torch.allclose(value, (kl - rec).mean(), rtol=1e-5)


def test_figure2_vae_trains_with_model():
    model_api = pytest.importorskip("pixyz_pyro.model")
    p, q, prior, loss_cls = figure2()
    model = model_api.Model(loss_cls, distributions=[p, q],
                            optimizer=optim.Adam, optimizer_params={"lr": 1e-3})
    x = torch.rand(16, x_dim).bernoulli()
    first = float(model.test({"x": x}))
    for _ in range(15):
        model.train({"x": x})
    assert float(model.test({"x": x})) < first - 10


# --- Figure 3: M2 ------------------------------------------------------------------------------

m2_x, m2_y, m2_z = 20, 3, 4


class M2Inference(Normal):
    def __init__(self):
        super().__init__(cond_var=["x", "y"], var=["z"], name="q")
        self.fc1 = nn.Linear(m2_x + m2_y, 16)
        self.fc21 = nn.Linear(16, m2_z)
        self.fc22 = nn.Linear(16, m2_z)

    def forward(self, x, y):
        h = F.relu(self.fc1(torch.cat([x, y], 1)))
        return {"loc": self.fc21(h), "scale": F.softplus(self.fc22(h))}


class M2Generator(Bernoulli):
    def __init__(self):
        super().__init__(cond_var=["z", "y"], var=["x"], name="p")
        self.fc1 = nn.Linear(m2_z + m2_y, 16)
        self.fc2 = nn.Linear(16, m2_x)

    def forward(self, z, y):
        h = F.relu(self.fc1(torch.cat([z, y], 1)))
        return {"probs": torch.sigmoid(self.fc2(h))}


class Classifier(RelaxedCategorical):
    def __init__(self):
        super().__init__(cond_var=["x"], var=["y"], name="p")
        self.fc1 = nn.Linear(m2_x, 16)
        self.fc2 = nn.Linear(16, m2_y)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        return {"probs": F.softmax(self.fc2(h), dim=1)}


def test_figure3_m2_losses():
    prior = Normal(loc=torch.tensor(0.), scale=torch.tensor(1.),
                   var=["z"], features_shape=[m2_z], name="p_{prior}")
    p, q, f = M2Generator(), M2Inference(), Classifier()
    p_joint = p * prior
    _q_u = q.replace_var(x="x_u", y="y_u")
    p_u = p.replace_var(x="x_u", y="y_u")
    f_u = f.replace_var(x="x_u", y="y_u")
    q_u = _q_u * f_u
    p_joint_u = p_u * prior

    # as printed in Figure 3
    elbo_u = ELBO(p_joint_u, q_u)
    elbo = ELBO(p_joint, q)
    nll = NLL(f)
    loss_cls = -(elbo - (0.1 * nll).sum()) - elbo_u.sum()

    assert sorted(loss_cls.input_var) == ["x", "x_u", "y"]
    data = {"x": torch.rand(6, m2_x).bernoulli(),
            "y": F.one_hot(torch.randint(0, m2_y, (6,)), m2_y).float(),
            "x_u": torch.rand(6, m2_x).bernoulli()}
    torch.manual_seed(3)
    value = loss_cls.eval(data)
    # the parts, evaluated one by one in the same order, draw the same samples
    torch.manual_seed(3)
    e = elbo.eval(data)
    n = nll.eval(data)
    eu = elbo_u.eval(data)
    assert value.shape == (6,)
    assert torch.allclose(value, -(e - (0.1 * n).sum()) - eu.sum(), rtol=1e-5)
    # the classifier's NLL is the hard categorical NLL of the labels
    probs = f.get_params({"x": data["x"]})["probs"]
    assert torch.allclose(n, -(data["y"] * probs.log()).sum(-1), rtol=1e-5)
    # every network gets a gradient, the classifier also through the unlabelled ELBO
    value.sum().backward()
    for net in (p.fc1, q.fc1, f.fc1):
        assert net.weight.grad.abs().sum() > 0


# --- Figure 3: TD-VAE --------------------------------------------------------------------------

b_size, z_size, x_size, seq_len = 6, 2, 5, 4


class Filtering(Normal):
    def __init__(self):
        super().__init__(cond_var=["b_t1"], var=["z_t1"], name="p_b")
        self.fc = nn.Linear(b_size, 2 * z_size)

    def forward(self, b_t1):
        mu, logsigma = self.fc(b_t1).chunk(2, -1)
        return {"loc": mu, "scale": logsigma.exp()}


class TDInference(Normal):
    def __init__(self):
        super().__init__(cond_var=["z_t2", "b_t1", "b_t2"], var=["z_t1"], name="q")
        self.fc = nn.Linear(z_size + 2 * b_size, 2 * z_size)

    def forward(self, z_t2, b_t1, b_t2):
        mu, logsigma = self.fc(torch.cat((z_t2, b_t1, b_t2), dim=1)).chunk(2, -1)
        return {"loc": mu, "scale": logsigma.exp()}


class Transition(Normal):
    def __init__(self):
        super().__init__(cond_var=["z_t1"], var=["z_t2"], name="p_t")
        self.fc = nn.Linear(z_size, 2 * z_size)

    def forward(self, z_t1):
        mu, logsigma = self.fc(z_t1).chunk(2, -1)
        return {"loc": mu, "scale": logsigma.exp()}


class Decoder(Bernoulli):
    def __init__(self):
        super().__init__(cond_var=["z_t2"], var=["x_t2"], name="p_d")
        self.fc = nn.Linear(z_size, x_size)

    def forward(self, z_t2):
        return {"probs": torch.sigmoid(self.fc(z_t2))}


class BeliefStateNet(Deterministic):
    def __init__(self):
        super().__init__(cond_var=["x"], var=["b"])
        self.lstm = nn.LSTM(input_size=x_size, hidden_size=b_size)

    def forward(self, x):
        b, *_ = self.lstm(x)
        return {"b": b}


class SliceStep(Deterministic):
    def __init__(self):
        super().__init__(cond_var=["t", "x", "b"], var=["x_t2", "b_t1", "b_t2"], name="f")

    def forward(self, t, x, b):
        return {"x_t2": x[t + 1], "b_t1": b[t], "b_t2": b[t + 1]}


def test_figure3_tdvae_loss():
    p_b1 = Filtering()
    p_b2 = p_b1.replace_var(b_t1="b_t2", z_t1="z_t2")
    p_t, q, p_d = Transition(), TDInference(), Decoder()
    belief_state_net, slice_step = BeliefStateNet(), SliceStep()

    # as printed in Figure 3
    kl = KullbackLeibler(q, p_b1)
    reconst = LossExpectation(q, NLL(p_t) + NLL(p_d) - NLL(p_b2))
    step_loss = LossExpectation(p_b2, reconst + kl)
    _loss = IterativeLoss(step_loss, max_iter=seq_len - 1,
                          series_var=["x", "b"], slice_step=slice_step)
    loss = LossExpectation(belief_state_net, _loss).mean()

    x = torch.rand(seq_len, 3, x_size).bernoulli()  # (time, batch, features)
    torch.manual_seed(5)
    value = loss.eval({"x": x})
    # by hand: the belief states, then each step's loss on its slice, summed over time
    torch.manual_seed(5)
    b = belief_state_net.sample({"x": x})["b"]
    total = sum(step_loss.eval({"x_t2": x[t + 1], "b_t1": b[t], "b_t2": b[t + 1]})
                for t in range(seq_len - 1))
    assert value.dim() == 0
    assert torch.allclose(value, total.mean(), rtol=1e-5)
    value.backward()
    for net in (p_b1.fc, q.fc, p_t.fc, p_d.fc):
        assert net.weight.grad.abs().sum() > 0
    assert belief_state_net.lstm.weight_ih_l0.grad.abs().sum() > 0
