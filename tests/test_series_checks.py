"""Checks inside an ``IterativeLoss``: every step of a series is checked, not only the
first.  Within one evaluation, the host checks of metadata that passed once are looked up
(:meth:`FactorDistribution._validate`); these tests make a single late step go wrong and
expect the same error as if it were the first."""
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from _series_world import Emission, Inference
from torch import nn

import pixyz_pyro
from pixyz_pyro.dist import Normal
from pixyz_pyro.dist.context import Context
from pixyz_pyro.dist.validation import SupportWarning
from pixyz_pyro.errors import ParameterError, ShapeError, SupportError
from pixyz_pyro.loss import Expectation, IterativeLoss, KullbackLeibler, LogProb
from pixyz_pyro.loss.evaluate import run
from pixyz_pyro.model import Model

T, B, X, Z = 6, 5, 4, 3


class Transition(Normal):
    """p(z|z_{prev}), whose network misbehaves on the call numbered ``bad_call`` of an
    evaluation (``what``: a negative scale, wrong features or a wrong parameter name)."""

    def __init__(self):
        super().__init__(var=["z"], cond_var=["z_prev"], name="p", features_shape=[Z])
        self.fc = nn.Linear(Z, 2 * Z)
        self.calls, self.bad_call, self.what = 0, None, None

    def forward(self, z_prev):
        self.calls += 1
        loc, s = self.fc(z_prev).chunk(2, -1)
        scale = F.softplus(s) + 0.1
        if self.calls == self.bad_call:
            if self.what == "scale":
                scale = -scale
            elif self.what == "features":
                loc, scale = torch.cat([loc, loc], -1), torch.cat([scale, scale], -1)
            elif self.what == "name":
                return {"loc": loc, "sigma": scale}
        return {"loc": loc, "scale": scale}


def dmm():
    q, trans, emit = Inference(X, Z), Transition(), Emission(X, Z)
    step = KullbackLeibler(q, trans) - Expectation(q, LogProb(emit))
    loss = IterativeLoss(step, max_iter=T, series_var=["x"],
                         update_value={"z": "z_prev"}).mean()
    return loss, q, trans, emit


def data(x=None):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(T, B, X, generator=g) > 0.5).float() if x is None else x
    return {"x": x, "z_prev": torch.zeros(B, Z)}


def weights(*modules):
    return [t.detach().clone() for mod in modules for t in mod.state_dict().values()]


@pytest.mark.parametrize("bad_call,what,error,text", [
    (4, "scale", SupportError, "p(z|z_{prev}): parameter scale is outside its support"),
    (4, "features", ShapeError, "p(z|z_{prev}): parameter loc has features (6,), but "
                                "features_shape is (3,)"),
    (5, "name", ParameterError, "p(z|z_{prev}).forward returned parameter names ['loc', "
                                "'sigma']; a Normal expects ['loc', 'scale']"),
])
def test_a_late_step_that_goes_wrong_is_refused_and_changes_nothing(bad_call, what, error,
                                                                    text):
    loss, q, trans, emit = dmm()
    model = Model(loss, distributions=[q, trans, emit])
    model.train(data())  # warm: every step checked and passed
    before = weights(q, trans, emit)
    for _ in range(2):  # the same error on every call
        trans.calls, trans.bad_call, trans.what = 0, bad_call, what
        with pytest.raises(error, match=re.escape(text)):
            model.train(data())
    assert all(torch.equal(a, b) for a, b in zip(before, weights(q, trans, emit)))
    assert model.step_count == 1
    trans.bad_call = None
    assert torch.isfinite(model.train(data()))


def test_a_late_value_outside_the_support_warns_or_raises_by_policy():
    loss, *_ = dmm()
    x = data()["x"].clone()
    x[T - 2, 1, 0] = 3.0  # one value of the fifth step is outside [0, 1]
    with torch.no_grad():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the clean series warns of nothing
            assert torch.isfinite(loss.eval(data()))
        with pytest.warns(SupportWarning, match=re.escape('p(x|z): "x"')):
            loss.eval({"x": x, "z_prev": torch.zeros(B, Z)})
        with pixyz_pyro.validation("strict"):
            with pytest.raises(SupportError, match=re.escape('p(x|z): "x"')):
                loss.eval({"x": x, "z_prev": torch.zeros(B, Z)})


def test_a_late_value_with_other_features_is_a_shape_error():
    """Steps whose value has other features than the first step's are checked afresh."""
    emit = Emission(X, Z)
    lp = LogProb(emit)
    ctx = Context()
    z = torch.zeros(B, Z)
    with torch.no_grad():
        run(lp, {"x": torch.zeros(B, X), "z": z}, ctx)
        with pytest.raises(ShapeError, match=re.escape('p(x|z): "x" has shape (5, 2)')):
            run(lp, {"x": torch.zeros(B, 2), "z": z}, ctx)


