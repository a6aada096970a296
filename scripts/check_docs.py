"""Open the built docs in headless Chromium: the math must render, and screenshots are kept.

    python scripts/check_docs.py [docs/_build/html] [--out out/docs-screens]

For the index, the API pages of ``dist`` and ``loss`` and four tutorials it asks
Chromium for the page's DOM after its scripts ran, and checks that

* MathJax typeset the page's formulas (``span.MathJax`` elements, as many as the page
  has formulas), and
* no raw ``\\(`` or ``\\[`` is left in the visible text (a formula MathJax missed);

the same two checks hold inside the ``Normal`` class's own entry of ``api/dist.html``.
Then it saves a screenshot of each page under ``--out``, and ``normal.png``: the
``Normal`` entry at the top of ``api/dist.html``, as if scrolled to it. It needs
Debian's ``chromium`` (or ``$CHROMIUM``) and exits 1, naming the page, when a check fails.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["index.html", "api/dist.html", "api/loss.html",
         "tutorials/01-distributions-and-losses.html", "tutorials/05-loss-api.html",
         "tutorials/08-importance-weighted-bounds.html",
         "tutorials/10-autoregressive-models.html"]
#: (page, the id of the object's entry, the screenshot's name): checked on its own and
#: photographed scrolled to.
ENTRIES = [("api/dist.html", "pixyz_pyro.dist.Normal", "normal.png")]


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


def math_problems(where: str, html: str) -> list:
    """What is wrong with the math of a piece of rendered HTML (empty when nothing)."""
    page = _Page()
    page.feed(html)
    problems = []
    raw = [s for s in ("\\(", "\\[") if s in "".join(page.text)]
    if page.formulas and page.rendered < page.formulas:
        problems.append(f"{where}: MathJax typeset {page.rendered} of {page.formulas} "
                        f"formulas")
    if raw:
        problems.append(f"{where}: raw {' and '.join(raw)} left in the text (math that "
                        f"did not render)")
    return problems


def entry(html: str, anchor: str) -> str:
    """The HTML of the API entry whose id is ``anchor``, up to the next entry of the same
    level (``pixyz_pyro.dist.Normal`` ends where ``pixyz_pyro.dist.Laplace`` begins; its
    own members, ``pixyz_pyro.dist.Normal.*``, are inside it)."""
    start = html.find(f'id="{anchor}"')
    if start < 0:
        return ""
    parent = re.escape(anchor.rsplit(".", 1)[0])
    nxt = re.compile(rf'id="{parent}\.[A-Za-z_][A-Za-z0-9_]*"').search(html, start + 1)
    return html[start:nxt.start() if nxt else len(html)]


#: Hides what comes before an entry, so that the entry is at the top of the page, under
#: the page's title (headless Chromium photographs a page scrolled to a fragment blank).
_TO_ENTRY = """<script>document.addEventListener("DOMContentLoaded", function () {
  var node = document.getElementById(%s);
  node = node && node.closest("dl");
  while (node && node.parentElement && node.tagName !== "ARTICLE") {
    for (var n = node.previousElementSibling; n; n = n.previousElementSibling)
      if (n.tagName !== "H1") n.style.display = "none";
    node = node.parentElement;
  }
});</script>"""


def shoot_entry(exe: str, page: Path, anchor: str, png: Path) -> None:
    """A screenshot of ``page`` as if scrolled to the entry ``anchor``: a copy of the page
    beside it (so that its links and MathJax load) with :data:`_TO_ENTRY` added."""
    html = page.read_text(encoding="utf-8")
    html = html.replace("</body>", _TO_ENTRY % json.dumps(anchor) + "</body>", 1)
    fd, copy = tempfile.mkstemp(suffix=".html", prefix=".shot-", dir=page.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(html)
        _run(exe, Path(copy).resolve().as_uri(), f"--screenshot={png}",
             "--window-size=1280,1100", "--hide-scrollbars")
    finally:
        os.unlink(copy)


def check(site: Path, out: Path) -> list:
    """Check every page; return the problems found (empty when all is well)."""
    exe, problems = chromium(), []
    out.mkdir(parents=True, exist_ok=True)
    doms = {}
    for name in PAGES:
        url = (site / name).resolve().as_uri()
        doms[name] = _run(exe, url, "--dump-dom")
        problems += math_problems(name, doms[name])
        page = _Page()
        page.feed(doms[name])
        shot = out / (name.replace("/", "_").replace(".html", ".png"))
        _run(exe, url, f"--screenshot={shot}", "--window-size=1280,1400",
             "--hide-scrollbars")
        print(f"{name}: {page.rendered} formulas rendered; screenshot {shot}")
    for name, anchor, png in ENTRIES:
        html = entry(doms.get(name) or _run(exe, (site / name).resolve().as_uri(),
                                            "--dump-dom"), anchor)
        if not html:
            problems.append(f"{name}: no entry {anchor}")
            continue
        found = math_problems(f"{name}#{anchor}", html)
        page = _Page()
        page.feed(html)
        if not page.formulas:
            found.append(f"{name}#{anchor}: no formula in the entry")
        problems += found
        shoot_entry(exe, site / name, anchor, out / png)
        print(f"{name}#{anchor}: {page.rendered} of {page.formulas} formulas rendered; "
              f"screenshot {out / png}")
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
