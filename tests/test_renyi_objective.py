"""IWAE / VRBound losses mapped to Pyro's stock ``RenyiELBO`` (pixyz_pyro.infer.renyi and
infer/objective.py): the mapping's parts, the route ``SVILoss`` takes by itself, and on the
same draws the same value and gradients as the direct executor and as Pyro's own
``RenyiELBO``, through ``renyi_objective`` and through ``SVILoss`` in SVI."""
import pyro
import pytest
import torch
from _infer_models import max_rel_grads, params_of, rel_diff, vae, value_and_grads
from pyro.infer import SVI, RenyiELBO

from pixyz_pyro.errors import LossError
from pixyz_pyro.infer import SVILoss, renyi_objective
from pixyz_pyro.infer import svi_loss as svi_loss_module
from pixyz_pyro.loss import ELBO, IWAE, KullbackLeibler, VRBound


@pytest.fixture(autouse=True)
def clean_store():
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()


def _pyro_grads(obj, params, x):
    """``obj.loss_and_grads(x=x)`` (or ``obj(x=x)``) and the gradients it left."""
    for t in params:
        t.grad = None
    value = obj.loss_and_grads(x=x) if hasattr(obj, "loss_and_grads") else obj(x=x)
    grads = [torch.zeros_like(t) if t.grad is None else t.grad.clone() for t in params]
    for t in params:
        t.grad = None
    return torch.tensor(value), grads


def test_the_mapping_is_renyi_elbo_on_the_two_programs():
    q, dec, prior = vae()
    obj = renyi_objective(-IWAE(dec * prior, q, k=7).sum())
    assert isinstance(obj.elbo, RenyiELBO)
    assert (obj.elbo.alpha, obj.elbo.num_particles, obj.elbo.vectorize_particles) == \
        (0.0, 7, True)
    assert obj.model.observed == ["x"] and obj.model.dist is not None
    assert obj.guide.dist is q and obj.guide.observed == []
    assert (obj.sign, obj.reduction) == (-1.0, "sum")
    assert renyi_objective(VRBound(dec * prior, q, 3, alpha=0.5).mean()).reduction == "mean"
    assert repr(obj) == "RenyiObjective(alpha=0.0, num_particles=7, sign=-1, reduction='sum')"


@pytest.mark.parametrize("loss_of", [
    lambda p, q: ELBO(p, q).sum(),
    lambda p, q: -IWAE(p, q, k=4, estimator="dreg").sum(),
    lambda p, q: -IWAE(p, q, k=4, estimator="stl").mean(),
    lambda p, q: -IWAE(p, q, k=4),  # no batch reduction: not Pyro's scalar loss
    lambda p, q: VRBound(p, q, k=4, alpha=1.0).sum(),  # alpha = 1 is Trace_ELBO's
    lambda p, q: (-IWAE(p, q, k=4)).sum() + KullbackLeibler(q, p.factors()[-1]).sum(),
], ids=["elbo", "dreg", "stl", "unreduced", "alpha1", "sum-of-terms"])
def test_what_does_not_map_gives_none(loss_of):
    q, dec, prior = vae()
    assert renyi_objective(loss_of(dec * prior, q)) is None


@pytest.mark.parametrize("alpha,reduce,sign", [
    (0.0, "sum", -1), (0.0, "mean", -1), (0.0, "mean", 1), (0.5, "sum", -1), (-1.0, "mean", -1)])
def test_value_and_gradients_equal_the_direct_executor_on_the_same_draws(alpha, reduce, sign):
    q, dec, prior = vae()
    bound = IWAE(dec * prior, q, k=6) if alpha == 0 else VRBound(dec * prior, q, 6, alpha)
    loss = getattr(bound, reduce)()
    loss = -loss if sign < 0 else loss
    x = torch.rand(5, 6)
    params = params_of(q, dec)
    torch.manual_seed(4)
    a, ga = value_and_grads(loss.eval({"x": x}), params)
    obj = renyi_objective(loss)
    torch.manual_seed(4)
    b, gb = _pyro_grads(obj, params, x)
    assert rel_diff(a, b) < 1e-6
    assert max_rel_grads(ga, gb) < 1e-5
    torch.manual_seed(4)
    assert abs(obj.loss(x=x) - float(a)) < 1e-6 * max(1.0, abs(float(a)))