def test_every_step_leaves_its_support_checks():
    """The lookup replaces the host checks only: each step still leaves its support
    checks (three parameters' scales and probabilities, and one value, per step)."""
    loss, *_ = dmm()
    series = loss.a
    ctx = Context()
    with torch.no_grad():
        run(series, data(), ctx)
    assert len(ctx.flags) == T * 4
    assert len(ctx.checked) == 4  # q, p(z|z_{prev}), p(x|z) and its value: one entry each


def test_values_equal_with_and_without_the_lookup():
    """The same loss value whether the host checks run (default) or not (off)."""
    loss, *_ = dmm()
    with torch.no_grad():
        torch.manual_seed(3)
        a = loss.eval(data())
        with pixyz_pyro.validation("off"):
            torch.manual_seed(3)
            b = loss.eval(data())
    assert torch.equal(a, b)


def test_large_tensors_are_reduced_alone_and_still_caught():
    """Small tensors of one check are concatenated; a large one is reduced on its own
    (no copy), once even when it is flagged twice, and a bad value in it is seen."""
    from pixyz_pyro.dist.checks import GROUPED, Violation, witnesses
    from pixyz_pyro.dist.family import interval_check
    check = interval_check(0, 1)
    emit = Emission(X, Z)

    def flags(*ts):
        return [Violation(check, emit, '"x"', t, (emit.family, None), True) for t in ts]

    big, small = torch.rand(2, GROUPED), torch.rand(3, 4)
    per_tensor = len(check.witness(small))
    assert len(witnesses(flags(big, big, small, small))) == 2 * per_tensor
    assert torch.isfinite(torch.stack(witnesses(flags(big, small))).sum())
    bad = big.clone()
    bad[1, 7] = 1.5
    assert not torch.isfinite(torch.stack(witnesses(flags(small, bad, big))).sum())


def test_flags_after_the_first_step_carry_the_group_of_their_tensor():
    """A flag made from metadata that passed before carries the group key computed the
    first time; it is the key of its own tensor, and the witnesses are those of flags
    without a key (computed from the tensors)."""
    from pixyz_pyro.dist.checks import group_of, witnesses
    loss, *_ = dmm()
    ctx = Context()
    with torch.no_grad():
        run(loss.a, data(), ctx)
    assert all(f.group is not None for f in ctx.flags)
    assert all(f.group == group_of(f.check, f.tensor) for f in ctx.flags)
    plain = [f._replace(group=None) for f in ctx.flags]
    assert all(torch.equal(a, b) for a, b in zip(witnesses(ctx.flags), witnesses(plain)))
    bad = list(ctx.flags)
    bad[-1] = bad[-1]._replace(tensor=bad[-1].tensor + 2.0)  # the last step's value
    assert not torch.isfinite(torch.stack(witnesses(bad)).sum())


