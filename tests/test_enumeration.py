"""Discrete guide sites summed out inside an expectation, as ``TraceEnum_ELBO`` sums them
(``pixyz_pyro.infer.enumeration``): sites marked by hand in a wrapped guide, and the
scope's errors.  ss_vae_M2 with ``config_enumerate`` is in ``test_pyro_examples.py``."""
import pyro
import pyro.distributions as dist
import pytest
import torch
from _infer_models import max_rel_grads, rel_diff, value_and_grads
from pyro.infer import TraceEnum_ELBO
from torch import nn

from pixyz_pyro.errors import LossError
from pixyz_pyro.infer import SVILoss, from_pyro
from pixyz_pyro.loss import ELBO, Expectation, LogProb

K, B = 3, 5
TOL = 1e-5


class Mixture(nn.Module):
    """y ~ Cat(pi), x ~ N(mu_y, 1); the guide's y is marked for enumeration by hand."""

    def __init__(self):
        super().__init__()
        self.mu = nn.Parameter(torch.tensor([-2.0, 0.0, 2.0]))
        self.logits = nn.Parameter(torch.zeros(K))
        self.net = nn.Linear(1, K)

    def model(self, x):
        pyro.module("mixture", self)
        with pyro.plate("data", x.shape[0]):
            y = pyro.sample("y", dist.Categorical(logits=self.logits))
            pyro.sample("x", dist.Normal(self.mu[y], 1.0), obs=x)

    def guide(self, x):
        pyro.module("mixture", self)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("y", dist.Categorical(logits=self.net(x.unsqueeze(-1))),
                        infer={"enumerate": "parallel"})


def _mixture():
    torch.manual_seed(0)
    m = Mixture()
    p = from_pyro(m.model, var=["x", "y"])
    q = from_pyro(m.guide, var=["y"], name="q")
    return m, p, q, torch.randn(B) * 2


def test_a_site_marked_by_hand_is_summed_out_as_trace_enum_elbo_does():
    m, p, q, x = _mixture()
    params = list(m.parameters())
    torch.manual_seed(1)
    a, ga = value_and_grads(-ELBO(p, q).sum().eval({"x": x}), params)
    torch.manual_seed(1)
    b, gb = value_and_grads(
        TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(m.model, m.guide, x), params)
    assert rel_diff(a, b) < TOL and max_rel_grads(ga, gb) < TOL
    assert all(float(g.abs().max()) > 0 for g in gb)


def test_the_sum_over_classes_is_exact():
    """Nothing is drawn: the value is the closed form
    sum_y q(y|x) (log p(y) + log N(x; mu_y, 1) - log q(y|x)), with no seed at all."""
    m, p, q, x = _mixture()
    with torch.no_grad():
        lq = torch.log_softmax(m.net(x.unsqueeze(-1)), -1)
        lp = torch.log_softmax(m.logits, -1) + dist.Normal(m.mu, 1.0).log_prob(x.unsqueeze(-1))
        exact = (lq.exp() * (lp - lq)).sum(-1)
        ours = ELBO(p, q).eval({"x": x})
    assert ours.shape == (B,)
    assert rel_diff(ours, exact) < TOL


def test_svi_loss_runs_trace_enum_elbo_for_the_marked_guide():
    m, p, q, x = _mixture()
    loss = -ELBO(p, q).sum()
    torch.manual_seed(1)
    a = SVILoss(loss)(m.model, m.guide, x)
    torch.manual_seed(1)
    b = TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(m.model, m.guide, x)
    assert rel_diff(a, b) < TOL


def test_an_enumerated_expectation_needs_a_body_per_row():
    m, p, q, x = _mixture()
    reduced = Expectation(q, (LogProb(p) - LogProb(q)).sum())
    with pytest.raises(LossError, match=r"^q\(y\|x\): an expectation over enumerated sites "
                                        r"needs a body with one value per row \(15 folded "
                                        r"rows\), got \(\); reduce with \.sum\(\) or "
                                        r"\.mean\(\) outside the expectation"):
        reduced.eval({"x": x})


