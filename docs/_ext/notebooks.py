"""A Sphinx source parser for ``.ipynb`` files, on top of myst-parser.

A notebook becomes MyST Markdown: its Markdown cells as they are, each code cell as a
``python`` block, and the outputs it was saved with after it (text as a plain block, PNG
images inline). Nothing is executed here; ``tests/test_tutorials.py`` runs the code.
"""
import json

from myst_parser.parsers.sphinx_ import MystParser


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _fence(body: str, lang: str = "") -> str:
    ticks = "````" if "```" in body else "```"
    return f"{ticks}{lang}\n{body.rstrip()}\n{ticks}"


def _outputs(cell) -> list:
    parts = []
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if out.get("output_type") == "stream":
            parts.append(_fence(_text(out["text"]), "none"))
        elif "image/png" in data:
            png = _text(data["image/png"]).replace("\n", "")
            parts.append(f'<img alt="output" src="data:image/png;base64,{png}"/>')
        elif "text/plain" in data:
            parts.append(_fence(_text(data["text/plain"]), "none"))
        elif out.get("output_type") == "error":
            parts.append(_fence("\n".join(out.get("traceback", [])), "none"))
    return parts


def notebook_to_myst(source: str) -> str:
    """The MyST Markdown text of a notebook's JSON."""
    nb = json.loads(source)
    blocks = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            blocks.append(_text(cell["source"]))
        elif cell["cell_type"] == "code":
            blocks.append(_fence(_text(cell["source"]), "python"))
            blocks.extend(_outputs(cell))
    return "\n\n".join(blocks) + "\n"


class NotebookParser(MystParser):
    supported = ("ipynb",)

    def parse(self, inputstring: str, document) -> None:
        super().parse(notebook_to_myst(inputstring), document)


def setup(app):
    app.add_source_suffix(".ipynb", "ipynb")
    app.add_source_parser(NotebookParser)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
