"""The tutorial notebooks (docs/tutorials/*.md, MyST Markdown notebooks) run, cell by cell.

The docs build executes every notebook in a Jupyter kernel (myst-nb,
``nb_execution_mode = "force"``) and fails on a cell that raises; these tests run the same
cells without Jupyter (``scripts/run_notebooks.py``), so that ``make test`` checks them on
a checkout without the ``docs`` extra. They carry the ``notebook`` mark: CI, which builds
the docs right after ``make test``, deselects them there (``.ci/run``) so that the
notebooks run once.
"""
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]-*.md"))


def _runner():
    spec = importlib.util.spec_from_file_location("run_notebooks",
                                                  ROOT / "scripts" / "run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_tutorial_is_a_notebook_in_the_toctree():
    assert len(NOTEBOOKS) >= 11
    index = (TUTORIALS / "index.md").read_text()
    toctree = re.search(r"```\{toctree\}\n(.*?)```", index, re.S).group(1)
    listed = [line.strip() for line in toctree.splitlines()
              if line.strip() and not line.startswith(":")]
    assert sorted(listed) == [p.stem for p in NOTEBOOKS]
    runner = _runner()
    for path in NOTEBOOKS:
        text = path.read_text()
        # myst-nb executes a Markdown file only when its front matter names a kernel
        assert text.startswith("---\njupytext:") and "kernelspec:" in text.split("\n---")[0], \
            path.name
        assert runner.code_cells(text), path.name
    assert not list(TUTORIALS.glob("*.ipynb"))  # one format: reviewable text


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_runs(path):
    pytest.importorskip("matplotlib")
    printed = _runner().run(path)
    assert printed and any(printed)  # every tutorial shows numbers or formulas


def test_code_cells_are_read_with_their_options_dropped():
    text = ("# t\n\n```{code-cell} ipython3\n:tags: [hide-input]\nx = 1\n```\n\ntext\n\n"
            "````{code-cell} ipython3\nprint('```')\n````\n```python\nnot = a cell\n```\n")
    assert _runner().code_cells(text) == ["x = 1\n", "print('```')\n"]


def test_an_unclosed_cell_is_an_error():
    with pytest.raises(ValueError, match=r"a \{code-cell\} block opened with ``` is not "
                                         r"closed"):
        _runner().code_cells("```{code-cell} ipython3\nx = 1\n")


def test_a_failing_cell_is_named(tmp_path):
    path = tmp_path / "bad.md"
    path.write_text("---\nkernelspec:\n  name: python3\n---\n\n```{code-cell} ipython3\n"
                    "x = 1\n```\n\n```{code-cell} ipython3\nx / 0\n```\n")
    runner = _runner()
    with pytest.raises(runner.CellError, match=r"bad.md: code cell 2 raised "
                                               r"ZeroDivisionError: division by zero"):
        runner.run(path)