def test_enumeration_outside_the_data_plate_is_refused():
    def guide(x):
        pyro.sample("c", dist.Categorical(torch.ones(K) / K), infer={"enumerate": "parallel"})

    def model(x):
        c = pyro.sample("c", dist.Categorical(torch.ones(K) / K))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(c.float(), 1.0), obs=x)

    p, q = from_pyro(model, var=["x", "c"]), from_pyro(guide, var=["c"], name="q")
    with pytest.raises(LossError, match=r'^q\(c\|x\) \(test_enumeration_outside_the_data_plate'
                                        r'_is_refused.<locals>.guide\): the enumerated site '
                                        r'"c" is outside the data plate'):
        ELBO(p, q).eval({"x": torch.zeros(B)})


def test_enumeration_needs_the_sites_in_the_data_plate_at_dim_minus_one():
    def guide(x):
        with pyro.plate("data", x.shape[0]), pyro.plate("pixels", 2, dim=-2):
            pyro.sample("y", dist.Categorical(torch.ones(K) / K),
                        infer={"enumerate": "parallel"})

    q = from_pyro(guide, var=["y"], name="q", max_plate_nesting=2)
    p = from_pyro(guide, var=["y"])
    with pytest.raises(LossError, match=r"needs every site in one data plate at dim -1; the "
                                        r"site \"y\" is in the plates \[\('data', -1\), "
                                        r"\('pixels', -2\)\]"):
        ELBO(p, q).eval({"x": torch.zeros(B)})


def test_max_plate_nesting_must_be_a_positive_int():
    with pytest.raises(ValueError, match=r"max_plate_nesting must be a positive int, got 0"):
        from_pyro(Mixture().guide, var=["y"], max_plate_nesting=0)


# --- our own Categorical: enumerated(q, ["y"]) ---------------------------------------------------
def _m2():
    from _infer_models import m2
    qz, qy, p, pz, py = m2()
    return qz, qy, p * pz * py, torch.rand(B, 6)


def test_an_enumerated_native_guide_is_trace_enum_elbos_on_its_programs():
    from _infer_models import params_of

    from pixyz_pyro.infer import enumerated, to_pyro
    qz, qy, p, x = _m2()
    q = enumerated(qz * qy, ["y"])
    assert q.prob_text == "q(z,y|x)" and q.enumerated_var == ("y",)
    model, guide = to_pyro(p, observed=["x"]), to_pyro(q)
    params = params_of(qz, qy, p)
    torch.manual_seed(1)
    a, ga = value_and_grads(-ELBO(p, q).sum().eval({"x": x}), params)
    torch.manual_seed(1)
    b, gb = value_and_grads(
        TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(model, guide, x=x), params)
    assert rel_diff(a, b) < TOL and max_rel_grads(ga, gb) < TOL
    assert float(torch.cat([g.flatten() for g in gb[-4:]]).abs().max()) > 0


def test_an_enumerated_native_guide_trains_as_svi_with_trace_enum_elbo():
    import copy

    from _infer_models import params_of

    from pixyz_pyro.infer import enumerated, to_pyro
    from pixyz_pyro.model import Model
    qz, qy, p, x = _m2()
    qz2, qy2, p2 = copy.deepcopy(qz), copy.deepcopy(qy), copy.deepcopy(p)
    model = Model(-ELBO(p, enumerated(qz * qy, ["y"])).sum(), distributions=[p, qz, qy],
                  optimizer=pyro.optim.Adam({"lr": 0.01}))
    svi = pyro.infer.SVI(to_pyro(p2, observed=["x"]), to_pyro(qz2 * qy2, enumerate=["y"]),
                         pyro.optim.Adam({"lr": 0.01}),
                         loss=TraceEnum_ELBO(max_plate_nesting=1))
    torch.manual_seed(3)
    ours = [float(model.train({"x": x})) for _ in range(10)]
    torch.manual_seed(3)
    theirs = [svi.step(x=x) for _ in range(10)]
    assert rel_diff(torch.tensor(ours), torch.tensor(theirs)) < TOL
    for u, v in zip(params_of(qz, qy, p), params_of(qz2, qy2, p2)):
        assert rel_diff(u, v) < TOL


