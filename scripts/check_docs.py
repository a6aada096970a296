"""Open the built docs in headless Chromium: the math must render, and screenshots are kept.

    python scripts/check_docs.py [docs/_build/html] [--out out/docs-screens]

For the index, the ``Normal`` page (``api/dist.html``), the loss page and two tutorials it
asks Chromium for the page's DOM after its scripts ran, and checks that

* MathJax typeset the page's formulas (``span.MathJax`` elements, as many as the page
  has formulas), and
* no raw ``\\(`` or ``\\[`` is left in the visible text (a formula MathJax missed);

then it saves a screenshot of each page under ``--out``. It needs Debian's ``chromium``
(or ``$CHROMIUM``) and exits 1, naming the page, when a check fails.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["index.html", "api/dist.html", "api/loss.html",
         "tutorials/01-distributions-and-losses.html", "tutorials/05-loss-api.html"]


class _Page(HTMLParser):
    """Counts MathJax output and formula sources, and collects the visible text."""

    def __init__(self):
        super().__init__()
        self.rendered = self.formulas = 0
        self.text, self._hidden = [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "style"):
            self._hidden += 1
            if tag == "script" and (a.get("type") or "").startswith("math/tex"):
                self.formulas += 1
        if "MathJax" in (a.get("class") or "").split():
            self.rendered += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.text.append(data)


def chromium() -> str:
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")
    if not exe:
        sys.exit("no chromium: install Debian's chromium package, or set CHROMIUM")
    return exe


def _run(exe: str, url: str, *flags: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                              f"--user-data-dir={profile}", "--virtual-time-budget=20000",
                              *flags, url], capture_output=True, text=True, timeout=180)
    if out.returncode != 0:
        sys.exit(f"chromium failed on {url}:\n{out.stderr[-2000:]}")
    return out.stdout


def check(site: Path, out: Path) -> list:
    """Check every page; return the problems found (empty when all is well)."""
    exe, problems = chromium(), []
    out.mkdir(parents=True, exist_ok=True)
    for name in PAGES:
        url = (site / name).resolve().as_uri()
        page = _Page()
        page.feed(_run(exe, url, "--dump-dom"))
        text = "".join(page.text)
        raw = [s for s in ("\\(", "\\[") if s in text]
        if page.formulas and page.rendered < page.formulas:
            problems.append(f"{name}: MathJax typeset {page.rendered} of {page.formulas} "
                            f"formulas")
        if raw:
            problems.append(f"{name}: raw {' and '.join(raw)} left in the text (math that "
                            f"did not render)")
        shot = out / (name.replace("/", "_").replace(".html", ".png"))
        _run(exe, url, f"--screenshot={shot}", "--window-size=1280,1400",
             "--hide-scrollbars")
        print(f"{name}: {page.rendered} formulas rendered; screenshot {shot}")
    return problems


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("site", nargs="?", type=Path, default=ROOT / "docs" / "_build" / "html")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "docs-screens")
    args = ap.parse_args(argv)
    if not (args.site / "index.html").is_file():
        sys.exit(f"no built site at {args.site}: run `make docs` first")
    problems = check(args.site, args.out)
    for p in problems:
        print("FAILED", p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
