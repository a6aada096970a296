"""``infer/objective.py`` and ``SVILoss``: a loss plan maps to the stock Pyro ELBO whose
formula it is, ``SVILoss`` runs that ELBO on the model and guide SVI hands it, and the
number is the direct executor's on the same draws (seeded), in value and in every
gradient, to a relative 1e-5.  Formulas with no stock ELBO fall back to the direct
executor, say why, and still give the direct value."""
import pyro
import pytest
import torch
from _infer_models import X, max_rel_grads, params_of, rel_diff, vae, value_and_grads
from pyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO, TraceMeanField_ELBO, config_enumerate
from pyro_examples.ss_vae_M2 import SSVAE
from pyro_examples.vae import VAE

from pixyz_pyro.infer import SVILoss, enumerated, from_pyro, pyro_elbo, to_pyro
from pixyz_pyro.infer import svi_loss as svi_loss_module
from pixyz_pyro.infer.objective import objective
from pixyz_pyro.loss import ELBO, IWAE, Expectation, KullbackLeibler, LogProb, Parameter

TOL = 1e-5


@pytest.fixture
def ran(monkeypatch):
    """The names of the Pyro ELBOs that SVILoss ran, in order."""
    names = []
    for name, cls in list(svi_loss_module._ELBO_CLASSES.items()):
        spy = type(name, (cls,), {"differentiable_loss": lambda self, *a, _n=name, _c=cls,
                                  **k: (names.append(_n), _c.differentiable_loss(self, *a,
                                                                                 **k))[1]})
        monkeypatch.setitem(svi_loss_module._ELBO_CLASSES, name, spy)
    return names


def agree(ours, theirs, params, seed=1):
    torch.manual_seed(seed)
    a, ga = value_and_grads(ours(), params)
    torch.manual_seed(seed)
    b, gb = value_and_grads(theirs(), params)
    assert rel_diff(a, b) < TOL, (float(a), float(b))
    assert max_rel_grads(ga, gb) < TOL, max_rel_grads(ga, gb)
    assert any(float(g.abs().max()) > 0 for g in gb)
    return float(a)


def _native():
    q, p, prior = vae()
    return q, p, prior, to_pyro(p * prior, observed=["x"]), to_pyro(q), torch.rand(5, X)


def _formulas(q, p, prior):
    kl_form = KullbackLeibler(q, prior) - Expectation(q, LogProb(p))
    return {
        "elbo_sum": (-ELBO(p * prior, q).sum(), "Trace_ELBO()"),
        "elbo_mean": (-ELBO(p * prior, q).mean(), "Trace_ELBO() / rows"),
        "particles": (-ELBO(p * prior, q, sample_shape=[4]).sum(),
                      "Trace_ELBO(num_particles=4, vectorize_particles=True)"),
        "scaled": (0.5 * (-ELBO(p * prior, q)).sum(), "0.5 * Trace_ELBO()"),
        "mean_field": (kl_form.sum(), "TraceMeanField_ELBO()"),
        "mean_field_mean": (kl_form.mean(), "TraceMeanField_ELBO() / rows"),
        "mean_field_particles": ((KullbackLeibler(q, prior) - Expectation(
            q, LogProb(p), sample_shape=[3])).sum(),
            "TraceMeanField_ELBO(num_particles=3, vectorize_particles=True)"),
    }


@pytest.mark.parametrize("name", list(_formulas(*vae())))
def test_each_mapped_formula_picks_its_elbo_and_equals_the_direct_executor(name, ran):
    q, p, prior, model, guide, x = _native()
    loss, described = _formulas(q, p, prior)[name]
    svi_loss = SVILoss(loss)
    assert svi_loss.mapping.describe() == described
    elbo = described.split("(")[0].split("* ")[-1]
    assert svi_loss.route(model, guide) == (elbo, "")
    agree(lambda: svi_loss(model, guide, x=x), lambda: loss.eval({"x": x}), params_of(q, p))
    assert ran == [elbo]  # Pyro's ELBO ran, on the programs it was handed


def test_positional_data_reach_the_programs():
    q, p, prior, model, guide, x = _native()
    loss = -ELBO(p * prior, q).sum()
    agree(lambda: SVILoss(loss)(model, guide, x), lambda: loss.eval({"x": x}),
          params_of(q, p))


