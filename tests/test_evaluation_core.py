"""The evaluation core: the same call gives the same value or the same error, whatever ran
before (fresh, after a ``no_grad`` call, after training), on every entry point."""
import ast
import pathlib
import re

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import pixyz_pyro
from pixyz_pyro.dist import Bernoulli, Normal
from pixyz_pyro.errors import LossError, ParameterError, ShapeError, SupportError
from pixyz_pyro.loss import (
    Expectation,
    IterativeLoss,
    KullbackLeibler,
    LogProb,
    Parameter,
)
from pixyz_pyro.loss.plan import compile_plan
from pixyz_pyro.model import Model


def m(text):
    return re.escape(text)


class BernoulliEncoder(Bernoulli):
    def __init__(self):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return {"probs": torch.sigmoid(self.fc(x))}


class Decoder(Normal):
    def __init__(self, out=4, scale_sign=1.0, names=("loc", "scale")):
        super().__init__(var=["x"], cond_var=["z"], name="p", features_shape=[4])
        self.fc = nn.Linear(3, out)
        self.sign, self.names = scale_sign, names

    def forward(self, z):
        h = self.fc(z)
        return {self.names[0]: h, self.names[1]: self.sign * (F.softplus(h) + 0.1)}


class Encoder(Normal):
    def __init__(self, z=3):
        super().__init__(var=["z"], cond_var=["x"], name="q")
        self.fc = nn.Linear(4, 2 * z)
        self.calls, self.rows = 0, []

    def forward(self, x):
        self.calls += 1
        self.rows.append(x.shape[0])
        loc, s = self.fc(x).chunk(2, -1)
        return {"loc": loc, "scale": F.softplus(s) + 0.1}


