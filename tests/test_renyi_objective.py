"""IWAE / VRBound losses mapped to Pyro's stock ``RenyiELBO`` (pixyz_pyro.infer.renyi):
the mapping's parts, and on the same draws the same value and gradients as the direct
executor, through ``renyi_objective`` and through ``SVILoss(executor="pyro")``."""
import pyro
import pytest
import torch
from _infer_models import max_rel_grads, params_of, rel_diff, vae, value_and_grads
from pyro.infer import SVI, RenyiELBO

from pixyz_pyro.errors import LossError
from pixyz_pyro.infer import SVILoss, renyi_objective
from pixyz_pyro.loss import ELBO, IWAE, KullbackLeibler, VRBound


@pytest.fixture(autouse=True)
def clean_store():
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()


def _pyro_grads(obj, params, x):
    for t in params:
        t.grad = None
    value = obj.loss_and_grads(x=x)
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


def test_svi_steps_with_the_pyro_executor_equal_steps_with_the_direct_one():
    x = torch.rand(8, 6)
    finals = []
    for executor in ("direct", "pyro"):
        pyro.clear_param_store()
        torch.manual_seed(0)
        q, dec, prior = vae()
        loss = -IWAE(dec * prior, q, k=5).mean()
        svi_loss = SVILoss(loss, executor=executor)
        obj = renyi_objective(loss)
        svi = SVI(obj.model, obj.guide, pyro.optim.Adam({"lr": 0.01}), loss=svi_loss)
        torch.manual_seed(1)
        values = [svi.step(x=x) for _ in range(5)]
        finals.append((values, [t.detach().clone() for t in params_of(q, dec)]))
    (va, pa), (vb, pb) = finals
    assert max(abs(a - b) for a, b in zip(va, vb)) < 1e-5
    assert max_rel_grads(pa, pb) < 1e-5


def test_errors_in_user_terms():
    q, dec, prior = vae()
    with pytest.raises(LossError, match="executor must be one of"):
        SVILoss(-IWAE(dec * prior, q, k=2).sum(), executor="jax")
    with pytest.raises(LossError, match="maps to no stock Pyro ELBO"):
        SVILoss(-IWAE(dec * prior, q, k=2, estimator="dreg").sum(), executor="pyro")
    with pytest.raises(LossError, match="needs a pixyz_pyro loss, got int"):
        renyi_objective(3)