def test_the_mapped_loss_is_pyros_own_number():
    q, p, prior, model, guide, x = _native()
    kl_form = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).sum()
    agree(lambda: SVILoss(kl_form)(model, guide, x=x),
          lambda: TraceMeanField_ELBO().differentiable_loss(model, guide, x=x),
          params_of(q, p))


@pytest.mark.parametrize("build, reason", [
    (lambda q, p, prior: (4 * KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).sum(),
     "the KL and the likelihood are weighted 4 and 1; no stock ELBO weights them apart"),
    (lambda q, p, prior: (Parameter("beta") * KullbackLeibler(q, prior)
                          - Expectation(q, LogProb(p))).sum(),
     "a term is weighted by \\beta, which is not a number"),
    (lambda q, p, prior: -IWAE(p * prior, q, k=3, estimator="dreg").sum(),
     "takes the 'dreg' gradient estimator, which Pyro's RenyiELBO does not have"),
    (lambda q, p, prior: (-IWAE(p * prior, q, k=3) + 0.5 * KullbackLeibler(q, prior)).sum(),
     "its terms (renyi, kl) add other terms to a multi-sample bound; Pyro's RenyiELBO "
     "computes the bound alone"),
    (lambda q, p, prior: (-ELBO(p * prior, q)).sum() + KullbackLeibler(q, prior).mean(),
     "it mixes .sum() and .mean() terms"),
])
def test_other_formulas_fall_back_to_the_direct_executor_and_say_why(build, reason, ran):
    q, p, prior, model, guide, x = _native()
    loss = build(q, p, prior)
    svi_loss = SVILoss(loss)
    name, why = svi_loss.route(model, guide)
    assert name is None and reason in why
    assert svi_loss.mapping.describe() == f"direct executor ({why})"
    data = {"x": x, "beta": 4.0}
    agree(lambda: svi_loss(model, guide, **data), lambda: loss.eval(data), params_of(q, p))
    assert ran == []


def test_programs_of_other_distributions_fall_back():
    q, p, prior, model, guide, x = _native()
    loss = -ELBO(p * prior, q).sum()
    other_q, _, _ = vae()
    name, why = SVILoss(loss).route(model, to_pyro(other_q))
    assert name is None and why == ("the guide is not the Pyro program of q(z|x) (to_pyro "
                                    "of its factors, or the function it wraps)")
    name, why = SVILoss(loss).route(to_pyro(p * prior), guide)
    assert why == "the model samples ['x'], which the loss takes as data: " \
                  "to_pyro(..., observed=['x'])"
    agree(lambda: SVILoss(loss)(model, to_pyro(other_q), x=x), lambda: loss.eval({"x": x}),
          params_of(q, p))


# --- Pyro's own examples through from_pyro ----------------------------------------------------
def _vae_py():
    torch.manual_seed(0)
    vae_py = VAE(z_dim=3, hidden_dim=8)
    p = from_pyro(vae_py.model, var=["x", "z"], sites={"z": "latent"})
    q = from_pyro(vae_py.guide, var=["z"], sites={"z": "latent"}, name="q")
    return vae_py, p, q, torch.rand(5, 784)


def test_vae_py_runs_trace_elbo_on_its_own_model_and_guide(ran):
    vae_py, p, q, x = _vae_py()
    loss = -ELBO(p, q).sum()
    svi_loss = SVILoss(loss)
    assert svi_loss.route(vae_py.model, vae_py.guide) == ("Trace_ELBO", "")
    agree(lambda: svi_loss(vae_py.model, vae_py.guide, x), lambda: loss.eval({"x": x}),
          list(vae_py.parameters()))
    assert ran == ["Trace_ELBO"]


def test_vae_py_svi_steps_with_svi_loss_are_trace_elbo_steps():
    vae_py, p, q, x = _vae_py()
    other = VAE(z_dim=3, hidden_dim=8)
    other.load_state_dict(vae_py.state_dict())
    ours = SVI(vae_py.model, vae_py.guide, pyro.optim.Adam({"lr": 0.01}),
               loss=SVILoss(-ELBO(p, q).sum()))
    torch.manual_seed(3)
    a = [ours.step(x) for _ in range(5)]
    pyro.clear_param_store()
    theirs = SVI(other.model, other.guide, pyro.optim.Adam({"lr": 0.01}), loss=Trace_ELBO())
    torch.manual_seed(3)
    b = [theirs.step(x) for _ in range(5)]
    assert rel_diff(torch.tensor(a), torch.tensor(b)) < TOL
    for u, v in zip(vae_py.parameters(), other.parameters()):
        assert rel_diff(u, v) < TOL


