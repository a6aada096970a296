"""Every docstring example in pixyz_pyro runs and prints what it says.

A module is skipped only when it cannot be imported because an optional dependency is
missing; any other import error fails.
"""
import doctest
import importlib
import pkgutil

import pytest
import torch

import pixyz_pyro

MODULES = sorted(m.name for m in pkgutil.walk_packages(pixyz_pyro.__path__, "pixyz_pyro."))


def _import(name):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and not e.name.startswith("pixyz_pyro"):
            pytest.skip(f"{name} needs the optional package {e.name!r}")
        raise


def test_the_package_has_modules_with_examples():
    assert "pixyz_pyro.loss.base" in MODULES and "pixyz_pyro.dist.families" in MODULES
    finder = doctest.DocTestFinder()
    n = sum(len(t.examples) for name in MODULES
            for t in finder.find(_import(name)))
    assert n >= 30


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = _import(name)
    torch.manual_seed(0)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
