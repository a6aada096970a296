"""Pyro's own example code, wrapped with ``from_pyro`` as a Pyro user would write it, gives
Pyro's numbers: the ELBO the example uses, in value and in every parameter gradient, to a
relative 1e-5 on the same seed and weights; and ten ``Model`` steps take the parameters
where ten ``SVI`` steps take them.

The examples are pinned in ``tests/pyro_examples/`` (vae.py, ss_vae_M2.py, dmm.py, from
the pyro-ppl/pyro commit noted in each file).  Sizes are small; the code is Pyro's.
"""
import copy

import pyro
import pyro.distributions as dist
import pytest
import torch
from _infer_models import max_rel_grads, rel_diff, value_and_grads
from pyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO, config_enumerate
from pyro.infer.autoguide import AutoNormal
from pyro_examples._poly import get_mini_batch
from pyro_examples.dmm import DMM
from pyro_examples.ss_vae_M2 import SSVAE
from pyro_examples.vae import VAE
from torch.distributions import transform_to

from pixyz_pyro.errors import LossError
from pixyz_pyro.infer import from_pyro, pyro_elbo
from pixyz_pyro.loss import ELBO, LogProb, Prob
from pixyz_pyro.model import Model

TOL = 1e-5


def agree(ours, theirs, our_params, their_params=None, seed=1):
    """Same seed: the same value and the same gradient of every parameter."""
    torch.manual_seed(seed)
    a, ga = value_and_grads(ours(), our_params)
    torch.manual_seed(seed)
    b, gb = value_and_grads(theirs(), their_params or our_params)
    assert rel_diff(a, b) < TOL, (float(a), float(b))
    assert max_rel_grads(ga, gb) < TOL, max_rel_grads(ga, gb)
    assert any(float(g.abs().max()) > 0 for g in gb)
    return float(a)


def ten_steps_agree(loss, dists, data, svi, args, ours, theirs):
    """Ten ``Model`` steps and ten ``SVI`` steps from the same weights and seed."""
    model = Model(loss, distributions=dists, optimizer=pyro.optim.Adam({"lr": 0.01}))
    torch.manual_seed(3)
    a = [float(model.train(data)) for _ in range(10)]
    assert len(pyro.get_param_store()) == 0  # Model leaves Pyro's store alone
    torch.manual_seed(3)
    b = [svi.step(*args) for _ in range(10)]
    assert rel_diff(torch.tensor(a), torch.tensor(b)) < TOL
    ours, theirs = ours(), theirs()
    assert len(ours) == len(theirs) > 0
    for u, v in zip(ours, theirs):
        assert rel_diff(u, v) < TOL


# --- vae.py ------------------------------------------------------------------------------
def _vae():
    torch.manual_seed(0)
    vae = VAE(z_dim=3, hidden_dim=8)
    p = from_pyro(vae.model, var=["x", "z"], sites={"z": "latent"}, name="p")
    q = from_pyro(vae.guide, var=["z"], sites={"z": "latent"}, name="q")
    return vae, p, q, torch.rand(5, 784)


def test_vae_reads_as_the_paper_writes_it():
    vae, p, q, x = _vae()
    assert (p.prob_text, q.prob_text) == ("p(x,z)", "q(z|x)")
    assert {id(t) for t in q.parameters()} == {id(t) for t in vae.parameters()}
    assert q.sample({"x": x})["z"].shape == (5, 3)


def test_vae_elbo_and_gradients_are_trace_elbos():
    vae, p, q, x = _vae()
    agree(lambda: -ELBO(p, q).sum().eval({"x": x}),
          lambda: Trace_ELBO().differentiable_loss(vae.model, vae.guide, x),
          list(vae.parameters()))


def test_vae_counts_the_observed_site_whether_listed_or_not():
    """``var=["z"]`` alone: the model's ``obs`` site still belongs to its density."""
    vae, _, q, x = _vae()
    p = from_pyro(vae.model, var=["z"], sites={"z": "latent"}, name="p")
    agree(lambda: -ELBO(p, q).sum().eval({"x": x}),
          lambda: Trace_ELBO().differentiable_loss(vae.model, vae.guide, x),
          list(vae.parameters()))


