"""The Pyro bridge in both directions: one trace per evaluation, names without coupling,
one parameter system, ``to_pyro`` minibatching and translation by kind, and errors in the
user's terms."""
import subprocess
import sys
import textwrap

import pyro
import pyro.distributions as dist
import pytest
import torch
from _infer_models import max_rel_grads, rel_diff, vae, value_and_grads
from pyro.infer import SVI, Trace_ELBO
from torch import nn

from pixyz_pyro.dist import CustomProb, Normal
from pixyz_pyro.errors import LossError, VariableError
from pixyz_pyro.infer import from_pyro, to_pyro
from pixyz_pyro.infer.translate import PyroTranslationError
from pixyz_pyro.loss import ELBO, LogProb
from pixyz_pyro.model import Model

X, Z = 6, 2
TOL = 1e-5


class TinyVAE(nn.Module):
    """Pyro's VAE tutorial in miniature, with its site names ("latent", "obs")."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(X, 2 * Z)
        self.dec = nn.Linear(Z, X)

    def model(self, x):
        pyro.module("decoder", self.dec)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("latent", dist.Normal(x.new_zeros(len(x), Z), 1.).to_event(1))
            pyro.sample("obs", dist.Bernoulli(logits=self.dec(z)).to_event(1), obs=x)

    def guide(self, x):
        pyro.module("encoder", self.enc)
        with pyro.plate("data", x.shape[0]):
            loc, s = self.enc(x).chunk(2, -1)
            pyro.sample("latent", dist.Normal(loc, nn.functional.softplus(s)).to_event(1))


def _wrapped(vae_):
    p = from_pyro(vae_.model, var=["x", "z"], sites={"z": "latent"})
    q = from_pyro(vae_.guide, var=["z"], sites={"z": "latent"}, name="q")
    return p, q


def _data(n=5):
    torch.manual_seed(0)
    return torch.bernoulli(torch.full((n, X), 0.4))


# --- one trace per evaluation ---------------------------------------------------------------
def test_the_guide_runs_once_per_step():
    v = TinyVAE()
    calls = []

    def guide(x):
        calls.append(1)
        return v.guide(x)

    p = from_pyro(v.model, var=["x", "z"], sites={"z": "latent"})
    q = from_pyro(guide, var=["z"], sites={"z": "latent"}, name="q", module=v)
    model = Model(-ELBO(p, q).sum(), distributions=[p, q])
    for _ in range(3):
        model.train({"x": _data()})
    assert len(calls) == 3


def test_an_nn_module_guide_wraps_like_a_function():
    v = TinyVAE()

    class Guide(nn.Module):
        def __init__(self):
            super().__init__()
            self.vae = v

        def forward(self, x):
            return self.vae.guide(x)

    guide = Guide()
    p, _ = _wrapped(v)
    q = from_pyro(guide, var=["z"], sites={"z": "latent"}, name="q")
    assert q.prob_text == "q(z|x)"
    x = _data()
    torch.manual_seed(1)
    a, ga = value_and_grads(-ELBO(p, q).sum().eval({"x": x}), list(v.parameters()))
    torch.manual_seed(1)
    b, gb = value_and_grads(Trace_ELBO().differentiable_loss(v.model, guide, x),
                            list(v.parameters()))
    assert rel_diff(a, b) < TOL and max_rel_grads(ga, gb) < TOL


def test_subsampled_plates_replay_the_guides_indices_into_the_model():
    """As in Pyro's SVI tutorial part II: both functions subsample the same plate, and
    the model scores the rows the guide drew (Trace_ELBO replays the plate's site)."""
    n, b = 20, 4
    loc = nn.Parameter(torch.zeros(n))

    def model(x):
        with pyro.plate("data", n, subsample_size=b) as idx:
            z = pyro.sample("z", dist.Normal(0., 1.))
            pyro.sample("x", dist.Normal(z, 1.), obs=x[idx])

    def guide(x):
        with pyro.plate("data", n, subsample_size=b) as idx:
            pyro.sample("z", dist.Normal(loc[idx], 1.))

    holder = nn.Module()
    holder.loc = loc
    p = from_pyro(model, var=["x", "z"])
    q = from_pyro(guide, var=["z"], name="q", module=holder)
    x = torch.randn(n)
    torch.manual_seed(2)
    rows = ELBO(p, q).eval({"x": x})
    assert rows.shape == (b,)
    torch.manual_seed(2)
    a, ga = value_and_grads(-ELBO(p, q).sum().eval({"x": x}), [loc])
    torch.manual_seed(2)
    c, gc = value_and_grads(Trace_ELBO().differentiable_loss(model, guide, x), [loc])
    assert rel_diff(a, c) < TOL and max_rel_grads(ga, gc) < TOL
    assert int((gc[0] != 0).sum()) == b


def test_a_function_with_only_global_sites_gives_one_value_per_row():
    def prior(x):
        pyro.sample("w", dist.Normal(0., 1.))

    p = from_pyro(prior, var=["w"])
    lp = p.get_log_prob({"x": torch.zeros(4, 3), "w": torch.tensor(0.5)})
    total = dist.Normal(0., 1.).log_prob(torch.tensor(0.5))
    assert lp.shape == (4,)
    torch.testing.assert_close(lp.sum(), total)


def test_non_tensor_arguments_pass_through_unchanged():
    seen = {}

    def guide(x, n_steps, note=None):
        seen.update(n_steps=n_steps, note=note)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(x, 1.))

    q = from_pyro(guide, var=["z"], cond_var=["x"], name="q")
    q.sample({"x": torch.zeros(3), "n_steps": 7, "note": ("a", 1)})
    assert seen == {"n_steps": 7, "note": ("a", 1)}