def state(*modules):
    return [t.detach().clone() for mod in modules for t in mod.state_dict().values()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


X = torch.rand(6, 4)


# --- history does not change validation ---------------------------------------------------
def test_non_reparameterisable_expectation_is_refused_after_a_no_grad_call():
    q, p = BernoulliEncoder(), Decoder()
    loss = -Expectation(q, LogProb(p)).mean()
    with torch.no_grad():
        assert torch.isfinite(loss.eval({"x": X}))  # values need no gradient
    for _ in range(2):  # grad mode: refused, every time
        with pytest.raises(LossError, match="cannot be reparameterised"):
            loss.eval({"x": X})
    model = Model(loss, distributions=[q, p])
    model.test({"x": X})
    before = state(q, p)
    with pytest.raises(LossError, match=m("Use REINFORCE(q, f)")):
        model.train({"x": X})
    assert same(before, state(q, p))


def test_out_of_support_parameters_are_refused_warm_and_change_nothing():
    q, p = Encoder(), Decoder()
    good = (KullbackLeibler(q, Normal(loc=0., scale=1., var=["z"], features_shape=[3]))
            - Expectation(q, LogProb(p))).mean()
    model = Model(good, distributions=[q, p])
    for _ in range(3):
        model.train({"x": X})
    p.sign = -1.0  # the network now returns a negative scale
    before = state(q, p), model.optimizer.state_dict()["state"][0]["exp_avg"].clone()
    for _ in range(2):
        with pytest.raises(SupportError, match=m("p(x|z): parameter scale is outside its "
                                                 "support")):
            model.train({"x": X})
    assert same(before[0], state(q, p))
    assert torch.equal(before[1], model.optimizer.state_dict()["state"][0]["exp_avg"])
    assert model.step_count == 3
    with pytest.raises(SupportError, match="parameter scale"):
        good.eval({"x": X})


@pytest.mark.parametrize("warm_calls", [0, 3])
def test_value_checks_are_the_same_fresh_and_warm(warm_calls):
    p2 = Normal(loc=torch.zeros(2), scale=1., var=["x"], name="p")
    b = Bernoulli(probs=0.5, var=["x"], features_shape=[2])
    for _ in range(warm_calls):
        LogProb(p2).eval({"x": torch.zeros(5, 2)})
        LogProb(b).eval({"x": torch.zeros(5, 2)})
    with pytest.raises(ShapeError, match=m('p(x): "x" has shape (5, 1)')):
        LogProb(p2).eval({"x": torch.zeros(5, 1)})  # features (1,) against (2,)
    with pytest.warns(pixyz_pyro.UnbatchedValueWarning, match=m('p(x): "x" has shape (2,)')):
        LogProb(p2).eval({"x": torch.zeros(2)})  # an unbatched example: a batch of 1
    with pytest.raises(ShapeError, match="features never broadcast"):
        LogProb(p2).eval({"x": torch.zeros(3)})  # neither a batch nor the features
    with pytest.raises(SupportError, match=m("(use .float())")):
        LogProb(b).eval({"x": torch.zeros(5, 2, dtype=torch.long)})
    with pixyz_pyro.validation("strict"), pytest.raises(SupportError, match="must lie in"):
        LogProb(b).eval({"x": torch.full((5, 2), 3.0)})


@pytest.mark.parametrize("warm_calls", [0, 2])
def test_network_checks_are_the_same_fresh_and_warm(warm_calls):
    q = Encoder()
    wide, renamed = Decoder(out=4), Decoder(names=("mean", "std"))
    ok = (LogProb(wide)).mean()
    for _ in range(warm_calls):
        ok.eval({"x": X, "z": torch.zeros(6, 3)})
    wide.fc = nn.Linear(3, 5)  # now 5 features where 4 are declared
    with pytest.raises(ShapeError, match=m("p(x|z): parameter loc has features (5,), but "
                                           "features_shape is (4,)")):
        ok.eval({"x": X, "z": torch.zeros(6, 3)})
    with pytest.raises(ParameterError, match=m("returned parameter names ['mean', 'std']")):
        LogProb(renamed).eval({"x": X, "z": torch.zeros(6, 3)})
    prior1 = Normal(loc=0., scale=1., var=["z"], features_shape=[1], name="p_{1}")
    kl = KullbackLeibler(q, prior1)
    for _ in range(2):
        with pytest.raises(ShapeError, match=m("q(z|x) gave z with features (3,), p_{1}(z) "
                                               "expects (1,)")):
            kl.eval({"x": X})


def test_checks_still_run_after_training():
    q, p = Encoder(), Decoder()
    prior = Normal(loc=0., scale=1., var=["z"], features_shape=[3])
    model = Model((KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean(),
                  distributions=[q, p])
    for _ in range(3):
        model.train({"x": X})
    before = state(q, p)
    with pytest.raises(ShapeError, match="batch"):
        model.train({"x": X[0]})  # one example of shape (4,), without its batch dimension
    assert same(before, state(q, p))


# --- entry points agree, signatures are strict ------------------------------------------------
def test_entry_points_accept_the_same_keywords():
    p = Normal(loc=nn.Parameter(torch.zeros(1)), scale=1., var=["x"])
    loss = (Parameter("beta") * -LogProb(p)).mean()
    model = Model(loss, distributions=[p])
    x = {"x": torch.ones(4, 1)}
    a = loss.eval(x, constants={"beta": 2.0})
    b = model.test(x, constants={"beta": 2.0})
    c = model.train(x, constants={"beta": 2.0})
    assert torch.allclose(a, b) and torch.allclose(a, c)


@pytest.mark.parametrize("call", ["eval", "train", "test"])
def test_keyword_typos_are_type_errors(call):
    p = Normal(loc=nn.Parameter(torch.zeros(1)), scale=1., var=["x"])
    loss = -LogProb(p).mean()
    model = Model(loss, distributions=[p])
    fn = {"eval": loss.eval, "train": model.train, "test": model.test}[call]
    with pytest.raises(TypeError, match=m("unexpected keyword argument 'bacth_n' (did you "
                                          'mean "batch_n"?)')):
        fn({"x": torch.ones(2, 1)}, bacth_n=2)
    if call == "eval":  # only eval returns terms: train and test return the loss
        with pytest.raises(TypeError, match=m('(did you mean "return_terms"?)')):
            fn({"x": torch.ones(2, 1)}, retrun_terms=True)
    with pytest.raises(TypeError, match="'dicsriminator'"):
        fn({"x": torch.ones(2, 1)}, dicsriminator=True)
    assert model.step_count == 0


def test_declared_keywords_are_accepted():
    p = Normal(loc="h_prev", scale=1., var=["x"], cond_var=["h_prev"])
    loss = IterativeLoss(LogProb(p), series_var=["x"], update_value={})
    x = torch.zeros(3, 2, 1)
    value = loss.eval({"x": x, "h_prev": torch.zeros(2, 1)}, mask=torch.ones(3, 2))
    assert value.shape == (2,)
    with pytest.raises(ShapeError, match=m("the mask must have shape (T, batch) = (3, 2), "
                                           "got (3, 2, 1)")):
        loss.eval({"x": x, "h_prev": torch.zeros(2, 1)}, mask=torch.ones(3, 2, 1))
    assert "mask" in compile_plan(loss).keywords


# --- terms are nodes --------------------------------------------------------------------------
def test_same_text_distributions_are_different_terms():
    pn = Normal(loc="z", scale=1., var=["x"], cond_var=["z"])
    pb = Bernoulli(probs="z", var=["x"], cond_var=["z"])
    loss = LogProb(pn) - LogProb(pb)
    assert str(loss) != "0"
    assert "p^{(1)}(x|z)" in str(loss) and "p^{(2)}(x|z)" in str(loss)
    data = {"x": torch.full((3, 1), 0.5), "z": torch.full((3, 1), 0.5)}
    value, terms = loss.eval(data, return_terms=True)
    assert len(terms) == 2
    assert torch.allclose(sum(terms.values()), value)


def test_one_node_used_twice_is_one_term_with_one_draw():
    q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
    p = Normal(loc="z", scale=1., var=["x"], cond_var=["z"])
    e = Expectation(q, LogProb(p))
    assert str(e - e) == "0"
    assert torch.equal((e - e).eval({"x": torch.randn(5, 1)}), torch.zeros(5))
    value, terms = (e + e).mean().eval({"x": torch.randn(5, 1)}, return_terms=True)
    assert len(terms) == 1 and torch.allclose(next(iter(terms.values())), value)


# --- strict shapes ----------------------------------------------------------------------------
def test_no_silent_broadcasts():
    q = Encoder()
    p1 = Normal(loc="z", scale=1., var=["x"], cond_var=["z"])
    with pytest.raises(ShapeError, match="features never broadcast"):
        LogProb(p1).eval({"x": torch.zeros(4), "z": torch.zeros(4, 1)})  # (B,) vs (B, 1)
    with pytest.raises(LossError, match="same variables"):
        KullbackLeibler(q, Normal(loc=0., scale=1., var=["w"]))
    with pytest.raises(ShapeError, match=m("shape (batch,)")):
        _ = LogProb(p1) + torch.zeros(4, 1)
    with pytest.raises(ShapeError, match="a loss combines values of one shape"):
        (LogProb(p1) + torch.zeros(3)).eval({"x": torch.zeros(4, 1), "z": torch.zeros(4, 1)})


def test_expectation_runs_the_encoder_once_on_the_batch_rows():
    q = Encoder()
    p = Decoder()
    prior = Normal(loc=0., scale=1., var=["z"], features_shape=[3])
    loss = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p), sample_shape=10)).mean()
    loss.eval({"x": torch.rand(16, 4)})
    assert q.calls == 1 and q.rows == [16]
    q.calls, q.rows = 0, []
    # its own draws are scored without a second forward too
    Expectation(q, LogProb(p) - LogProb(q), sample_shape=4).eval({"x": torch.rand(16, 4)})
    assert q.rows == [16]


