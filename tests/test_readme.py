"""The README's Python code blocks run, in order, in one namespace."""
import pathlib
import re

import torch

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_code():
    assert len(_blocks()) >= 2


def test_readme_code_runs(capsys):
    torch.manual_seed(0)
    ns: dict = {}
    for block in _blocks():
        exec(compile(block, str(README), "exec"), ns)
    out = capsys.readouterr().out
    assert "p(x,z) = p(x|z)p_{prior}(z)" in out
    assert ("mean \\left(D_{KL} \\left[q(z|x)||p_{prior}(z) \\right] - "
            "\\mathbb{E}_{q(z|x)} \\left[\\log p(x|z) \\right] \\right)") in out
    assert torch.isfinite(ns["train_loss"])
    assert ns["samples"]["x"].shape == (16, 784)