# --- errors in the user's terms --------------------------------------------------------------
def test_a_variable_without_a_site_names_the_site_and_the_function():
    v = TinyVAE()
    q = from_pyro(v.guide, var=["z"], name="q")
    with pytest.raises(VariableError, match=r'^q\(z\|x\): the variable "z" has no sample site '
                                            r'"z" in TinyVAE.guide; its sites are '
                                            r"\['latent'\] \(map a variable to a site with "
                                            r'sites=\{"z": \.\.\.\}\)$'):
        q.sample({"x": _data()})


def test_an_unknown_argument_name_lists_the_arguments():
    v = TinyVAE()
    with pytest.raises(VariableError, match=r'^from_pyro\(TinyVAE.guide\): inputs= names the '
                                            r'argument "xs" \(did you mean "x"\?\), but the '
                                            r"function takes \(x\)$"):
        from_pyro(v.guide, var=["z"], inputs={"xs": "x"})


def test_a_missing_input_names_the_key():
    v = TinyVAE()
    q = from_pyro(v.guide, var=["z"], sites={"z": "latent"}, name="q")
    with pytest.raises(VariableError, match=r'q\(z\|x\) needs "x" for sampling'):
        q.sample({"images": _data()})


def test_an_unknown_data_plate_lists_the_functions_plates():
    v = TinyVAE()
    q = from_pyro(v.guide, var=["z"], sites={"z": "latent"}, name="q", plate="date")
    with pytest.raises(VariableError, match=r'^q\(z\|x\): plate="date", but TinyVAE.guide '
                                            r'opens no plate of that name \(did you mean '
                                            r'"data"\?\); its plates are \[\'data\'\]$'):
        LogProb(q).eval({"x": _data(), "z": torch.zeros(5, Z)})


# --- one parameter system --------------------------------------------------------------------
def test_model_on_a_wrapped_model_leaves_a_later_svi_unaffected():
    """The wrapped functions call ``pyro.module("decoder", ...)``: under ``Model`` that
    writes nothing to Pyro's store, so a second, fresh model trains under SVI."""
    v = TinyVAE()
    p, q = _wrapped(v)
    model = Model(-ELBO(p, q).sum(), distributions=[p, q])
    for _ in range(3):
        model.train({"x": _data()})
    assert len(pyro.get_param_store()) == 0
    fresh = TinyVAE()
    before = [t.detach().clone() for t in fresh.parameters()]
    svi = SVI(fresh.model, fresh.guide, pyro.optim.Adam({"lr": 0.05}), loss=Trace_ELBO())
    for _ in range(5):
        svi.step(_data())
    assert all(not torch.equal(a, b) for a, b in zip(before, fresh.parameters()))


def test_pyro_param_sites_become_parameters_of_the_distribution():
    def guide(x):
        loc = pyro.param("a.loc", torch.zeros(()))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(loc, 1.))

    q = from_pyro(guide, var=["z"], name="q")
    q.sample({"x": torch.zeros(3)})
    assert [n for n, _ in q.named_parameters()] == ["pyro_params.a__loc"]
    assert len(pyro.get_param_store()) == 0


_ROUND_TRIP = textwrap.dedent("""
    import sys, torch, pyro
    sys.path.insert(0, {tests!r})
    from _infer_models import vae
    from pixyz_pyro.infer import to_pyro
    torch.manual_seed({seed})
    q, p, prior = vae()
    x = torch.rand(4, 6)
    if {save}:
        svi = pyro.infer.SVI(to_pyro(p * prior, observed=["x"]), to_pyro(q),
                             pyro.optim.Adam({{"lr": 0.05}}), loss=pyro.infer.Trace_ELBO())
        for _ in range(5):
            svi.step(x)
        pyro.get_param_store().save({path!r})
    else:
        pyro.get_param_store().load({path!r})
        to_pyro(q, update_module_params=True)(x)
        to_pyro(p * prior, observed=["x"], update_module_params=True)(x)
    torch.save([t.detach() for t in list(q.parameters()) + list(p.parameters())],
               {path!r} + ".{seed}.pt")
""")