def test_witnesses_of_grouped_flags_still_see_one_bad_step():
    """The witnesses of a series' flags, concatenated by group, are those of the same
    flags one by one; a bad parameter at any one step, of either of two sites that share
    a group (q's and p's scales), is seen."""
    from pixyz_pyro.dist.checks import Flags, witnesses
    loss, *_ = dmm()
    ctx = Context()
    with torch.no_grad():
        run(loss.a, data(), ctx)
    flags = ctx.flags
    one_by_one = list(flags)
    assert all(torch.equal(a, b) for a, b in zip(witnesses(flags), witnesses(one_by_one)))
    scales = [i for i, s in enumerate(flags.sites) if s.what == "parameter scale"]
    assert len({id(flags.sites[i]) for i in scales}) == 2  # two sites, one group key
    assert len({flags.sites[i].group for i in scales}) == 1
    for i in (scales[0], scales[len(scales) // 2], scales[-1]):
        bad = Flags()
        for j, (s, t) in enumerate(flags.pairs()):
            bad.add(s, -t if j == i else t)
        assert not torch.isfinite(torch.stack(witnesses(bad)).sum())
        torch.testing.assert_close(torch.stack(witnesses(bad)),
                                   torch.stack(witnesses(list(bad))), rtol=0, atol=0,
                                   equal_nan=True)


def test_flags_of_a_series_share_one_site_per_check_and_make_no_objects():
    """Later steps' flags reuse the site made when the metadata first passed: a series
    of T steps leaves 4 sites and 4T tensors, and no Violation lives until the read
    (long-lived objects bring Python's full collections sooner)."""
    import gc

    from pixyz_pyro.dist.checks import Flags, Site, Violation, split_flags, witnesses
    def violations() -> int:  # alive now (another test's traceback may hold some)
        return sum(type(o) is Violation for o in gc.get_objects())
    loss, *_ = dmm()
    ctx = Context()
    before = violations()
    with torch.no_grad():
        run(loss.a, data(), ctx)
    assert isinstance(ctx.flags, Flags) and len(ctx.flags) == T * 4
    sites = ctx.flags.sites
    assert len({id(s) for s in sites}) == 4
    assert all(sites[4 * t + i] is sites[i] for t in range(T) for i in range(4))
    assert all(type(s) is Site for s in ctx.flags.sites)
    assert violations() == before  # the evaluation made none
    # iterating makes Violations with the same fields; witnesses agree either way
    listed = list(ctx.flags)
    assert [v.tensor for v in listed] == ctx.flags.tensors
    assert [(v.check, v.dist, v.what, v.problem, v.lenient, v.group) for v in listed] == \
        [tuple(s) for s in ctx.flags.sites]
    assert all(torch.equal(a, b) for a, b in zip(witnesses(ctx.flags), witnesses(listed)))
    # a lenient site (the Bernoulli's value) goes to the lenient side, in order
    strict, lenient = split_flags(ctx.flags)
    assert len(strict) == 3 * T and len(lenient) == T
    assert all(not s.lenient for s in strict.sites) and all(s.lenient for s in lenient.sites)
    again = Flags()
    again.extend(strict)
    again.extend(list(lenient))
    assert len(again) == len(ctx.flags) and again.sites[-1] == lenient.sites[-1]
    assert again.tensors[-1] is lenient.tensors[-1]


def test_each_step_of_a_series_memoises_its_own_forwards():
    """A factor that a step uses twice runs once per step; a factor on an input that
    every step shares runs again at every step (as in a compiled step body, whose
    context is new at every step), and nothing a step memoised is left in the
    evaluation's memo afterwards."""
    q, trans, emit = Inference(X, Z), Transition(), Emission(X, Z)

    class Prior(Normal):  # conditioned on a global h, the same tensor at every step
        def __init__(self):
            super().__init__(var=["z"], cond_var=["h"], name="r", features_shape=[Z])
            self.fc, self.calls = nn.Linear(Z, Z), 0

        def forward(self, h):
            self.calls += 1
            return {"loc": self.fc(h), "scale": torch.ones(h.shape[0], Z)}

    prior = Prior()
    step = KullbackLeibler(q, trans) + KullbackLeibler(q, prior) - \
        Expectation(q, LogProb(emit))
    series = IterativeLoss(step, max_iter=T, series_var=["x"], update_value={"z": "z_prev"})
    calls = []
    inference_forward = q.forward
    q.forward = lambda **kw: calls.append(1) or inference_forward(**kw)
    ctx = Context()
    outside = ("entry", object())
    ctx.memo[("before",)] = outside
    with torch.no_grad():
        run(series, {**data(), "h": torch.zeros(B, Z)}, ctx)
    assert len(calls) == T and trans.calls == T and prior.calls == T
    assert ctx.memo == {("before",): outside}


class _Identity(Normal):
    """q(z|x) = N(x, 1): its parameters have the features of its input."""

    def __init__(self):
        super().__init__(var=["z"], cond_var=["x"], name="q", features_shape=[2])

    def forward(self, x):
        return {"loc": x, "scale": torch.ones_like(x)}


@pytest.mark.parametrize("bad", [0, 1, 2])
def test_each_call_of_a_factor_in_one_evaluation_is_checked(bad):
    """Outside a series a factor's first call is checked in full without a lookup key,
    its later calls by key or in full: a bad call is caught whichever it is."""
    q, prior = _Identity(), Normal(loc=0.0, scale=1.0, var=["z"], features_shape=[2])
    names = ["x0", "x1", "x2"]
    loss = sum((KullbackLeibler(q.replace_var(x=v), prior) for v in names[1:]),
               KullbackLeibler(q.replace_var(x=names[0]), prior))
    data = {v: torch.zeros(4, 2) for v in names}
    assert torch.equal(loss.eval(data), torch.zeros(4))
    data[names[bad]] = torch.zeros(4, 3)  # other features than features_shape
    with pytest.raises(ShapeError, match=re.escape("has features (3,), but features_shape "
                                                   "is (2,)")):
        loss.eval(data)


@pytest.mark.parametrize("bad", [0, 1, 2])
def test_each_value_of_a_factor_in_one_evaluation_is_checked(bad):
    """The same for values: the second and third scores of one factor are checked too."""
    p = Normal(loc=0.0, scale=1.0, var=["x"], features_shape=[2], name="p")
    names = ["x0", "x1", "x2"]
    loss = sum((LogProb(p.replace_var(x=v)) for v in names[1:]), LogProb(p.replace_var(x="x0")))
    data = {v: torch.zeros(4, 2) for v in names}
    assert loss.eval(data).shape == (4,)
    data[names[bad]] = torch.zeros(4, 3)
    with pytest.raises(ShapeError, match="features never broadcast"):
        loss.eval(data)