def test_a_fallback_binds_positional_data_through_the_wrapped_signature(ran):
    vae_py, p, q, x = _vae_py()
    loss = -IWAE(p, q, k=2).sum()
    agree(lambda: SVILoss(loss)(vae_py.model, vae_py.guide, x), lambda: loss.eval({"x": x}),
          list(vae_py.parameters()))
    assert ran == []


def _ss_vae(config_enum=None):
    torch.manual_seed(0)
    ss = SSVAE(output_size=3, input_size=6, z_dim=2, hidden_layers=[5], config_enum=config_enum)
    x = torch.bernoulli(torch.full((4, 6), 0.4))
    return ss, x


def test_ss_vae_enumerated_guide_switches_to_trace_enum_elbo(ran):
    """The guide's y is marked by config_enumerate: the direct executor sums it out, and
    SVILoss, mapped to Trace_ELBO, meets the mark and runs TraceEnum_ELBO instead."""
    ss, x = _ss_vae("parallel")
    guide = config_enumerate(ss.guide, "parallel")
    names = {"xs": "x", "ys": "y"}
    p = from_pyro(ss.model, var=["x", "y", "z"], inputs=names)
    q = from_pyro(guide, var=["y", "z"], inputs=names, name="q")
    loss = -ELBO(p, q).sum()
    svi_loss = SVILoss(loss)
    assert svi_loss.route(ss.model, guide) == ("Trace_ELBO", "")
    params = list(ss.parameters())
    agree(lambda: svi_loss(ss.model, guide, x), lambda: loss.eval({"x": x}), params)
    assert ran == ["Trace_ELBO", "TraceEnum_ELBO"]
    agree(lambda: svi_loss(ss.model, guide, x),
          lambda: TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(ss.model, guide, x),
          params)


def test_ss_vae_score_function_surrogate_is_trace_elbo(ran):
    ss, x = _ss_vae()
    names = {"xs": "x", "ys": "y"}
    p = from_pyro(ss.model, var=["x", "y", "z"], inputs=names)
    q = from_pyro(ss.guide, var=["y", "z"], inputs=names, name="q")
    loss = -pyro_elbo(p, q).sum()
    assert SVILoss(loss).route(ss.model, ss.guide) == ("Trace_ELBO", "")
    assert objective(loss).kind == "score"
    agree(lambda: SVILoss(loss)(ss.model, ss.guide, x), lambda: loss.eval({"x": x}),
          list(ss.parameters()))
    assert ran == ["Trace_ELBO"]


def _m2():
    from _infer_models import m2
    qz, qy, p, pz, py = m2()
    model = to_pyro(p * pz * py, observed=["x"])
    return qz, qy, p, pz, py, model, torch.rand(5, X)


def test_an_enumerated_native_guide_maps_to_trace_enum_elbo(ran):
    """``enumerated(q_z * q_y, ["y"])``: the direct executor sums y out, to_pyro marks y,
    and SVILoss runs TraceEnum_ELBO on the two programs."""
    qz, qy, p, pz, py, model, x = _m2()
    q = enumerated(qz * qy, ["y"])
    loss = -ELBO(p * pz * py, q).sum()
    guide = to_pyro(q)
    assert guide.enumerate == ["y"]
    svi_loss = SVILoss(loss)
    assert svi_loss.route(model, guide) == ("TraceEnum_ELBO", "")
    params = params_of(qz, qy, p)
    agree(lambda: svi_loss(model, guide, x=x), lambda: loss.eval({"x": x}), params)
    assert ran == ["TraceEnum_ELBO"]
    agree(lambda: loss.eval({"x": x}),
          lambda: TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(model, guide, x=x),
          params)


def test_enumeration_on_one_side_only_falls_back():
    qz, qy, p, pz, py, model, x = _m2()
    plain = SVILoss(-ELBO(p * pz * py, qz * qy).sum())
    name, why = plain.route(model, to_pyro(qz * qy, enumerate=["y"]))
    assert name is None and why == (
        "the guide enumerates ['y'] and the loss's q(z,y|x) []: sum the same variables out "
        "on both sides (enumerated(q, [...]) in the loss)")
    assert plain.route(model, to_pyro(qz * qy)) == ("Trace_ELBO", "")
