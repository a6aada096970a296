"""Sphinx configuration of the pixyz_pyro API reference (``make docs``).

The site loads nothing from the internet: formulas are typeset by a local MathJax
(Debian's ``libjs-mathjax``, or the folder named by ``$PIXYZ_PYRO_MATHJAX``), linked into
the built site's ``_static/mathjax``. The tutorials (``tutorials/*.md``) are MyST
Markdown notebooks: myst-nb runs every one of them on every build, in a Jupyter kernel
on this checkout's pixyz_pyro, and the build fails when a cell raises.
"""
import os
import sys
from pathlib import Path

from sphinx.util import logging

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # this checkout's pixyz_pyro, not an installed one
# ... and in the notebooks' kernels too (they inherit the environment), with examples/
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
# The notebooks' models are tiny: one thread each is faster than two competing ones.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Pyro imports tqdm.auto, which in a kernel without ipywidgets warns on stderr (and so on
# the page) that it has no notebook progress bar; the tutorials draw no progress bars.
os.environ["PYTHONWARNINGS"] = ",".join(
    [w for w in os.environ.get("PYTHONWARNINGS", "").split(",") if w]
    + ["ignore:IProgress not found"])

project = "pixyz_pyro"
author = "the pixyz_pyro developers"
copyright = "2026, the pixyz_pyro developers"
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",  # myst-parser's Markdown, and notebooks (.ipynb, or .md with a kernelspec)
]
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "**/.jupyter_cache"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
myst_update_mathjax = False  # its MathJax 3 settings would hide the math from MathJax 2
suppress_warnings = ["myst.xref_missing"]  # links to files outside docs/ (tests, examples)

# Every notebook runs on every build (no cache, no stored outputs), and a cell that
# raises fails the build; each must finish in nb_execution_timeout seconds.
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_show_tb = True  # the traceback of a failing cell, in the build's log
nb_execution_timeout = 300
nb_merge_streams = True
nb_output_stderr = "warn"  # a cell that writes to stderr (a warning) fails the -W build

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes" as fields: a NamedTuple's fields are not documented twice

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
