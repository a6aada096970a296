"""Run the tutorial notebooks' code cells without Jupyter.

    python scripts/run_notebooks.py docs/tutorials/*.md

The tutorials are MyST Markdown notebooks (text, with a ``kernelspec`` front matter);
the docs build (myst-nb) executes them in a Jupyter kernel on every build. This script
is the light-weight check for a checkout without the ``docs`` extra: the
``{code-cell}`` blocks of a notebook run in order in one namespace (the Agg backend,
figures closed after each cell), and a cell that raises is named with its notebook and
number. ``tests/test_tutorials.py`` runs every notebook this way.
"""
import argparse
import contextlib
import io
import re
import sys
import traceback
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[1]
_OPEN = re.compile(r"^(`{3,})\{code-cell\}")


class CellError(RuntimeError):
    """A notebook cell raised; the message names the notebook and the cell."""


def code_cells(text: str) -> List[str]:
    """The sources of the ``{code-cell}`` blocks of a MyST notebook, in order (a cell's
    own ``:option: value`` lines are left out)."""
    cells, lines, fence = [], None, ""
    for line in text.splitlines():
        if lines is None:
            m = _OPEN.match(line)
            if m:
                lines, fence = [], m.group(1)
        elif line.strip() == fence:
            while lines and lines[0].startswith(":"):  # the cell's options
                lines.pop(0)
            cells.append("\n".join(lines) + "\n")
            lines = None
        else:
            lines.append(line)
    if lines is not None:
        raise ValueError(f"a {{code-cell}} block opened with {fence} is not closed")
    return cells


def run(path: Path) -> List[str]:
    """Execute the notebook at ``path``; return what each code cell printed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    namespace = {"__name__": "__main__"}
    printed = []
    for i, src in enumerate(code_cells(path.read_text()), 1):
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(src, f"{path.name}[cell {i}]", "exec"), namespace)
        except Exception as e:
            raise CellError(f"{path.name}: code cell {i} raised {type(e).__name__}: {e}\n"
                            f"{traceback.format_exc()}") from e
        finally:
            plt.close("all")
        printed.append(out.getvalue())
    return printed


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # this checkout's pixyz_pyro and examples
    for path in args.notebooks:
        print(f"{path}: {len(run(path))} code cells ran")


if __name__ == "__main__":
    main()
