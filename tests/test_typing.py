"""The package type-checks, and user code gets real types from it.

* ``mypy -p pixyz_pyro`` (with the ``[tool.mypy]`` configuration in pyproject.toml)
  reports no error.
* ``tests/typing/user_code.py`` -- subclassing ``Normal``, building a VAE loss, ``Model``,
  ``VAE`` -- passes ``mypy --strict`` and runs.
* Each ``tests/typing/rejected_*.py`` line marked ``# rejected: PATTERN`` gets a
  ``mypy --strict`` error matching PATTERN (a regular expression), and no other line
  gets one: ``Normal(var="x")``, ``KullbackLeibler(p, "q")``, ``Model("p")``...

mypy comes with the ``dev`` extra; without it these tests are skipped, except under CI
(``CI`` set), where a missing mypy fails.
"""
import os
import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = ROOT / "tests" / "typing"
MARK = re.compile(r"#\s*rejected:\s*(.+?)\s*$")

if os.environ.get("CI"):
    from mypy import api
else:
    api = pytest.importorskip("mypy.api")


def _mypy(*args):
    """mypy's report lines, run from the repository root (so this checkout is checked)."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        out, err, status = api.run(list(args))
    finally:
        os.chdir(cwd)
    assert status in (0, 1), f"mypy itself failed ({status}):\n{err}{out}"
    return status, out


def _errors(out):
    """``{(file name, line): [message, ...]}`` of mypy's error lines."""
    found = {}
    for line in out.splitlines():
        m = re.match(r"(.+?):(\d+): error: (.*)", line)
        if m:
            found.setdefault((Path(m.group(1)).name, int(m.group(2))), []).append(m.group(3))
    return found


def test_the_package_type_checks_with_no_error():
    status, out = _mypy("-p", "pixyz_pyro")
    assert status == 0, out
    assert out.startswith("Success: no issues found"), out


@pytest.fixture(scope="module")
def strict_report():
    files = sorted(SNIPPETS.glob("*.py"))
    assert [f.name for f in files if f.name.startswith("rejected_")], "no rejected snippets"
    _, out = _mypy("--config-file", str(SNIPPETS / "mypy.ini"),
                   *[str(f.relative_to(ROOT)) for f in files])
    return _errors(out), out


def test_correct_user_code_passes_strict_mypy(strict_report):
    errors, out = strict_report
    mine = {k: v for k, v in errors.items() if k[0] == "user_code.py"}
    assert not mine, out


def test_the_correct_user_code_runs():
    runpy.run_path(str(SNIPPETS / "user_code.py"), run_name="user_code")


@pytest.mark.parametrize("path", sorted(SNIPPETS.glob("rejected_*.py")), ids=lambda p: p.stem)
def test_wrong_user_code_is_rejected_where_marked(strict_report, path):
    errors, out = strict_report
    expected = {i: MARK.search(line).group(1)
                for i, line in enumerate(path.read_text().splitlines(), 1)
                if MARK.search(line)}
    assert expected, f"{path.name} marks no line"
    got = {line: msgs for (name, line), msgs in errors.items() if name == path.name}
    for line, pattern in expected.items():
        assert any(re.search(pattern, m) for m in got.get(line, [])), \
            f"{path.name}:{line} should be rejected with /{pattern}/; mypy said {got}"
    assert set(got) <= set(expected), f"{path.name}: unexpected errors {got}"
