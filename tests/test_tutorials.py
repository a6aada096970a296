"""The tutorial notebooks (docs/tutorials/*.ipynb) run, cell by cell, without Jupyter.

``scripts/run_notebooks.py`` executes a notebook's code cells in order in one namespace;
a cell that raises fails the test and is named. The notebooks keep their stored outputs
for the docs; ``python scripts/run_notebooks.py --write docs/tutorials/*.ipynb``
refreshes them.
"""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "docs" / "tutorials").glob("*.ipynb"))


def _runner():
    spec = importlib.util.spec_from_file_location("run_notebooks",
                                                  ROOT / "scripts" / "run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_tutorials():
    assert len(NOTEBOOKS) >= 8


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_runs_and_shows_its_outputs(path):
    stored = json.loads(path.read_text())
    pytest.importorskip("matplotlib")
    runner = _runner()
    fresh = runner.run(path)
    cells = runner.code_cells(fresh)
    assert cells and all(c["execution_count"] == i for i, c in enumerate(cells, 1))
    # the docs show the stored outputs: every cell that prints or draws has them saved
    for old, new in zip(runner.code_cells(stored), cells):
        kinds = [o["output_type"] for o in new["outputs"]]
        assert [o["output_type"] for o in old["outputs"]] == kinds, runner.source(old)


def test_a_failing_cell_is_named(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": "x = 1", "outputs": []},
                    {"cell_type": "code", "source": "x / 0", "outputs": []}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(nb))
    runner = _runner()
    with pytest.raises(runner.CellError, match=r"bad.ipynb: code cell 2 raised "
                                               r"ZeroDivisionError: division by zero"):
        runner.run(path)