# --- the policy -------------------------------------------------------------------------------
def test_validation_levels():
    p = Normal(loc=0., scale=-1., var=["x"])
    with pytest.raises(SupportError):
        LogProb(p).eval({"x": torch.zeros(2)})
    with pixyz_pyro.validation("off"):
        assert pixyz_pyro.get_validation() == "off"
        assert torch.isnan(LogProb(p).eval({"x": torch.zeros(2)})).all()
    assert pixyz_pyro.get_validation() == "default"
    with pytest.raises(ValueError, match="validation level must be one of"):
        pixyz_pyro.set_validation("lenient")


# --- the order of earlier calls does not matter ----------------------------------------------
CALLS = ["fresh", "no_grad", "train", "bad"]


def _world():
    torch.manual_seed(0)
    q, p = Encoder(), Decoder()
    prior = Normal(loc=0., scale=1., var=["z"], features_shape=[3])
    losses = [(KullbackLeibler(q, prior) - Expectation(q, LogProb(p))).mean(),
              (KullbackLeibler(q, prior, analytical=False) * 2 - LogProb(prior).mean()
               .expectation(q)).mean(), Expectation(q, LogProb(p), sample_shape=3).sum()]
    return q, p, losses


def _outcome(loss, x):
    torch.manual_seed(1)
    try:
        return ("value", loss.eval({"x": x}).detach())
    except Exception as e:  # noqa: BLE001 - the error is the outcome
        return ("error", type(e).__name__, str(e))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(CALLS), max_size=4), st.integers(0, 2),
       st.sampled_from(["good", "features", "dtype", "unbatched"]))