def test_enumerated_sampling_is_q_sampling():
    from pixyz_pyro.infer import enumerated
    qz, qy, _, x = _m2()
    q = enumerated(qz * qy, ["y"])
    torch.manual_seed(5)
    ours = q.sample({"x": x})
    torch.manual_seed(5)
    theirs = (qz * qy).sample({"x": x})
    assert all(torch.equal(ours[k], theirs[k]) for k in ("y", "z"))


def test_enumerated_refuses_what_it_cannot_sum_out():
    from pixyz_pyro.dist import Bernoulli, Normal
    from pixyz_pyro.errors import VariableError
    from pixyz_pyro.infer import enumerated
    qz, qy, _, x = _m2()
    with pytest.raises(VariableError, match=r"^enumerated\(q\(z,y\|x\), \['w'\]\): name "
                                            r"variables of q\(z,y\|x\); its variables are "
                                            r"\['z', 'y'\]"):
        enumerated(qz * qy, ["w"])
    with pytest.raises(VariableError, match=r"q\(z\|x,y\) cannot be enumerated: it depends on "
                                            r"\['y'\], which are drawn after it"):
        enumerated(qz * qy, ["z"])
    normal = Normal(loc="x", scale=1.0, var=["u"], cond_var=["x"], name="q")
    with pytest.raises(LossError, match=r"^q\(u\|x\): q\(u\|x\) is a Normal, which has no "
                                        r"finite support to enumerate"):
        ELBO(normal, enumerated(normal, ["u"])).eval({"x": torch.zeros(B, 1)})
    bits = Bernoulli(probs=0.5, var=["b"], features_shape=[4], name="q")
    with pytest.raises(LossError, match=r"^q\(b\): q\(b\) has batch shape \(1, 4\) for 5 "
                                        r"rows; only a variable with one discrete value per "
                                        r"row \(a Categorical\) can be enumerated"):
        ELBO(bits, enumerated(bits, ["b"])).eval({"x": x})


def test_a_model_site_marked_for_enumeration_is_refused_by_the_direct_executor():
    """Model-side enumeration (a site the guide does not draw) is TraceEnum_ELBO's job:
    the direct executor says so instead of sampling it."""
    def model(x):
        with pyro.plate("data", x.shape[0]):
            y = pyro.sample("y", dist.Categorical(torch.ones(K) / K),
                            infer={"enumerate": "parallel"})
            pyro.sample("x", dist.Normal(y.float(), 1.0), obs=x)

    p = from_pyro(model, var=["x"])
    with pytest.raises(LossError, match=r'^p\(x\): the site "y" of test_a_model_site_marked_'
                                        r'for_enumeration_is_refused_by_the_direct_executor.'
                                        r'<locals>.model is marked for enumeration but has '
                                        r'no value here'):
        LogProb(p).eval({"x": torch.zeros(B)})


def test_an_enumerated_categorical_alone_gives_the_exact_kl():
    """E_q[log p - log q] over a Categorical with every class summed: -KL[q || p] in
    closed form, whatever the seed."""
    from pixyz_pyro.dist import Categorical
    from pixyz_pyro.infer import enumerated
    probs = torch.tensor([0.2, 0.5, 0.3])
    q = enumerated(Categorical(probs=probs, var=["y"], name="q"), ["y"])
    p = Categorical(probs=torch.ones(K) / K, var=["y"], name="p")
    exact = -(probs * (probs / (1 / K)).log()).sum()
    for seed in range(3):
        torch.manual_seed(seed)
        assert rel_diff(ELBO(p, q).eval(), exact.reshape(1)) < TOL


def test_multiple_sampling_is_refused():
    def guide(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("y", dist.Categorical(torch.ones(K) / K),
                        infer={"enumerate": "parallel", "num_samples": 2})

    p, q = from_pyro(guide, var=["y"]), from_pyro(guide, var=["y"], name="q")
    with pytest.raises(LossError, match=r'the site "y" is enumerated with num_samples '
                                        r"\(multiple sampling\), which the direct executor "
                                        r"does not sum"):
        ELBO(p, q).eval({"x": torch.zeros(B)})
