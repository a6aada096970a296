"""Pixyz's package names and older spellings."""
import importlib
import subprocess
import sys

import pytest
import torch

import pixyz_pyro
from pixyz_pyro.dist import DataDistribution, EmpiricalDistribution


@pytest.mark.parametrize("alias,target", [("distributions", "dist"), ("losses", "loss"),
                                          ("models", "model")])
def test_pixyz_package_names_are_the_same_modules(alias, target):
    mod = importlib.import_module(f"pixyz_pyro.{alias}")
    assert mod is importlib.import_module(f"pixyz_pyro.{target}")
    assert getattr(pixyz_pyro, alias) is mod


def test_from_import_under_a_renamed_import():
    code = ("from pixyz_pyro import distributions as dist, losses, models\n"
            "p = dist.Normal(loc=0., scale=1., var=['x'])\n"
            "assert isinstance(losses.LogProb(p), losses.Loss) and models.Model\n"
            "import sys; assert 'sympy' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_data_distribution_is_the_deprecated_spelling_of_empirical():
    with pytest.warns(DeprecationWarning, match='DataDistribution is the Pixyz 0.1 spelling; '
                                                'use EmpiricalDistribution\\(\\["x"\\]\\) '
                                                '\\(Pixyz 0.3\\)'):
        p = DataDistribution(["x"])
    assert isinstance(p, EmpiricalDistribution) and p.prob_text == "p_{data}(x)"
    x = torch.randn(2, 3)
    assert p.sample({"x": x})["x"] is x