def test_vae_ten_model_steps_are_ten_svi_steps():
    vae, p, q, x = _vae()
    vae2 = copy.deepcopy(vae)
    svi = SVI(vae2.model, vae2.guide, pyro.optim.Adam({"lr": 0.01}), loss=Trace_ELBO())
    ten_steps_agree(-ELBO(p, q).sum(), [p, q], {"x": x}, svi, (x,),
                    lambda: list(vae.parameters()), lambda: list(vae2.parameters()))


# --- ss_vae_M2.py ----------------------------------------------------------------------------
def _ss_vae(config_enum=None):
    torch.manual_seed(0)
    ss = SSVAE(output_size=3, input_size=6, z_dim=2, hidden_layers=[5],
               config_enum=config_enum)
    names = {"xs": "x", "ys": "y"}
    p = from_pyro(ss.model, var=["x", "y", "z"], inputs=names, name="p")
    q = from_pyro(ss.guide, var=["y", "z"], inputs=names, name="q")
    x = torch.bernoulli(torch.full((4, 6), 0.4))
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 1]), 3).float()
    return ss, p, q, x, y


def test_ss_vae_names_map_arguments_and_sites():
    ss, p, q, x, y = _ss_vae()
    assert (p.prob_text, q.prob_text) == ("p(x,y,z)", "q(y,z|x)")


def test_ss_vae_unlabelled_score_function_gradients_are_trace_elbos():
    """y ~ OneHotCategorical in the guide has no rsample: Pyro's Trace_ELBO adds the
    score-function term, and so does ``pyro_elbo``; the y-encoder's gradient is Pyro's."""
    ss, p, q, x, y = _ss_vae()
    agree(lambda: -pyro_elbo(p, q).sum().eval({"x": x}),
          lambda: Trace_ELBO().differentiable_loss(ss.model, ss.guide, x),
          list(ss.parameters()))


def test_ss_vae_plain_elbo_refuses_the_discrete_guide_site():
    ss, p, q, x, y = _ss_vae()
    with pytest.raises(LossError, match=r'^q\(y,z\|x\): the site "y" \(OneHotCategorical\) of '
                                        r"SSVAE.guide cannot be reparameterised.*pyro_elbo"):
        ELBO(p, q).sum().eval({"x": x})


def test_ss_vae_labelled_elbo_is_trace_elbos():
    ss, p, _, x, y = _ss_vae()
    q = from_pyro(ss.guide, var=["z"], cond_var=["x", "y"], inputs={"xs": "x", "ys": "y"},
                  name="q")
    assert q.prob_text == "q(z|x,y)"
    agree(lambda: -ELBO(p, q).sum().eval({"x": x, "y": y}),
          lambda: Trace_ELBO().differentiable_loss(ss.model, ss.guide, x, y),
          list(ss.parameters()))


def test_ss_vae_labelled_ten_model_steps_are_ten_svi_steps():
    ss, p, _, x, y = _ss_vae()
    q = from_pyro(ss.guide, var=["z"], cond_var=["x", "y"], inputs={"xs": "x", "ys": "y"},
                  name="q")
    ss2 = copy.deepcopy(ss)
    svi = SVI(ss2.model, ss2.guide, pyro.optim.Adam({"lr": 0.01}), loss=Trace_ELBO())
    ten_steps_agree(-ELBO(p, q).sum(), [p, q], {"x": x, "y": y}, svi, (x, y),
                    lambda: list(ss.parameters()), lambda: list(ss2.parameters()))


def test_ss_vae_ten_model_steps_are_ten_svi_steps():
    ss, p, q, x, y = _ss_vae()
    ss2 = copy.deepcopy(ss)
    svi = SVI(ss2.model, ss2.guide, pyro.optim.Adam({"lr": 0.01}), loss=Trace_ELBO())
    ten_steps_agree(-pyro_elbo(p, q).sum(), [p, q], {"x": x}, svi, (x,),
                    lambda: list(ss.parameters()), lambda: list(ss2.parameters()))


def test_ss_vae_guide_draws_are_pyros_draws_for_every_seed():
    ss, p, q, x, y = _ss_vae()
    for seed in range(40):
        torch.manual_seed(seed)
        ours = q.sample({"x": x})
        torch.manual_seed(seed)
        tr = pyro.poutine.trace(ss.guide).get_trace(x)
        assert torch.equal(ours["y"], tr.nodes["y"]["value"]), seed
        assert torch.equal(ours["z"], tr.nodes["z"]["value"]), seed


