"""The Python code blocks of docs/pyro.md run, in order, in one namespace."""
import importlib.util
import pathlib
import re
import shutil

import pyro
import pytest
import torch

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "pyro.md"
HAVE_GRAPHVIZ = importlib.util.find_spec("graphviz") is not None and \
    shutil.which("dot") is not None


def _blocks():
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_doc_shows_every_pyro_feature():
    code = "\n".join(_blocks())
    for feature in ("SVI(", "SVILoss(", "enumerate=[", "TraceEnum_ELBO(", "Predictive(",
                    "NUTS(", "render_model(", "from_pyro(", "pyro_elbo(", "subsample_size=",
                    "inputs=", "sites="):
        assert feature in code, feature


def test_doc_code_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # render_model writes its picture here
    pyro.clear_param_store()
    ns: dict = {}
    for block in _blocks():
        if "render_model" in block and not HAVE_GRAPHVIZ:
            continue
        exec(compile(block, str(DOC), "exec"), ns)
    out = capsys.readouterr().out
    assert "to_pyro(p(x,z), observed=['x'])" in out
    for name in ("svi_loss", "beta_loss", "m2_loss", "migrated_loss"):
        assert torch.isfinite(torch.as_tensor(ns[name])), name
    assert abs(float(ns["direct"]) - float(ns["pyro_side"])) <= 1e-5 * abs(float(ns["direct"]))
    assert ns["samples"]["z"].shape == (10, 32, 8)
    assert ns["samples"]["x"].shape == (10, 32, 784)
    assert bool(ns["covered"].all()), (ns["lo"], ns["hi"])
    assert ns["y_pred"].shape == (200, 200, 1)
    assert ns["rows"].shape == (50,)
    assert abs(float(ns["w_scale"]) - float(ns["exact_scale"])) < 0.1 * float(ns["exact_scale"])
    a, b = ns["score_loss"].item(), ns["pyro_score_loss"].item()
    assert abs(a - b) <= 1e-5 * abs(b), (a, b)
    assert ns["tr"].nodes["data"]["value"].shape == (10,) and ns["tr"].nodes["y"]["scale"] == 10
    assert "torch.Size([10]) 10.0" in out and "\nFalse\n" in out
    if HAVE_GRAPHVIZ:
        assert "True" in out and (tmp_path / "vae_model.png").stat().st_size > 0
    pyro.clear_param_store()


@pytest.mark.skipif(HAVE_GRAPHVIZ, reason="only meaningful without graphviz")
def test_render_block_is_the_only_one_skipped_without_graphviz():
    assert sum("render_model" in b for b in _blocks()) == 1
