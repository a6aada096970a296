"""Run real Pixyz programs, nobody here wrote them, against pixyz_pyro with only their
imports changed, and say how many run to the end.

    PIXYZ_PROGRAMS_MIRROR=/path/to/mirrors python scripts/run_pixyz_programs.py [-k NAME]

``PIXYZ_PROGRAMS_MIRROR`` is a folder of git clones (bare or not) named ``owner+name``
(``masa-su+pixyz``, ``masa-su+pixyzoo``, ``HironoOkamoto+practice_pixyz``,
``hei4+medium-pyro-pixyz``, ``naruya+ssm-pixyz``); ``owner+name/repo`` also works.
Nothing of those programs is stored here: each run reads them from the clones at
``HEAD``, writes them to a temporary folder, and runs each in its own process
(``scripts/pixyz_programs/child.py``).  A repository that is missing is skipped.

What is changed, and printed for each program (``scripts/pixyz_programs/catalogue.py``):

* imports: ``pixyz.*`` is served by pixyz_pyro (an import hook, the code is unchanged);
* data: the data sets are small generated tensors of the real shapes (offline), and the
  epochs and step counts are cut so that each program runs a few iterations;
* notebooks: the code cells run in order, without the shell (``!``) and magic (``%``)
  lines.

A program *runs to the end* when its process exits 0 and every scalar global whose
name says loss is finite.  Exit status: 0 all ran, 1 some failed, 2 nothing to run.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent / "pixyz_programs"
sys.path.insert(0, str(HERE))

from catalogue import GENERIC, PROGRAMS, Program  # noqa: E402


def git_dir(mirror: Path, repo: str) -> Optional[Path]:
    base = mirror / repo.replace("/", "+")
    for d in (base, base / "repo", base / "repo" / ".git", base / ".git"):
        if (d / "HEAD").is_file() and (d / "objects").is_dir():
            return d
    return None


def show(gd: Path, path: str) -> str:
    return subprocess.run(["git", f"--git-dir={gd}", "show", f"HEAD:{path}"], check=True,
                          capture_output=True, text=True).stdout


def listing(gd: Path, folder: str) -> List[str]:
    where = [folder.rstrip("/") + "/"] if folder else []
    out = subprocess.run(["git", f"--git-dir={gd}", "ls-tree", "--name-only", "HEAD"] + where,
                         check=True, capture_output=True, text=True).stdout
    return [p for p in out.splitlines() if p.endswith(".py")]


def notebook_code(text: str) -> str:
    """The code cells of a notebook, in order, without shell and magic lines."""
    cells = json.loads(text)["cells"]
    parts = []
    for c in cells:
        if c["cell_type"] != "code":
            continue
        src = c["source"]
        src = "".join(src) if isinstance(src, list) else src
        lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        parts.append("\n".join(lines))
    code = "\n\n".join(parts) + "\n"
    future = re.findall(r"^from __future__ import .*$", code, flags=re.M)
    code = re.sub(r"^from __future__ import .*$", "", code, flags=re.M)
    return "\n".join(future + [code])


def apply(code: str, patches, what: str) -> str:
    for pattern, repl in patches:
        new, n = re.subn(pattern, repl, code, flags=re.M)
        if n == 0 and not pattern.startswith("(?#optional)"):
            raise ValueError(f"{what}: the patch {pattern!r} matches nothing")
        code = new
    return code


def prepare(prog: Program, gd: Path, work: Path) -> Path:
    """Write the program (and the modules beside it) into ``work``; return its path."""
    folder = os.path.dirname(prog.path)
    for f in listing(gd, folder):
        if f != prog.path:
            text = apply(show(gd, f), GENERIC[:1], f)  # it.next() in a helper module too
            text = apply(text, prog.module_patches.get(os.path.basename(f), ()), f)
            (work / os.path.basename(f)).write_text(text)
    text = show(gd, prog.path)
    code = notebook_code(text) if prog.path.endswith(".ipynb") else text
    code = apply(code, GENERIC, prog.name)
    code = apply(code, prog.patches, prog.name)
    target = work / "program.py"
    target.write_text(code)
    if prog.data is not None:
        prog.data(work)
    return target


def run_one(prog: Program, gd: Path, timeout: float, keep: bool) -> Dict:
    work = Path(tempfile.mkdtemp(prefix="pixyz_program_"))
    start = time.time()
    try:
        target = prepare(prog, gd, work)
    except Exception as e:  # noqa: BLE001 - reported as the program's result
        return {"name": prog.name, "outcome": "error", "note": f"preparing: {e}"}
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg",
               PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    if prog.train_size:
        env["PIXYZ_PROGRAM_TRAIN_SIZE"] = str(prog.train_size)
    cmd = [sys.executable, str(HERE / "child.py"), str(target)] + list(prog.argv)
    try:
        p = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"name": prog.name, "outcome": "timeout", "seconds": round(time.time() - start),
                "note": f"over {timeout:.0f} s", "folder": str(work)}
    log = p.stdout + p.stderr
    (work / "log.txt").write_text(log)
    end = [ln for ln in p.stdout.splitlines() if ln.startswith("PIXYZ_PROGRAM_END ")]
    result = {"name": prog.name, "seconds": round(time.time() - start, 1),
              "folder": str(work)}
    if p.returncode == 0 and end:
        info = json.loads(end[-1].split(" ", 1)[1])
        result.update(outcome="ran" if info["finite"] else "nonfinite",
                      losses=info["losses"])
    else:
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        result.update(outcome="failed", note=lines[-1] if lines else f"exit {p.returncode}")
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", action="append", default=[], help="only programs whose name "
                    "contains this (repeatable)")
    ap.add_argument("--mirror", default=os.environ.get("PIXYZ_PROGRAMS_MIRROR"))
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--keep", action="store_true", help="keep each program's folder")
    ap.add_argument("--list", action="store_true", help="list the programs and exit")
    args = ap.parse_args(argv)
    chosen = [p for p in PROGRAMS if not args.k or any(k in p.name for k in args.k)]
    if args.list:
        for p in chosen:
            print(f"{p.name:48s} {p.repo}:{p.path}")
        return 0
    if not args.mirror:
        print("PIXYZ_PROGRAMS_MIRROR is not set: point it at a folder of git clones named "
              "owner+name (see this script's docstring); nothing to run")
        return 2
    mirror = Path(args.mirror)
    results, skipped = [], []
    for prog in chosen:
        gd = git_dir(mirror, prog.repo)
        if gd is None:
            skipped.append(prog.name)
            continue
        r = run_one(prog, gd, args.timeout, args.keep)
        results.append(r)
        note = r.get("note") or ", ".join(f"{k}={v:.4g}" for k, v in r.get("losses", {}).items())
        print(f"{r['name']:48s} {r['outcome']:9s} {r.get('seconds', 0):7.1f}  {note[:160]}",
              flush=True)
        if not args.keep and r["outcome"] == "ran" and "folder" in r:
            subprocess.run(["rm", "-rf", r["folder"]], check=False)
    ran = sum(r["outcome"] == "ran" for r in results)
    if skipped:
        print(f"skipped (no clone): {', '.join(skipped)}")
    print(f"{ran} of {len(results)} programs ran to the end")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if not results:
        return 2
    return 0 if ran == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