def test_iwae_k_particles_equal_pyro_renyi_elbo_to_1e6_for_k_up_to_500():
    q, dec, prior = vae()
    x = torch.rand(3, 6)
    for k in (1, 5, 50, 500):
        loss = -IWAE(dec * prior, q, k=k).sum()
        torch.manual_seed(k)
        ours = float(loss.eval({"x": x}).detach())
        torch.manual_seed(k)
        theirs = renyi_objective(loss).loss(x=x)
        assert abs(ours - theirs) < 1e-6 * max(1.0, abs(ours)), (k, ours, theirs)


def test_loss_and_grads_keeps_gradients_already_accumulated():
    q, dec, prior = vae()
    x = torch.rand(4, 6)
    params = params_of(q, dec)
    obj = renyi_objective(-IWAE(dec * prior, q, k=3).mean())
    torch.manual_seed(0)
    _, g = _pyro_grads(obj, params, x)
    for t in params:
        t.grad = torch.ones_like(t)
    torch.manual_seed(0)
    obj.loss_and_grads(x=x)
    assert max_rel_grads([t.grad - 1 for t in params], g) < 1e-5  # float32: (1 + g) - 1


def _spy_renyi(monkeypatch):
    """The number of RenyiELBO.loss_and_grads / loss calls SVILoss makes."""
    calls = []
    cls = svi_loss_module._ELBO_CLASSES["RenyiELBO"]
    spy = type("RenyiELBO", (cls,), {
        "loss_and_grads": lambda self, *a, **k: (calls.append("loss_and_grads"),
                                                 cls.loss_and_grads(self, *a, **k))[1],
        "loss": lambda self, *a, **k: (calls.append("loss"), cls.loss(self, *a, **k))[1]})
    monkeypatch.setitem(svi_loss_module._ELBO_CLASSES, "RenyiELBO", spy)
    return calls


@pytest.mark.parametrize("executor", ["direct", "pyro"])
def test_svi_steps_through_renyi_elbo_equal_steps_with_the_direct_executor(executor,
                                                                           monkeypatch):
    """SVI with SVILoss (mapped automatically to RenyiELBO) against SVI on the direct
    executor (a guide that is not the loss's program), from the same weights and seed."""
    calls = _spy_renyi(monkeypatch)
    x = torch.rand(8, 6)
    finals = []
    for route in ("renyi", "direct"):
        pyro.clear_param_store()
        torch.manual_seed(0)
        q, dec, prior = vae()
        loss = -IWAE(dec * prior, q, k=5).mean()
        svi_loss = SVILoss(loss, executor=executor if route == "renyi" else "direct")
        obj = renyi_objective(loss)
        guide = obj.guide if route == "renyi" else (lambda _g=obj.guide, **kw: _g(**kw))
        assert svi_loss.route(obj.model, guide)[0] == ("RenyiELBO" if route == "renyi"
                                                       else None)
        svi = SVI(obj.model, guide, pyro.optim.Adam({"lr": 0.01}), loss=svi_loss)
        torch.manual_seed(1)
        values = [svi.step(x=x) for _ in range(5)]
        torch.manual_seed(2)
        values.append(svi.evaluate_loss(x=x))
        finals.append((values, [t.detach().clone() for t in params_of(q, dec)]))
    assert calls == ["loss_and_grads"] * 5 + ["loss"]  # Pyro's own RenyiELBO ran
    (va, pa), (vb, pb) = finals
    assert max(abs(a - b) for a, b in zip(va, vb)) < 1e-5
    assert max_rel_grads(pa, pb) < 1e-5


def _losses(q, dec, prior):
    p = dec * prior
    return {
        "iwae_sum": (-IWAE(p, q, k=6).sum(),
                     "RenyiELBO(alpha=0, num_particles=6, vectorize_particles=True)"),
        "iwae_mean": (-IWAE(p, q, k=6).mean(),
                      "RenyiELBO(alpha=0, num_particles=6, vectorize_particles=True) / rows"),
        "scaled_vr": (2.0 * -VRBound(p, q, 6, alpha=0.5).mean(),
                      "2 * RenyiELBO(alpha=0.5, num_particles=6, vectorize_particles=True) "
                      "/ rows"),
        "negative_alpha": ((-VRBound(p, q, 4, alpha=-1.0)).sum() / 4,
                           "0.25 * RenyiELBO(alpha=-1, num_particles=4, "
                           "vectorize_particles=True)"),
    }