def test_param_store_save_and_load_round_trip_in_a_fresh_process(tmp_path):
    """Stable names (the distribution's formula and the parameter path): a fresh process,
    with other initial weights, loads what SVI trained."""
    path = str(tmp_path / "params.save")
    tests = str(__import__("pathlib").Path(__file__).parent)
    for seed, save in ((0, True), (1, False)):
        code = _ROUND_TRIP.format(tests=tests, seed=seed, save=save, path=path)
        subprocess.run([sys.executable, "-c", code], check=True, cwd=str(tmp_path.parent),
                       env={"PYTHONPATH": str(__import__("pathlib").Path(tests).parent),
                            "PATH": "/usr/bin:/bin"})
    saved, loaded = torch.load(path + ".0.pt"), torch.load(path + ".1.pt")
    assert len(saved) == len(loaded) > 0
    assert all(torch.equal(a, b) for a, b in zip(saved, loaded))


# --- to_pyro ---------------------------------------------------------------------------------
def test_positional_data_as_svi_step_x():
    q, p, prior = vae()
    x = _data(8)
    svi = SVI(to_pyro(p * prior, observed=["x"]), to_pyro(q), pyro.optim.Adam({"lr": 0.01}),
              loss=Trace_ELBO())
    torch.manual_seed(0)
    a = svi.step(x)
    torch.manual_seed(0)
    b = svi.evaluate_loss(x=x)
    assert a > 0 and b > 0


def test_subsampling_scales_the_likelihood_like_pyros_plate():
    n, b = 10, 3
    loc = nn.Parameter(torch.tensor([0.3]))
    p = Normal(loc=loc, scale=1., var=["x"], features_shape=[1])
    x = torch.randn(n, 1)
    idx = torch.tensor([1, 4, 7])
    model = to_pyro(p, observed=["x"], subsample=idx)
    tr = pyro.poutine.trace(model).get_trace(x)
    expected = n / b * dist.Normal(0.3, 1.).log_prob(x[idx]).sum()
    torch.testing.assert_close(tr.log_prob_sum(), expected)
    drawn = pyro.poutine.trace(to_pyro(p, observed=["x"], subsample_size=b)).get_trace(x)
    assert drawn.nodes["data"]["value"].shape == (b,) and drawn.nodes["x"]["scale"] == n / b


def test_subsampled_programs_replay_the_guides_indices_under_trace_elbo():
    q, p, prior = vae()
    x = _data(12)
    model = to_pyro(p * prior, observed=["x"], subsample_size=4)
    guide = to_pyro(q, subsample_size=4)
    guide_tr = pyro.poutine.trace(guide).get_trace(x)
    model_tr = pyro.poutine.trace(pyro.poutine.replay(model, trace=guide_tr)).get_trace(x)
    idx = guide_tr.nodes["data"]["value"]
    assert torch.equal(model_tr.nodes["data"]["value"], idx)
    torch.testing.assert_close(model_tr.nodes["x"]["value"], x[idx])
    assert model_tr.nodes["x"]["scale"] == 3.0
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), loss=Trace_ELBO())
    assert all(torch.isfinite(torch.tensor(svi.step(x))) for _ in range(3))


def test_a_callers_own_plate_of_the_same_name_is_used_not_doubled():
    q, p, prior = vae()
    program = to_pyro(p * prior, observed=["x"])
    x = _data(4)

    def outer(x):
        with pyro.plate("data", len(x)):
            return program(x)

    tr = pyro.poutine.trace(outer).get_trace(x)
    assert tr.nodes["x"]["fn"].batch_shape == (4,)


def test_a_missing_observed_variable_is_an_error_never_a_draw():
    q, p, prior = vae()
    with pytest.raises(VariableError, match=r'needs "x" for the Pyro program \(observed '
                                            r"variables are data, never sampled\)"):
        to_pyro(p * prior, observed=["x"])(images=_data())


def test_replace_var_translates_with_the_direct_executors_density():
    q, p, prior = vae()
    joint = (p * prior).replace_var(z="w")
    x, w = _data(3), torch.randn(3, Z)
    tr = pyro.poutine.trace(pyro.poutine.condition(to_pyro(joint, observed=["x"]),
                                                   data={"w": w})).get_trace(x)
    assert [n for n in tr.nodes if tr.nodes[n]["type"] == "sample"] == ["data", "w", "x"]
    torch.testing.assert_close(tr.log_prob_sum(), LogProb(joint).eval({"x": x, "w": w}).sum())


def test_a_kind_without_a_translation_is_named():
    custom = CustomProb(lambda x: -x.pow(2).sum(-1), var=["x"])
    with pytest.raises(PyroTranslationError, match=r"to_pyro: p\(x\) is a CustomProb, a "
                                                   r"density without a sampler"):
        to_pyro(custom)


def test_sum_features_false_is_refused_for_wrapped_functions():
    v = TinyVAE()
    q = from_pyro(v.guide, var=["z"], sites={"z": "latent"}, name="q")
    with pytest.raises(LossError, match="sums each site over its event dims"):
        LogProb(q, sum_features=False).eval({"x": _data(), "z": torch.zeros(5, Z)})
