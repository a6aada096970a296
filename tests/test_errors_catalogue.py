"""The error catalogue (docs/errors.md) as tests.

Each case gives bad input to a small VAE (or to objects built beside it) and asserts

* the error type, a :class:`~pixyz_pyro.errors.PixyzError`;
* the message: it names the distribution, the variable, and the shapes or keys expected
  and given;
* that nothing changed: parameters, buffers (BatchNorm running statistics included),
  optimizer state and step counts are bit-identical before and after.

``docs/errors.md`` is generated from these cases with the real messages; a test checks
it is current.  Regenerate it with ``python tests/test_errors_catalogue.py``.
"""
import os
import re

import _errors_cases_input  # noqa: F401 - registers the cases
import _errors_cases_strict  # noqa: F401 - registers the cases
import _errors_cases_train
import _errors_cases_validation  # noqa: F401 - registers the cases
import pytest
import torch
from _errors_world import CASES, World, assert_same, snapshot

from pixyz_pyro.errors import InputError, PixyzError
from pixyz_pyro.model import Model

DOCS = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "errors.md")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case):
    error, before, after = case.run()
    assert isinstance(error, case.error), f"{type(error).__name__}: {error}"
    assert isinstance(error, PixyzError)
    message = str(error)
    for fragment in case.fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert_same(before, after)