@pytest.mark.parametrize("name", list(_losses(*vae())))
def test_the_route_is_renyi_elbo_automatically_and_agrees_on_the_same_draws(name, monkeypatch):
    """The default SVILoss maps the bound to RenyiELBO; its loss_and_grads (Pyro's) equals
    the direct executor and Pyro's RenyiELBO run by hand, on the same draws."""
    calls = _spy_renyi(monkeypatch)
    q, dec, prior = vae()
    loss, described = _losses(q, dec, prior)[name]
    svi_loss = SVILoss(loss)
    obj = renyi_objective(loss)
    model, guide = obj.model, obj.guide
    assert svi_loss.mapping.describe() == described
    assert svi_loss.route(model, guide) == ("RenyiELBO", "")
    x = torch.rand(5, 6)
    params = params_of(q, dec)
    torch.manual_seed(4)
    a, ga = value_and_grads(loss.eval({"x": x}), params)
    torch.manual_seed(4)
    b, gb = _pyro_grads(lambda **kw: svi_loss.loss_and_grads(model, guide, **kw), params, x)
    m = svi_loss.mapping
    elbo = RenyiELBO(alpha=m.alpha, num_particles=m.num_particles, vectorize_particles=True,
                     max_plate_nesting=1)
    factor = m.scale / (len(x) if m.mean else 1)
    torch.manual_seed(4)
    c, gc = _pyro_grads(lambda **kw: elbo.loss_and_grads(model, guide, **kw), params, x)
    c, gc = factor * c, [factor * g for g in gc]
    assert calls == ["loss_and_grads"]
    for value, grads in ((b, gb), (c, gc)):
        assert rel_diff(value, a) < 1e-6
        assert max_rel_grads(grads, ga) < 1e-5
    torch.manual_seed(4)
    assert abs(svi_loss.loss(model, guide, x=x) - float(a)) < 1e-6 * max(1.0, abs(float(a)))
    torch.manual_seed(4)  # differentiable_loss: RenyiELBO has none, the direct executor's
    d, gd = value_and_grads(svi_loss(model, guide, x=x), params)
    assert rel_diff(d, a) < 1e-6 and max_rel_grads(gd, ga) < 1e-5


def test_vr_bound_at_alpha_1_is_trace_elbo_with_k_particles():
    q, dec, prior = vae()
    loss = -VRBound(dec * prior, q, 4, alpha=1.0).sum()
    svi_loss = SVILoss(loss)
    obj_model, obj_guide = renyi_objective(-IWAE(dec * prior, q, k=4).sum()).model, \
        renyi_objective(-IWAE(dec * prior, q, k=4).sum()).guide
    assert svi_loss.mapping.describe() == \
        "Trace_ELBO(num_particles=4, vectorize_particles=True)"
    assert svi_loss.route(obj_model, obj_guide) == ("Trace_ELBO", "")
    x = torch.rand(5, 6)
    params = params_of(q, dec)
    torch.manual_seed(5)
    a, ga = value_and_grads(loss.eval({"x": x}), params)
    torch.manual_seed(5)
    b, gb = value_and_grads(svi_loss(obj_model, obj_guide, x=x), params)
    assert rel_diff(b, a) < 1e-6 and max_rel_grads(gb, ga) < 1e-5


@pytest.mark.parametrize("estimator", ["dreg", "stl"])
def test_dreg_and_stl_bounds_fall_back_to_the_direct_executor_and_say_why(estimator):
    q, dec, prior = vae()
    loss = -IWAE(dec * prior, q, k=4, estimator=estimator).mean()
    obj = renyi_objective(-IWAE(dec * prior, q, k=4).mean())
    name, why = SVILoss(loss).route(obj.model, obj.guide)
    assert name is None
    assert why.endswith(f"takes the '{estimator}' gradient estimator, which Pyro's "
                        f"RenyiELBO does not have (it differentiates the bound's value, the "
                        f"'reparam' estimator)")
    x = torch.rand(5, 6)
    params = params_of(q, dec)
    torch.manual_seed(6)
    a, ga = value_and_grads(loss.eval({"x": x}), params)
    torch.manual_seed(6)
    b, gb = value_and_grads(SVILoss(loss)(obj.model, obj.guide, x=x), params)
    assert rel_diff(b, a) < 1e-6 and max_rel_grads(gb, ga) < 1e-5


