"""Docstring coverage of the public API (the names in ``__all__`` of each subpackage).

* Every public name has its own docstring, whose first line is a summary, a
  Parameters section when it takes arguments, and an example whose doctest checks a
  printed value.
* Every public loss (``pixyz_pyro.loss.__all__``) has a Parameters section (when it takes
  arguments) and an Examples section whose doctest checks a printed value -- a number or
  a formula, not only statements.  ``tests/test_doctests.py`` runs those examples.
* So does every distribution family (``Normal``, ``Bernoulli``, ...) and every model
  preset, which also describe the ``forward`` contract / their training loss.

``test_coverage_report`` prints the figures for the whole API (``pytest -s``).
"""
import doctest
import importlib
import inspect

import pytest

import pixyz_pyro
from pixyz_pyro.dist import FAMILIES

PACKAGES = ["pixyz_pyro", "pixyz_pyro.dist", "pixyz_pyro.loss", "pixyz_pyro.model",
            "pixyz_pyro.infer", "pixyz_pyro.flows", "pixyz_pyro.layers", "pixyz_pyro.utils"]


def _public(package):
    module = importlib.import_module(package)
    names = getattr(module, "__all__", None)
    assert names, f"{package} has no __all__"
    return [(package, n, getattr(module, n)) for n in names
            if not inspect.ismodule(getattr(module, n))]


API = [entry for p in PACKAGES for entry in _public(p)]
#: documented objects: classes and functions (constants such as ``__version__`` and
#: ``FAMILIES`` are described by their module)
DOCUMENTED = [(p, n, o) for p, n, o in API if inspect.isclass(o) or callable(o)]


def _own_doc(obj):
    return obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__


def _takes_arguments(obj):
    """Whether ``obj``'s call has parameters to document (an exception's message is not
    one; a dataclass documents its fields as Attributes)."""
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return False
    if inspect.isclass(obj) and "Attributes\n" in inspect.cleandoc(_own_doc(obj) or ""):
        return False
    target = obj.__init__ if inspect.isclass(obj) else obj
    if inspect.isclass(obj) and target is object.__init__:
        return False
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return False
    return any(name != "self" for name in sig.parameters)


def _checked_examples(obj):
    """The doctest examples in ``obj``'s own docstring that compare an output."""
    test = doctest.DocTestParser().get_doctest(_own_doc(obj) or "", {}, "", None, 0)
    return [e for e in test.examples if e.want.strip()]


def _ids(entries):
    return [f"{p.rsplit('.', 1)[-1]}.{n}" for p, n, _ in entries]


@pytest.mark.parametrize("package,name,obj", DOCUMENTED, ids=_ids(DOCUMENTED))
def test_every_public_name_has_a_docstring_with_a_summary(package, name, obj):
    doc = _own_doc(obj)
    assert doc and doc.strip(), f"{package}.{name} has no docstring of its own"
    assert inspect.cleandoc(doc).splitlines()[0].strip(), f"{package}.{name}: no summary"


LOSSES = [e for e in DOCUMENTED if e[0] == "pixyz_pyro.loss"]
MODELS = [e for e in DOCUMENTED if e[0] == "pixyz_pyro.model" and
          inspect.isclass(e[2]) and issubclass(e[2], pixyz_pyro.model.Model)]
FAMILY_CLASSES = [("pixyz_pyro.dist", f.__name__, f) for f in FAMILIES]


@pytest.mark.parametrize("package,name,obj", LOSSES + MODELS + FAMILY_CLASSES,
                         ids=_ids(LOSSES + MODELS + FAMILY_CLASSES))
def test_losses_models_and_families_document_parameters_and_a_checked_example(
        package, name, obj):
    doc = inspect.cleandoc(_own_doc(obj) or "")
    if _takes_arguments(obj):
        assert "Parameters\n----------" in doc, f"{package}.{name} lists no Parameters"
    assert "Examples\n--------" in doc, f"{package}.{name} has no Examples section"
    assert _checked_examples(obj), f"{package}.{name}: no example prints a value"


@pytest.mark.parametrize("package,name,obj", DOCUMENTED, ids=_ids(DOCUMENTED))
def test_every_public_name_documents_its_parameters_and_has_a_checked_example(
        package, name, obj):
    doc = inspect.cleandoc(_own_doc(obj) or "")
    if _takes_arguments(obj):
        assert "Parameters\n----------" in doc, f"{package}.{name} lists no Parameters"
    assert _checked_examples(obj), f"{package}.{name}: no example prints a value"


def test_every_loss_with_a_formula_shows_it():
    """The losses' docstrings give their math (``:math:`` or ``.. math::``)."""
    wrappers = {"Loss", "ValueLoss", "ConstantVar", "DataParalleledLoss"}  # no formula
    missing = [n for _, n, o in LOSSES if ":math:" not in (_own_doc(o) or "")
               and ".. math::" not in (_own_doc(o) or "") and n not in wrappers]
    assert not missing, f"no formula in the docstrings of {missing}"


def test_families_describe_the_forward_contract():
    for f in FAMILIES:
        assert "``forward``" in f.__doc__, f"{f.__name__} does not describe forward"


def test_the_docstring_test_covers_every_public_name():
    every = {(p, n) for p, n, _ in API}
    covered = {(p, n) for p, n, _ in DOCUMENTED}
    constants = {(p, n) for p, n, o in API if not (inspect.isclass(o) or callable(o))}
    assert every == covered | constants
    assert len(covered) >= 100


def test_coverage_report(capsys):
    with_params = [e for e in DOCUMENTED if not _takes_arguments(e[2]) or
                   "Parameters\n" in inspect.cleandoc(_own_doc(e[2]) or "")]
    with_examples = [e for e in DOCUMENTED if _checked_examples(e[2])]
    with capsys.disabled():
        print(f"\npublic names: {len(DOCUMENTED)} documented objects; with a docstring "
              f"{sum(bool(_own_doc(o)) for _, _, o in DOCUMENTED)}, with Parameters "
              f"{len(with_params)}, with a checked example {len(with_examples)}")
