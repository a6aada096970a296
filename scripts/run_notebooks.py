"""Run the tutorial notebooks' code cells, and (with ``--write``) save their outputs.

    python scripts/run_notebooks.py docs/tutorials/*.ipynb          # run, check they work
    python scripts/run_notebooks.py --write docs/tutorials/*.ipynb  # and store the outputs

No Jupyter is needed: the code cells of a notebook run in order in one namespace (one
torch thread, the Agg backend). Whatever a cell prints becomes its text output; each
matplotlib figure still open at its end becomes a PNG output. ``tests/test_tutorials.py``
runs every notebook this way; the docs show the stored outputs.
"""
import argparse
import base64
import contextlib
import io
import json
import sys
import traceback
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]


class CellError(RuntimeError):
    """A notebook cell raised; the message names the notebook and the cell."""


def code_cells(notebook: Dict) -> List[Dict]:
    return [c for c in notebook["cells"] if c["cell_type"] == "code"]


def source(cell: Dict) -> str:
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def _figures() -> List[Dict]:
    """PNG outputs of the open matplotlib figures, which are then closed."""
    if "matplotlib.pyplot" not in sys.modules:
        return []
    import matplotlib.pyplot as plt
    outputs = []
    for num in plt.get_fignums():
        buf = io.BytesIO()
        plt.figure(num).savefig(buf, format="png", dpi=72, bbox_inches="tight")
        outputs.append({"output_type": "display_data", "metadata": {},
                        "data": {"image/png": base64.b64encode(buf.getvalue()).decode(),
                                 "text/plain": ["<Figure>"]}})
    plt.close("all")
    return outputs


def run(path: Path) -> Dict:
    """Execute the notebook at ``path``; return it with fresh outputs."""
    import matplotlib
    import torch

    matplotlib.use("Agg")
    torch.set_num_threads(1)
    notebook = json.loads(Path(path).read_text())
    namespace: Dict = {"__name__": "__main__"}
    for i, cell in enumerate(code_cells(notebook), 1):
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(source(cell), f"{Path(path).name}[cell {i}]", "exec"), namespace)
        except Exception as e:
            raise CellError(f"{path}: code cell {i} raised {type(e).__name__}: {e}\n"
                            f"{traceback.format_exc()}") from e
        outputs = []
        if out.getvalue():
            outputs.append({"output_type": "stream", "name": "stdout",
                            "text": out.getvalue().splitlines(keepends=True)})
        cell["outputs"] = outputs + _figures()
        cell["execution_count"] = i
    return notebook


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--write", action="store_true", help="store the outputs in the files")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # this checkout's pixyz_pyro and examples
    for path in args.notebooks:
        notebook = run(path)
        if args.write:
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
        print(f"{path}: {len(code_cells(notebook))} code cells ran")


if __name__ == "__main__":
    main()