def test_composed_bounds_map_or_fall_back_with_a_reason():
    q, dec, prior = vae()
    p = dec * prior
    bound = IWAE(p, q, k=3)
    composed = {
        "iwae_plus_kl": ((-bound + 0.5 * KullbackLeibler(q, prior)).mean(),
                         "direct executor (its terms (renyi, kl) add other terms to a "
                         "multi-sample bound; Pyro's RenyiELBO computes the bound alone)"),
        "iwae_plus_elbo": ((-bound - ELBO(p, q)).mean(),
                           "direct executor (its terms (renyi, elbo) add other terms to a "
                           "multi-sample bound; Pyro's RenyiELBO computes the bound alone)"),
        "unreduced": (-bound, "direct executor (it is not reduced to a scalar with .sum() "
                              "or .mean())"),
        "scaled": ((-bound).mean() * 3, "3 * RenyiELBO(alpha=0, num_particles=3, "
                                        "vectorize_particles=True) / rows"),
    }
    for name, (loss, described) in composed.items():
        assert SVILoss(loss).mapping.describe() == described, name


def test_the_pyro_executor_refuses_what_does_not_run_on_pyro():
    q, dec, prior = vae()
    loss = -IWAE(dec * prior, q, k=2).sum()
    obj = renyi_objective(loss)
    with pytest.raises(LossError, match=r"SVILoss\(executor='pyro'\): the guide is not the "
                                        r"Pyro program of q\(z\|x\)"):
        SVILoss(loss, executor="pyro").loss_and_grads(obj.model, lambda **kw: None,
                                                      x=torch.rand(3, 6))


def test_errors_in_user_terms():
    q, dec, prior = vae()
    with pytest.raises(LossError, match="executor must be one of"):
        SVILoss(-IWAE(dec * prior, q, k=2).sum(), executor="jax")
    with pytest.raises(LossError, match="maps to no stock Pyro ELBO: .* takes the 'dreg' "
                                        "gradient estimator"):
        SVILoss(-IWAE(dec * prior, q, k=2, estimator="dreg").sum(), executor="pyro")
    with pytest.raises(LossError, match="needs a pixyz_pyro loss, got int"):
        renyi_objective(3)


def test_svi_steps_a_loss_without_gradients():
    """An SVILoss is a Pyro ELBO (SVI calls its loss_and_grads): a loss whose parameters
    are all frozen steps without error, as SVI's own differentiation did."""
    q, dec, prior = vae()
    for t in params_of(q, dec):
        t.requires_grad_(False)
    loss = -IWAE(dec * prior, q, k=2).mean()
    obj = renyi_objective(loss)
    assert isinstance(SVILoss(loss), pyro.infer.ELBO)
    for guide in (obj.guide, lambda **kw: None):  # RenyiELBO, then the direct executor
        svi = SVI(obj.model, guide, pyro.optim.Adam({"lr": 0.01}), loss=SVILoss(loss))
        value = svi.step(x=torch.rand(3, 6))
        assert value == value  # a number, no error


def test_a_one_sample_bound_maps_to_renyi_elbo_with_one_particle():
    q, dec, prior = vae()
    loss = -IWAE(dec * prior, q, k=1).sum()
    obj = renyi_objective(loss)
    svi_loss = SVILoss(loss)
    assert svi_loss.route(obj.model, obj.guide) == ("RenyiELBO", "")
    x = torch.rand(4, 6)
    params = params_of(q, dec)
    torch.manual_seed(8)
    a, ga = value_and_grads(loss.eval({"x": x}), params)
    torch.manual_seed(8)
    b, gb = _pyro_grads(lambda **kw: svi_loss.loss_and_grads(obj.model, obj.guide, **kw),
                        params, x)
    assert rel_diff(b, a) < 1e-6 and max_rel_grads(gb, ga) < 1e-5
