"""Sphinx configuration of the pixyz_pyro API reference (``make docs``).

The site loads nothing from the internet: formulas are typeset by a local MathJax
(Debian's ``libjs-mathjax``, or the folder named by ``$PIXYZ_PYRO_MATHJAX``), linked into
the built site's ``_static/mathjax``. Notebooks under ``tutorials/`` are shown with the
outputs they were saved with (``_ext/notebooks.py``); ``tests/test_tutorials.py`` runs
their code.
"""
import os
import sys
from pathlib import Path

from sphinx.util import logging

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # this checkout's pixyz_pyro, not an installed one
sys.path.insert(0, str(DOCS / "_ext"))

project = "pixyz_pyro"
author = "the pixyz_pyro developers"
copyright = "2026, the pixyz_pyro developers"
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "notebooks",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
myst_update_mathjax = False  # its MathJax 3 settings would hide the math from MathJax 2
suppress_warnings = ["myst.xref_missing"]  # links to files outside docs/ (tests, examples)

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

try:
    import furo  # noqa: F401
    html_theme = "furo"
except ImportError:  # the default theme is good enough to read the reference
    html_theme = "alabaster"
html_title = "pixyz_pyro"

MATHJAX = Path(os.environ.get("PIXYZ_PYRO_MATHJAX", "/usr/share/javascript/mathjax"))
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML"
mathjax2_config = {"tex2jax": {"inlineMath": [["\\(", "\\)"]],
                               "displayMath": [["\\[", "\\]"]], "processEscapes": True}}


def _link_mathjax(app, exception):
    """Put the local MathJax at ``_static/mathjax`` of the built site (a link, not a
    54 MB copy)."""
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    if not (MATHJAX / "MathJax.js").is_file():
        logging.getLogger(__name__).warning(
            f"no MathJax at {MATHJAX}: formulas will not render (install Debian's "
            f"libjs-mathjax, or set PIXYZ_PYRO_MATHJAX to a MathJax 2 folder)")
        return
    if target.is_symlink() or target.exists():
        target.unlink()
    target.symlink_to(MATHJAX, target_is_directory=True)


def setup(app):
    app.connect("build-finished", _link_mathjax)
