"""The layers, enforced by machine (DESIGN.md, "Layers and who may import whom").

* ``import pixyz_pyro`` (and ``.dist``, ``.loss``) leaves sympy unimported.
* Only ``pixyz_pyro/infer/`` uses ``pyro.sample``/``plate``/``poutine``/``infer``/
  ``module``.  ``import pyro.distributions`` loads ``pyro.poutine`` itself, so this is a
  static (AST) check, not a ``sys.modules`` one.
* ``pixyz_pyro/dist/`` never imports ``pixyz_pyro.loss`` at module level (late imports
  inside functions are the allowed way back).
* sympy is imported only in ``pixyz_pyro/loss/latex.py``.
"""
import ast
import pathlib
import subprocess
import sys
import textwrap

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "pixyz_pyro"
PYRO_ONLY_IN_INFER = {"sample", "plate", "poutine", "infer", "module"}


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=120, cwd=PKG.parent)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_importing_the_package_does_not_import_sympy():
    assert _run("""
        import sys
        import pixyz_pyro, pixyz_pyro.dist, pixyz_pyro.loss
        print('sympy' in sys.modules)
    """) == "False"


def test_building_and_evaluating_a_loss_does_not_import_sympy():
    """Only printing a formula loads sympy.  (A torch optimizer's constructor imports
    torch._dynamo, which loads sympy itself; that is torch's, not ours.)"""
    assert _run("""
        import sys, torch
        from pixyz_pyro.dist import Bernoulli, Normal
        from pixyz_pyro.loss import KullbackLeibler, Expectation, LogProb
        q = Normal(loc="x", scale=1., var=["z"], cond_var=["x"], name="q")
        p = Bernoulli(probs=torch.full((3,), 0.3), var=["x"])
        prior = Normal(loc=torch.zeros(3), scale=1., var=["z"])
        loss = (KullbackLeibler(q, prior) - Expectation(q, LogProb(p), sample_shape=[4])).mean()
        loss.eval({"x": torch.rand(5, 3)}, return_terms=False)
        print('sympy' in sys.modules)
    """) == "False"


# --- the static checks -------------------------------------------------------------------------

def _module_level(tree: ast.Module):
    """Statements executed at import time: the body, and inside if/try/with at top level."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, field, []) or []:
                    todo.extend(child.body if isinstance(child, ast.ExceptHandler) else [child])


def _resolve(module: str, level: int, path: pathlib.Path) -> str:
    """Absolute dotted name of a (possibly relative) ``from X import`` in ``path``."""
    if level == 0:
        return module or ""
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    base = parts[:-level] if path.name != "__init__.py" else parts[:len(parts) - level]
    return ".".join(base + ([module] if module else []))


def pyro_boundary_violations(source: str, path: pathlib.Path):
    """Uses of pyro.sample/plate/poutine/infer/module, by attribute or by import."""
    tree = ast.parse(source)
    pyro_names = {"pyro"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "pyro" and a.asname:
                    pyro_names.add(a.asname)
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                head = a.name.split(".")
                if head[0] == "pyro" and len(head) > 1 and head[1] in PYRO_ONLY_IN_INFER:
                    bad.append(f"{path}:{node.lineno} import {a.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            head = node.module.split(".")
            if head[0] != "pyro":
                continue
            if len(head) > 1 and head[1] in PYRO_ONLY_IN_INFER:
                bad.append(f"{path}:{node.lineno} from {node.module} import ...")
            elif len(head) == 1:
                for a in node.names:
                    if a.name in PYRO_ONLY_IN_INFER:
                        bad.append(f"{path}:{node.lineno} from pyro import {a.name}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in pyro_names and node.attr in PYRO_ONLY_IN_INFER:
                bad.append(f"{path}:{node.lineno} {node.value.id}.{node.attr}")
    return bad


def dist_imports_loss_at_module_level(source: str, path: pathlib.Path):
    bad = []
    for node in _module_level(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(node.module, node.level, path)
            names = [target + "." + a.name for a in node.names]
            if any(n == "pixyz_pyro.loss" or n.startswith("pixyz_pyro.loss.")
                   for n in [target] + names):
                bad.append(f"{path}:{node.lineno} imports {target}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "pixyz_pyro.loss" or a.name.startswith("pixyz_pyro.loss."):
                    bad.append(f"{path}:{node.lineno} imports {a.name}")
    return bad


def sympy_imports(source: str, path: pathlib.Path):
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sympy"
                                                for a in node.names):
            bad.append(f"{path}:{node.lineno}")
        elif (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
              and node.module.split(".")[0] == "sympy"):
            bad.append(f"{path}:{node.lineno}")
    return bad


def _sources(under=PKG):
    return sorted(under.rglob("*.py"))


def test_only_infer_uses_pyro_sample_plate_poutine_infer_module():
    bad = []
    for path in _sources():
        if (PKG / "infer") in path.parents:
            continue
        bad += pyro_boundary_violations(path.read_text(), path)
    assert not bad, "pyro's inference API outside pixyz_pyro/infer:\n" + "\n".join(bad)


def test_dist_does_not_import_loss_at_module_level():
    bad = []
    for path in _sources(PKG / "dist"):
        bad += dist_imports_loss_at_module_level(path.read_text(), path)
    assert not bad, "pixyz_pyro/dist imports pixyz_pyro.loss:\n" + "\n".join(bad)


def test_sympy_is_imported_only_by_the_latex_printer():
    bad = []
    for path in _sources():
        if path == PKG / "loss" / "latex.py":
            continue
        bad += sympy_imports(path.read_text(), path)
    assert not bad, "sympy imported outside pixyz_pyro/loss/latex.py:\n" + "\n".join(bad)
    assert sympy_imports((PKG / "loss" / "latex.py").read_text(), PKG / "loss" / "latex.py")


# --- the checkers catch what they should (so the checks above are not vacuous) ----------------

FAKE_DIST = PKG / "dist" / "fake.py"


@pytest.mark.parametrize("source", [
    "import pyro\npyro.sample('x', d)",
    "import pyro as P\nP.plate('data', 3)",
    "from pyro import poutine",
    "from pyro.infer import SVI",
    "import pyro.poutine as poutine",
    "import pyro\ndef f(m):\n    pyro.module('m', m)",
])
def test_boundary_checker_catches(source):
    assert pyro_boundary_violations(source, FAKE_DIST)


@pytest.mark.parametrize("source", [
    "import pyro.distributions as pd\nd = pd.Normal(0, 1)",
    "import pyro\npyro.set_rng_seed(0)",
    "from pyro.distributions import constraints",
])
def test_boundary_checker_allows(source):
    assert not pyro_boundary_violations(source, FAKE_DIST)


@pytest.mark.parametrize("source,caught", [
    ("from ..loss import LogProb", True),
    ("from .. import loss", True),
    ("from ..loss.pdf import LogProb", True),
    ("import pixyz_pyro.loss", True),
    ("from pixyz_pyro.loss import ELBO", True),
    ("try:\n    from ..loss import LogProb\nexcept ImportError:\n    pass", True),
    ("def f():\n    from ..loss import LogProb\n    return LogProb", False),
    ("from ..errors import VariableError", False),
    ("from .joint import MultiplyDistribution", False),
])
def test_dist_import_checker(source, caught):
    assert bool(dist_imports_loss_at_module_level(source, FAKE_DIST)) is caught


def test_sympy_checker():
    assert sympy_imports("def f():\n    import sympy\n", FAKE_DIST)
    assert sympy_imports("from sympy import Symbol", FAKE_DIST)
    assert not sympy_imports("import numpy", FAKE_DIST)