def test_extra_unknown_keys_stay_allowed():
    """As in Pixyz, keys that no distribution reads are ignored."""
    w = World(warm=False)
    w.model.train({"x": w.x, "label": "anything", "X_unused": None})
    assert w.model.step_count == 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("model_on, data_on", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_real_device_mismatch_is_refused_and_changes_nothing(model_on, data_on):
    w = World(warm=False)
    for d in (w.p, w.q, w.prior):
        d.to(model_on)
    w.model.train({"x": w.x.to(model_on)})
    before = snapshot([w.model])
    with pytest.raises(InputError) as info:
        w.model.train({"x": w.x.to(data_on)})
    where = "cuda:0" if data_on == "cuda" else "cpu"
    assert f"q(z|x).forward failed on {{x: float32 (8, 4) on {where}}}" in str(info.value)
    assert_same(before, snapshot([w.model]))


def test_compile_on_an_unsupported_platform_falls_back_with_one_warning(monkeypatch):
    """``Model(compile=True)`` where ``torch.compile`` fails: ONE warning, then eager
    training with eager's numbers (skipped until ``pixyz_pyro.model.compile`` exists)."""
    pytest.importorskip("pixyz_pyro.model.compile")

    def unsupported(fn, **kwargs):
        raise RuntimeError("Dynamo is not supported on this platform")

    def run(compile):
        w = World(warm=False)
        model = Model(w.loss, distributions=[w.p, w.q], optimizer_params={"lr": 1e-2},
                      compile=compile)
        torch.manual_seed(1)
        for _ in range(3):
            model.train({"x": w.x})
        return snapshot([model])

    eager = run(False)
    monkeypatch.setattr(torch, "compile", unsupported)
    with pytest.warns(RuntimeWarning) as record:
        fallen_back = run(True)
    assert len(record) == 1
    assert "Dynamo is not supported on this platform" in str(record[0].message)
    assert "training continues in eager mode" in str(record[0].message)
    assert_same(eager, fallen_back)


def test_the_catalogue_has_at_least_25_kinds():
    assert len(CASES) >= 25
    assert len({c.title for c in CASES}) == len(CASES)


def _message(case) -> str:
    error = case.run()[0]
    text = str(error)
    text = text.replace(_errors_cases_train._TMP + os.sep, "")
    return re.sub(r"\n", " ", text)


def render() -> str:
    """docs/errors.md, with each case's real message."""
    lines = [
        "# Error catalogue",
        "",
        "Every error pixyz_pyro raises for bad input is a subclass of",
        "`pixyz_pyro.errors.PixyzError` (and of the builtin exception you would catch for",
        "the same mistake: `ValueError`, `TypeError`, `FloatingPointError`). Its message",
        "names the distribution, the variable, and the shapes or keys expected and given.",
        "",
        "Errors are raised **before any state changes**: parameters, buffers (BatchNorm",
        "running statistics too), optimizer state and step counts are left exactly as they",
        "were, so a typo costs a message, not a run. `Model.train` checks the input names",
        "and types before the forward pass; what the forward pass itself changes (running",
        "statistics; everything on the first step) is put back when the step fails or is",
        "refused. Shapes follow `sample_shape + batch_shape + features_shape`",
        "(`pixyz_pyro.dist.shapes`). Extra unknown keys in an input dict stay allowed, as",
        "in Pixyz.",
        "",
        "Validation is a policy, the same on every call, never a first-call check",
        "(`pixyz_pyro.set_validation(level)`, or `with pixyz_pyro.validation(level):`).",
        "At the default level, names, dtypes and shapes are checked on the host on every",
        "call, and supports on the device, read once per evaluation (in `Model.train`,",
        "inside the step's one finiteness read). A value's features must equal the",
        "distribution's features: they never broadcast. A Bernoulli-type likelihood scores",
        "a real value outside [0, 1] with its formula and a `SupportWarning`, as Pixyz",
        "does; the `strict` level makes that an error, and `off` skips every check (for",
        "benchmarks). Errors that a network raises deep inside torch (a wrong dtype,",
        "device or feature size reaching `nn.Linear`) are re-raised as `InputError`,",
        "naming the distribution, the inputs it got and its parameters; the original",
        "error is chained.",
        "",
        "These behaviours are decisions, not accidents:",
        "",
        "* **Marginalizing.** `marginalize_var` integrates out variables a distribution",
        "  *defines*; a conditioning variable cannot be marginalized. A product may not",
        "  condition on a variable that one of its factors marginalized out (the product",
        "  would read a different, unbound variable of that name): multiply first, then",
        "  marginalize.",
        "* **NaN and inf.** A non-finite loss or gradient makes `Model.train` refuse the",
        "  step (nothing changes) and raise `NonFiniteError` naming the terms, gradients",
        "  and inputs that are not finite; `Model(..., skip_nonfinite=True)` skips such",
        "  steps and counts them in `model.skipped_steps` instead. The check reads only",
        "  the value `train` already reads: no extra host sync.",
        "* **compile=True where torch.compile cannot run.** Training falls back to eager",
        "  mode with ONE `RuntimeWarning` (\"Model(compile=True): torch.compile failed on",
        "  the ...; training continues in eager mode, with the same results at eager",
        "  speed\") and eager's numbers; it is not an error.",
        "* **Arguments are checked at construction.** `Model` and the presets refuse bad",
        "  arguments before building anything, naming the parameter",
        "  (`pixyz_pyro.model.arguments`). A listed distribution that takes no part in the",
        "  loss is an error, since it would silently never train; `allow_unused=True` keeps",
        "  it. float16 parameters on the CPU are refused (there are no fp32 master weights",
        "  or loss scale there): use bfloat16 or float32. Optimizers that need a closure",
        "  (LBFGS) are refused.",
        "* **Checkpoints load all or nothing.** `Model.load` validates the whole file",
        "  against the model first (entries, keys, shapes, dtypes, dense layouts, the",
        "  optimizer's class and state entry by entry, counters, generator states), then",
        "  applies it in one go; if anything fails, the model is exactly as it was.",
        "",
        "The examples below run on the small VAE of `tests/_errors_world.py`",
        "(`q(z|x)`: 4 features to 2, `p(x|z)`: Bernoulli, `p_{prior}(z)`: standard normal,",
        "a batch `x` of 8) and are the tests of `tests/test_errors_catalogue.py`.",
        "Regenerate this file with `python tests/test_errors_catalogue.py`.",
        "",
    ]
    for i, c in enumerate(CASES, 1):
        lines += [f"## {i}. {c.title}", "", f"`{c.error.__name__}` from", "",
                  "```python", c.code, "```", "", "```text", _message(c), "```", ""]
    return "\n".join(lines)


def test_docs_are_current():
    with open(DOCS) as f:
        assert f.read() == render(), ("docs/errors.md is stale: regenerate it with "
                                      "python tests/test_errors_catalogue.py")


if __name__ == "__main__":
    with open(DOCS, "w") as f:
        f.write(render())
    print(f"wrote {os.path.normpath(DOCS)} ({len(CASES)} cases)")