def test_outcome_does_not_depend_on_earlier_calls(history, which, data):
    x = {"good": X, "features": torch.rand(6, 5), "dtype": X.long(),
         "unbatched": X[0]}[data]
    q, p, losses = _world()
    expected = _outcome(losses[which], x)
    q, p, losses = _world()
    model = Model(losses[which], distributions=[q, p], optimizer_params={"lr": 0.0},
                  allow_unused=True)
    for call in history:
        if call == "no_grad":
            with torch.no_grad():
                losses[which].eval({"x": X})
        elif call == "train":
            model.train({"x": X})
        elif call == "bad":
            with pytest.raises(Exception):  # noqa: B017 - any refusal
                model.train({"x": torch.rand(6, 5)})
    got = _outcome(losses[which], x)
    assert got[0] == expected[0]
    if got[0] == "value":
        assert torch.allclose(got[1], expected[1], atol=1e-6)
    else:
        assert got[1:] == expected[1:]


def test_no_node_or_distribution_writes_itself_after_construction():
    """No first-call caches: ``object.__setattr__`` and ``__dict__[...] =`` only where a
    frozen object is built (``__init__``) or frozen (``__setattr__``, ``_freeze``)."""
    root = pathlib.Path(pixyz_pyro.__file__).parent
    found = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or \
                    fn.name in ("__init__", "__setattr__", "_freeze"):
                continue
            for node in ast.walk(fn):
                text = ast.unparse(node) if isinstance(node, (ast.Call, ast.Assign)) else ""
                if text.startswith("object.__setattr__") or (
                        isinstance(node, ast.Assign) and "__dict__[" in text):
                    found.append(f"{path.relative_to(root)}:{node.lineno} in {fn.name}")
    assert found == []


def test_constants_that_do_not_broadcast_are_refused_at_construction():
    with pytest.raises(ShapeError, match=m("p(x): the constant parameters' shapes "
                                           "{'loc': '(3,)', 'scale': '(2,)'} do not broadcast")):
        Normal(loc=torch.zeros(3), scale=torch.ones(2), var=["x"])
    with pytest.raises(pixyz_pyro.errors.VariableError, match="defines one variable"):
        Normal(loc=0., scale=1., var=["x", "y"])


def test_handlers_dispatch_by_mro_and_user_registrations_take_effect():
    """``run`` finds a node's handler by singledispatch on its type: a subclass of a node
    type is evaluated as its base until a handler is registered for it, which then takes
    effect at once; a node type without any handler is a LossError that says how to
    register."""
    from pixyz_pyro.errors import LossError as _LossError
    from pixyz_pyro.loss.base import Loss as _Loss
    from pixyz_pyro.loss.evaluate import evaluate
    from pixyz_pyro.loss.values import ValueLoss

    class Doubled(ValueLoss):
        pass

    assert float(Doubled(3.0).eval()) == 3.0  # the ValueLoss handler, by MRO

    @evaluate.register(Doubled)
    def _doubled(node, values, ctx):
        return 2 * node.tensor, {}

    assert float(Doubled(3.0).eval()) == 6.0
    assert float((Doubled(3.0) + ValueLoss(1.0)).eval()) == 7.0

    class Strange(_Loss):
        def __init__(self):
            self._freeze()

        @property
        def _input_var(self):
            return []

    with pytest.raises(_LossError, match=r"Strange is not a loss node that pixyz_pyro can "
                       r"evaluate; register a handler with "
                       r"pixyz_pyro\.loss\.evaluate\.evaluate\.register\(Strange\)"):
        Strange().eval()
