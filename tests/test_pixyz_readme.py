'''The Distribution part of Pixyz 0.3.3's README runs with the imports remapped and
prints what Pixyz prints.

``README_CODE`` is the README's code (its ``>>>`` prompts removed), with
``pixyz.distributions -> pixyz_pyro.dist`` and ``pixyz.losses -> pixyz_pyro.loss``.
The expected texts were printed by Pixyz 0.3.3 running the same code.
'''
import re

import pytest
import torch

from pixyz_pyro.errors import ShapeError

README_CODE = '''
import torch
from torch import nn
from torch.nn import functional as F
from pixyz_pyro.dist import Bernoulli, Normal
# inference model (encoder) q(z|x)
class Inference(Normal):
    def __init__(self):
        super(Inference, self).__init__(var=["z"],cond_var=["x"],name="q")  # var: variables of this distribution, cond_var: coditional variables.
        self.fc1 = nn.Linear(784, 512)
        self.fc21 = nn.Linear(512, 64)
        self.fc22 = nn.Linear(512, 64)

    def forward(self, x):  # the name of this argument should be same as cond_var.
        h = F.relu(self.fc1(x))
        return {"loc": self.fc21(h),
                "scale": F.softplus(self.fc22(h))}  # return parameters of the normal distribution

# generative model (decoder) p(x|z)
class Generator(Bernoulli):
    def __init__(self):
        super(Generator, self).__init__(var=["x"], cond_var=["z"], name="p")
        self.fc1 = nn.Linear(64, 512)
        self.fc2 = nn.Linear(512, 128)

    def forward(self, z):  # the name of this argument should be same as cond_var.
        h = F.relu(self.fc1(z))
        return {"probs": F.sigmoid(self.fc2(h))}    # return a parameter of the Bernoulli distribution
p = Generator()
q = Inference()
prior = Normal(loc=torch.tensor(0.), scale=torch.tensor(1.),
               var=["z"], features_shape=[64], name="p_prior")
print(p)
samples_z = prior.sample(batch_n=1)
print(samples_z)
samples = p.sample(samples_z)
print(samples)
p_joint = p * prior
print(p_joint)
p_joint.sample(batch_n=1)
from pixyz_pyro.loss import KullbackLeibler, LogProb, Expectation as E
reconst = -E(q, LogProb(p)) # the reconstruction loss (it can also be written as `-p.log_prob().expectation()`)
kl = KullbackLeibler(q,prior) # Kullback-Leibler divergence
loss_cls = (kl + reconst).mean()
print(loss_cls)
'''  # noqa: E501 - the README's own long lines, kept verbatim

PIXYZ_P = '''Distribution:
  p(x|z)
Network architecture:
  Generator(
    name=p, distribution_name=Bernoulli,
    var=['x'], cond_var=['z'], input_var=['z'], features_shape=torch.Size([])
    (fc1): Linear(in_features=64, out_features=512, bias=True)
    (fc2): Linear(in_features=512, out_features=128, bias=True)
  )'''

PIXYZ_P_JOINT = '''Distribution:
  p(x,z) = p(x|z)p_{prior}(z)
Network architecture:
  p_{prior}(z):
  Normal(
    name=p_{prior}, distribution_name=Normal,
    var=['z'], cond_var=[], input_var=[], features_shape=torch.Size([64])
    (loc): torch.Size([1, 64])
    (scale): torch.Size([1, 64])
  )
  p(x|z):
  Generator(
    name=p, distribution_name=Bernoulli,
    var=['x'], cond_var=['z'], input_var=['z'], features_shape=torch.Size([])
    (fc1): Linear(in_features=64, out_features=512, bias=True)
    (fc2): Linear(in_features=512, out_features=128, bias=True)
  )'''

PIXYZ_PRIOR = '''Distribution:
  p_{prior}(z)
Network architecture:
  Normal(
    name=p_{prior}, distribution_name=Normal,
    var=['z'], cond_var=[], input_var=[], features_shape=torch.Size([64])
    (loc): torch.Size([1, 64])
    (scale): torch.Size([1, 64])
  )'''

PIXYZ_LOSS = (r"mean \left(D_{KL} \left[q(z|x)||p_{prior}(z) \right] - \mathbb{E}_{q(z|x)} "
              r"\left[\log p(x|z) \right] \right)")


@pytest.fixture
def readme(capsys):
    ns: dict = {}
    exec(compile(README_CODE, "README.md", "exec"), ns)
    return ns, capsys.readouterr().out


def test_readme_prints_what_pixyz_prints(readme):
    ns, out = readme
    assert out.startswith(PIXYZ_P + "\n")
    assert "\n" + PIXYZ_P_JOINT + "\n" in out
    assert out.rstrip().endswith(PIXYZ_LOSS)
    assert str(ns["prior"]) == PIXYZ_PRIOR
    assert str(ns["p"]) == PIXYZ_P and str(ns["p_joint"]) == PIXYZ_P_JOINT


def test_readme_samples(readme):
    ns, out = readme
    z = ns["samples_z"]["z"]
    assert set(ns["samples_z"]) == {"z"} and z.shape == (1, 64)
    samples = ns["samples"]
    assert set(samples) == {"z", "x"} and samples["z"] is z
    assert samples["x"].shape == (1, 128)
    assert set(samples["x"].unique().tolist()) <= {0.0, 1.0}
    assert re.search(r"\{'z': tensor\(\[\[", out)  # the dicts were printed as in the README
    joint = ns["p_joint"].sample(batch_n=3)
    assert joint["z"].shape == (3, 64) and joint["x"].shape == (3, 128)


def test_readme_loss_mismatch_is_reported_in_the_users_terms(readme):
    """The README's decoder emits 128 features for a 784-pixel x: Pixyz fails inside
    torch ("The size of tensor a (128) must match ..."); we name the distribution."""
    ns, _ = readme
    x = torch.rand(4, 784).bernoulli()
    with pytest.raises(ShapeError, match=re.escape('p(x|z): "x" has shape (4, 784), but the '
                                                   "parameters have shape (4, 128)")):
        ns["loss_cls"].eval({"x": x})


def test_readme_loss_evaluates_with_a_matching_decoder(readme):
    ns, _ = readme
    p = ns["p"]
    p.fc2 = torch.nn.Linear(512, 784)
    x = torch.rand(4, 784).bernoulli()
    torch.manual_seed(2)
    value = ns["loss_cls"].eval({"x": x})
    q, prior = ns["q"], ns["prior"]
    torch.manual_seed(2)
    kl = ns["KullbackLeibler"](q, prior).eval({"x": x})
    z = q.sample({"x": x}, reparam=True)["z"]
    rec = p.get_log_prob({"x": x, "z": z})
    assert value.dim() == 0
    assert torch.allclose(value, (kl - rec).mean(), rtol=1e-5)