# --- dmm.py ----------------------------------------------------------------------------------
def _dmm():
    torch.manual_seed(0)
    dmm = DMM(input_dim=5, z_dim=3, emission_dim=4, transition_dim=4, rnn_dim=6)
    seqs = torch.bernoulli(torch.full((4, 3, 5), 0.3))
    mb, mbr, mask, lengths = get_mini_batch(seqs, torch.tensor([3, 3, 2, 1]))
    zs = ["z_1", "z_2", "z_3"]
    # The PackedSequence, the lengths and the annealing factor pass through unchanged.
    p = from_pyro(dmm.model, var=["mini_batch"] + zs, cond_var=["mini_batch_mask"])
    q = from_pyro(dmm.guide, var=zs, cond_var=["mini_batch", "mini_batch_mask"], name="q")
    data = {"mini_batch": mb, "mini_batch_reversed": mbr, "mini_batch_mask": mask,
            "mini_batch_seq_lengths": lengths, "annealing_factor": 0.5}
    return dmm, p, q, data, (mb, mbr, mask, lengths, 0.5)


def test_dmm_with_packed_sequences_and_masks_is_trace_elbos():
    dmm, p, q, data, args = _dmm()
    assert type(args[1]).__name__ == "PackedSequence" and float(args[2].sum()) == 9
    agree(lambda: -ELBO(p, q).sum().eval(data),
          lambda: Trace_ELBO().differentiable_loss(dmm.model, dmm.guide, *args),
          list(dmm.parameters()))


def test_dmm_ten_model_steps_are_ten_svi_steps():
    dmm, p, q, data, args = _dmm()
    dmm2 = copy.deepcopy(dmm)
    svi = SVI(dmm2.model, dmm2.guide, pyro.optim.Adam({"lr": 0.01}), loss=Trace_ELBO())
    ten_steps_agree(-ELBO(p, q).sum(), [p, q], data, svi, args,
                    lambda: list(dmm.parameters()), lambda: list(dmm2.parameters()))


# --- Bayesian linear regression: a global weight, a pyro.param guide, an AutoNormal -------
SIGMA = 1.0


def regression_model(x, y=None):
    w = pyro.sample("w", dist.Normal(0., 1.))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("y", dist.Normal(w * x, SIGMA), obs=y)


def regression_guide(x, y=None):
    loc = pyro.param("w_loc", torch.tensor(0.))
    scale = pyro.param("w_scale", torch.tensor(1.), constraint=dist.constraints.positive)
    pyro.sample("w", dist.Normal(loc, scale))


def _regression(n=50):
    torch.manual_seed(0)
    x = torch.randn(n)
    y = 2 * x + SIGMA * torch.randn(n)
    p = from_pyro(regression_model, var=["y", "w"])
    q = from_pyro(regression_guide, var=["w"], name="q")
    q.sample({"x": x})  # creates the guide's pyro.param sites, before Model collects them
    return p, q, {"x": x, "y": y}


def _store_params(names):
    return [dict(pyro.get_param_store().named_parameters())[n] for n in names]


def test_the_global_weight_counts_once_per_batch_not_once_per_row():
    """Per row: the row's likelihood plus the global terms over B, so ``.sum()`` is the
    trace's total (Trace_ELBO's number) and ``.mean()`` is that over B."""
    p, q, data = _regression()
    assert [n for n, _ in q.named_parameters()] == ["pyro_params.w_loc",
                                                   "pyro_params.w_scale"]
    torch.manual_seed(2)
    rows = ELBO(p, q).eval(data).detach()
    assert rows.shape == (50,)
    torch.manual_seed(2)
    pyro.poutine.trace(regression_guide).get_trace(data["x"])  # create Pyro's own params
    torch.manual_seed(2)
    elbo = -Trace_ELBO().loss(regression_model, regression_guide, data["x"], data["y"])
    assert abs(float(rows.sum()) - elbo) < TOL * abs(elbo)
    assert abs(float(rows.mean()) - elbo / 50) < TOL * abs(elbo / 50)


