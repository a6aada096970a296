"""The Python code blocks of docs/estimators.md run, in order, in one namespace."""
import pathlib
import re

import pyro
import torch

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "estimators.md"


def test_doc_code_runs():
    pyro.clear_param_store()
    ns: dict = {}
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 4
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), ns)
    assert ns["log_px"].shape == (5,) and ns["draw"]["z"].shape == (5, 2)
    assert torch.isfinite(ns["value"]).all()
    assert ns["obj"].elbo.num_particles == 50
    pyro.clear_param_store()
