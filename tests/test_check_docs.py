"""The docs' configuration executes the notebooks strictly, and the browser check's HTML
reading (scripts/check_docs.py) finds unrendered math and cuts out one API entry.

No browser and no Sphinx here: conf.py is read as Python source (importing it would set
environment variables), and the checks are run on small HTML snippets.
"""
import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _conf() -> dict:
    tree = ast.parse((ROOT / "docs" / "conf.py").read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def _check_docs():
    spec = importlib.util.spec_from_file_location("check_docs", ROOT / "scripts" / "check_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_notebook_runs_on_every_build_and_a_failing_cell_fails_it():
    conf = _conf()
    assert "myst_nb" in conf["extensions"] and "myst_parser" not in conf["extensions"]
    assert conf["nb_execution_mode"] == "force"
    assert conf["nb_execution_raise_on_error"] is True
    assert conf["nb_output_stderr"] == "warn"  # a warning on a page fails the -W build
    assert 0 < conf["nb_execution_timeout"] <= 600
    assert conf["myst_enable_extensions"] == ["dollarmath", "amsmath"]
    assert conf["mathjax_path"].startswith("mathjax/MathJax.js")  # the local MathJax 2


RENDERED = ('<p>A <span class="MathJax">x</span><script type="math/tex">x</script> and '
            '<span class="MathJax">y</span><script type="math/tex">y</script>.</p>')


def test_rendered_math_passes_and_missed_math_is_named():
    check = _check_docs()
    assert check.math_problems("ok.html", RENDERED) == []
    half = '<p><span class="MathJax">x</span><script type="math/tex">x</script>' \
           '<script type="math/tex">y</script></p>'
    assert check.math_problems("half.html", half) == [
        "half.html: MathJax typeset 1 of 2 formulas"]
    raw = r"<p>the mean \(\mu\) and <code>\[</code></p>"
    assert check.math_problems("raw.html", raw) == [
        "raw.html: raw \\( and \\[ left in the text (math that did not render)"]
    # text inside scripts (MathJax's own sources) is not visible text
    assert check.math_problems("js.html", r"<script>var s = '\\(';</script>") == []


def test_an_entry_runs_from_its_id_to_the_next_entry_of_its_level():
    check = _check_docs()
    html = ('<dt id="pixyz_pyro.dist.Distribution">D</dt><dd>base</dd>'
            '<dt id="pixyz_pyro.dist.Normal">N</dt><dd>' + RENDERED + '</dd>'
            '<dt id="pixyz_pyro.dist.Normal.forward">f</dt><dd>its method</dd>'
            '<dt id="pixyz_pyro.dist.Bernoulli">B</dt><dd>next</dd>')
    normal = check.entry(html, "pixyz_pyro.dist.Normal")
    assert normal.startswith('id="pixyz_pyro.dist.Normal"')
    assert "its method" in normal and "base" not in normal and "next" not in normal
    assert check.math_problems("normal", normal) == []
    assert check.entry(html, "pixyz_pyro.dist.Laplace") == ""
    assert check.entry(html, "pixyz_pyro.dist.Bernoulli").endswith("next</dd>")