def test_regression_with_a_param_guide_is_trace_elbos():
    p, q, data = _regression()
    pyro.poutine.trace(regression_guide).get_trace(data["x"])
    agree(lambda: -ELBO(p, q).sum().eval(data),
          lambda: Trace_ELBO().differentiable_loss(regression_model, regression_guide,
                                                   data["x"], data["y"]),
          [q.pyro_params["w_loc"], q.pyro_params["w_scale"]],
          _store_params(["w_loc", "w_scale"]))


def test_regression_ten_model_steps_are_ten_svi_steps():
    p, q, data = _regression()
    svi = SVI(regression_model, regression_guide, pyro.optim.Adam({"lr": 0.01}),
              loss=Trace_ELBO())
    ten_steps_agree(-ELBO(p, q).sum(), [p, q], data, svi, (data["x"], data["y"]),
                    lambda: [q.pyro_params["w_loc"], q.pyro_params["w_scale"]],
                    lambda: _store_params(["w_loc", "w_scale"]))


def test_regression_posterior_scale_is_the_conjugate_one():
    """w ~ N(0, 1), y ~ N(w x, 1): the exact posterior scale is (1 + sum x^2)^-1/2.
    Counted B times, the prior would leave the scale about sqrt(B) too wide."""
    p, q, data = _regression()
    model = Model(-ELBO(p, q).sum(), distributions=[p, q], optimizer=torch.optim.Adam,
                  optimizer_params={"lr": 0.05})
    torch.manual_seed(4)
    for step in range(1500):
        if step == 1000:
            for g in model.optimizer.param_groups:
                g["lr"] = 0.005
        model.train(data)
    scale = float(transform_to(dist.constraints.positive)(q.pyro_params["w_scale"].detach()))
    exact = float((1 + (data["x"] ** 2).sum() / SIGMA ** 2) ** -0.5)
    assert abs(scale - exact) < 0.1 * exact, (scale, exact)


def _autonormal(data):
    guide = AutoNormal(regression_model)
    torch.manual_seed(5)
    guide(data["x"], data["y"])  # Pyro creates an AutoGuide's parameters on its first call
    pyro.clear_param_store()
    return guide


def test_autonormal_guide_is_trace_elbos():
    p, _, data = _regression()
    guide = _autonormal(data)
    q = from_pyro(guide, var=["w"], name="q")
    assert {id(t) for t in q.parameters()} == {id(t) for t in guide.parameters()}
    agree(lambda: -ELBO(p, q).sum().eval(data),
          lambda: Trace_ELBO().differentiable_loss(regression_model, guide, data["x"],
                                                   data["y"]),
          list(guide.parameters()))


def test_autonormal_ten_model_steps_are_ten_svi_steps():
    p, _, data = _regression()
    guide = _autonormal(data)
    guide2 = copy.deepcopy(guide)
    q = from_pyro(guide, var=["w"], name="q")
    svi = SVI(regression_model, guide2, pyro.optim.Adam({"lr": 0.01}), loss=Trace_ELBO())
    ten_steps_agree(-ELBO(p, q).sum(), [p, q], data, svi, (data["x"], data["y"]),
                    lambda: list(guide.parameters()), lambda: list(guide2.parameters()))


# --- ss_vae_M2.py with its label summed out, as TraceEnum_ELBO does -----------------------
def _ss_vae_enum():
    """The guide's two parts as distributions, ``q(y|x)`` and ``q(z|x,y)``, and the data
    repeated once per class, class-major as Pyro's enumeration lays it out."""
    ss, p, _, x, _ = _ss_vae(config_enum="parallel")  # networks that broadcast
    q_y = from_pyro(ss.guide, var=["y"], inputs={"xs": "x"}, name="q")
    q_z = from_pyro(ss.guide, var=["z"], cond_var=["x", "y"], inputs={"xs": "x", "ys": "y"},
                    name="q")
    k = 3
    data = {"x": x.repeat(k, 1), "y": torch.eye(k).repeat_interleave(len(x), 0)}
    # sum_y q(y|x) (ELBO_y - log q(y|x)); the ELBO term first, so that it takes Pyro's draws.
    loss = -((ELBO(p, q_z) - LogProb(q_y)) * Prob(q_y)).sum()
    guide = config_enumerate(ss.guide, "parallel", expand=True)
    return ss, loss, data, x, guide


def test_ss_vae_summed_out_label_is_trace_enum_elbos():
    ss, loss, data, x, guide = _ss_vae_enum()
    assert {d.prob_text for d in loss.distributions()} == {"p(x,y,z)", "q(z|x,y)", "q(y|x)"}
    agree(lambda: loss.eval(data),
          lambda: TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(ss.model, guide, x),
          list(ss.parameters()))


def test_ss_vae_enum_ten_model_steps_are_ten_svi_steps():
    ss, loss, data, x, _ = _ss_vae_enum()
    ss2 = copy.deepcopy(ss)
    guide2 = config_enumerate(ss2.guide, "parallel", expand=True)
    svi = SVI(ss2.model, guide2, pyro.optim.Adam({"lr": 0.01}),
              loss=TraceEnum_ELBO(max_plate_nesting=1))
    ten_steps_agree(loss, loss.distributions(), data, svi, (x,),
                    lambda: list(ss.parameters()), lambda: list(ss2.parameters()))


# --- ss_vae_M2.py with its guide as config_enumerate leaves it: summed out automatically ------
def _ss_vae_config_enumerate(expand=False):
    ss, p, _, x, _ = _ss_vae(config_enum="parallel")
    guide = config_enumerate(ss.guide, "parallel", expand=expand)
    q = from_pyro(guide, var=["y", "z"], inputs={"xs": "x", "ys": "y"}, name="q")
    return ss, p, q, x, guide


@pytest.mark.parametrize("expand", [False, True])
def test_ss_vae_config_enumerate_guide_is_trace_enum_elbos(expand):
    """``ELBO(p, q)`` as written: y is marked in the guide, so the expectation sums it out,
    as TraceEnum_ELBO does, with Pyro's own draws of z for each class."""
    ss, p, q, x, guide = _ss_vae_config_enumerate(expand)
    agree(lambda: -ELBO(p, q).sum().eval({"x": x}),
          lambda: TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(ss.model, guide, x),
          list(ss.parameters()))


def test_ss_vae_config_enumerate_with_particles_is_vectorised_trace_enum_elbos():
    ss, p, q, x, guide = _ss_vae_config_enumerate()
    elbo = TraceEnum_ELBO(max_plate_nesting=1, num_particles=3, vectorize_particles=True)
    agree(lambda: -ELBO(p, q, sample_shape=[3]).sum().eval({"x": x}),
          lambda: elbo.differentiable_loss(ss.model, guide, x),
          list(ss.parameters()))


def test_ss_vae_config_enumerate_is_exactly_the_explicit_sum_over_classes():
    """The automatic sum equals the hand-written one of ``_ss_vae_enum`` on the same draws
    (which itself is TraceEnum_ELBO's number, above)."""
    ss, p, q, x, _ = _ss_vae_config_enumerate()
    _, explicit, data, _, _ = _ss_vae_enum()
    torch.manual_seed(2)
    a = -ELBO(p, q).sum().eval({"x": x})
    torch.manual_seed(2)
    b = explicit.eval(data)
    assert rel_diff(a, b) < TOL


def test_ss_vae_config_enumerate_ten_model_steps_are_ten_svi_steps():
    ss, p, q, x, _ = _ss_vae_config_enumerate()
    ss2 = copy.deepcopy(ss)
    guide2 = config_enumerate(ss2.guide, "parallel")
    svi = SVI(ss2.model, guide2, pyro.optim.Adam({"lr": 0.01}),
              loss=TraceEnum_ELBO(max_plate_nesting=1))
    ten_steps_agree(-ELBO(p, q).sum(), [p, q], {"x": x}, svi, (x,),
                    lambda: list(ss.parameters()), lambda: list(ss2.parameters()))


def test_ss_vae_config_enumerate_sampling_still_draws_a_label():
    """Enumeration happens inside expectations only: ``q.sample`` draws y, as the guide
    does under a plain trace."""
    ss, p, q, x, guide = _ss_vae_config_enumerate()
    torch.manual_seed(4)
    ours = q.sample({"x": x})
    torch.manual_seed(4)
    tr = pyro.poutine.trace(guide).get_trace(x)
    assert ours["y"].shape == (4, 3) and torch.equal(ours["y"], tr.nodes["y"]["value"])
