"""Table 1's outputs: the Markdown table, the JSON file and the bar chart.

Beside our numbers it prints the reference figures: the anchors measured with the same
method on a 2-core CPU (issue 5 of this project) and the paper's own Table 1, whose
figures are seconds per MNIST epoch; we print our per-epoch equivalent
(``ms/step x 469`` steps of 128 images) so that the two can be read side by side.
"""
import json
from pathlib import Path
from typing import Dict, List

#: Targets: label -> (implementation, reference implementation, largest ratio).
TARGETS = {
    "pixyz": ("pixyz", "torch", 1.00),
    "pixyz_mc": ("pixyz_mc", "torch", 1.03),
    "pixyz_rewritten": ("pixyz_rewritten", "pixyz", 1.00),  # the rewrite is no slower
    "pixyz_compile": ("pixyz_compile", "torch", 0.72),
    # the compiled Model against the same networks compiled by hand, in the same run
    "pixyz_compile/torch_compile": ("pixyz_compile", "torch_compile", 1.00),
    "pixyz_svi": ("pixyz_svi", "pyro", 1.02),
    "pixyz_cudagraphs": ("pixyz_cudagraphs", "torch_cudagraphs", 1.15),
    # no host read in the step: the eager GPU target, against the same optimizer
    "pixyz_deferred": ("pixyz_deferred", "torch_fused", 1.05),
}

#: Ratios to hand-written PyTorch measured with this method on a 2-core CPU (issue 5).
ANCHORS = [
    ("original Pixyz 0.3.3", "1.08-1.23x"),
    ("Pyro Trace_ELBO", "1.19-1.37x"),
    ("Pyro JitTrace_ELBO", "1.18-1.22x"),
    ("eager BCE-with-logits", "about 0.81x"),
    ("torch.compile of loss and optimizer step", "about 0.72x"),
]

#: The paper's Table 1 (Suzuki et al., arXiv:2107.13109): seconds per epoch, keyed by
#: (z, h), for Pixyz and Pyro.  Not bundled: this offline checkout could not retrieve
#: the figures; paste them here as {(10, 400): {"Pixyz": s, "Pyro": s}, ...}.
PAPER_TABLE1: Dict = {}

STEPS_PER_EPOCH = 469  # 60,000 MNIST images in batches of 128


def _cell(q: Dict[str, float], fmt: str) -> str:
    return f"{q['median']:{fmt}} [{q['q1']:{fmt}}-{q['q3']:{fmt}}]"


def markdown(result: Dict) -> str:
    """The whole report as Markdown."""
    meta = result["meta"]
    lines = ["# Table 1, side by side", "",
             f"{meta['machine']}; torch {meta['torch']}, pyro {meta['pyro']}; "
             f"{meta['threads']} torch thread(s); flush denormal {meta['flush_denormal']}; "
             f"glibc keeps freed memory {meta.get('keep_freed_memory')}; "
             f"device {meta['device']}; batch {meta['batch_size']}; "
             f"{meta['rounds']} rounds x {meta['steps']} steps after {meta['warmup']} "
             f"warm-up steps; same-objective tolerance "
             f"{meta.get('tolerance', 1e-6):g} relative"
             + (f"; compiled graphs that CUDA graphs skipped: {meta['cudagraph_skips']}"
                if "cudagraph_skips" in meta else "") + ".", "",
             f"Load average (1, 5, 15 min): before {meta['load_before']}, after "
             f"{meta['load_after']}.", ""]
    for cfg in result["configs"]:
        lines += [f"## z={cfg['z']}, h={cfg['h']}", "", _check_table(cfg["check"]), "",
                  "| implementation | ms/step, median [IQR] | ratio to hand-written PyTorch, "
                  "median [quartiles] | s/epoch equiv. | page faults/step | target |",
                  "|---|---|---|---|---|---|"]
        for name, row in cfg["timing"].items():
            lines.append(f"| {row['label']} | {_cell(row['ms'], '.2f')} | "
                         f"{_cell(row['ratio'], '.3f')} | "
                         f"{row['ms']['median'] * STEPS_PER_EPOCH / 1e3:.1f} | "
                         f"{row.get('faults_per_step', float('nan')):.0f} | "
                         f"{_targets_of(cfg, name)} |")
        lines.append("")
    lines += ["## Targets", "", _targets_table(result), "", "## Reference figures", "",
              "Anchors measured with the same method on a 2-core CPU:", "",
              "| anchor | ratio to hand-written PyTorch |", "|---|---|"]
    lines += [f"| {a} | {r} |" for a, r in ANCHORS]
    lines += ["", "The paper's Table 1 (seconds per MNIST epoch; ours as ms/step x 469):", ""]
    lines += _paper_lines(result)
    return "\n".join(lines) + "\n"


def _check_table(check: Dict) -> str:
    rows = ["Same objective (same weights, batch and noise; loss in nats per image):", "",
            "| implementation | group | loss | reference | relative difference | ok |",
            "|---|---|---|---|---|---|"]
    for name, c in check.items():
        rows.append(f"| {name} | {c['group']} | {c['loss']:.6f} | {c['reference']:.6f} | "
                    f"{c['relative']:.1e} | {'yes' if c['ok'] else '**NO**'} |")
    return "\n".join(rows)


def _targets_of(cfg: Dict, impl: str) -> str:
    return "; ".join(_target_text(t) for t in cfg["targets"].values() if t["impl"] == impl)


def _target_text(t) -> str:
    if not t:
        return ""
    return (f"<= {t['limit']:.2f}x of {t['reference']}: {t['ratio']:.3f} "
            f"{'met' if t['met'] else '**not met**'}")


def _targets_table(result: Dict) -> str:
    rows = ["| target | " + " | ".join(f"z={c['z']}, h={c['h']}" for c in result["configs"])
            + " |", "|---|" + "---|" * len(result["configs"])]
    for name, (_, ref, limit) in TARGETS.items():
        found = [c["targets"].get(name) for c in result["configs"]]
        if not any(found):  # e.g. the CUDA-graph target on a CPU run
            continue
        cells = ["n/a" if t is None else f"{t['ratio']:.3f} {'met' if t['met'] else '**not met**'}"
                 for t in found]
        rows.append(f"| {name} <= {limit:.2f}x {ref} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _paper_lines(result: Dict) -> List[str]:
    rows = ["| z, h | paper Pixyz | paper Pyro | ours: pixyz_pyro | ours: Pyro SVI | "
            "ours: hand-written PyTorch |", "|---|---|---|---|---|---|"]
    for c in result["configs"]:
        paper = PAPER_TABLE1.get((c["z"], c["h"]), {})
        ours = {n: f"{r['ms']['median'] * STEPS_PER_EPOCH / 1e3:.1f} s"
                for n, r in c["timing"].items()}
        rows.append(f"| {c['z']}, {c['h']} | {paper.get('Pixyz', 'n/a')} | "
                    f"{paper.get('Pyro', 'n/a')} | {ours.get('pixyz', 'n/a')} | "
                    f"{ours.get('pyro', 'n/a')} | {ours.get('torch', 'n/a')} |")
    if not PAPER_TABLE1:
        rows += ["", "(n/a: the paper's figures are not bundled; see "
                 "`comparisons/report.py`, `PAPER_TABLE1`.)"]
    return rows


def save(result: Dict, text: str, out: Path, stem: str) -> List[Path]:
    """Write ``text`` to ``<stem>.md`` and ``result`` to ``<stem>.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.md", out / f"{stem}.json"]
    paths[0].write_text(text)
    paths[1].write_text(json.dumps(result, indent=2) + "\n")
    return paths


def write(result: Dict, out: Path, plot: bool = True) -> List[Path]:
    """Write ``table1.md``, ``table1.json`` and (with matplotlib) ``table1.png``."""
    paths = save(result, markdown(result), out, "table1")
    if plot:
        paths.append(bar_chart(result, out / "table1.png"))
    return paths


def bar_chart(result: Dict, path: Path) -> Path:
    """Ratios to hand-written PyTorch (median, with the quartiles as error bars)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = result["configs"]
    names = list(configs[0]["timing"])
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(7.5, 2.2 + 2.2 * len(configs)), 4.6))
    for i, name in enumerate(names):
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(configs))]
        med = [c["timing"][name]["ratio"]["median"] for c in configs]
        err = [[m - c["timing"][name]["ratio"]["q1"] for m, c in zip(med, configs)],
               [c["timing"][name]["ratio"]["q3"] - m for m, c in zip(med, configs)]]
        ax.bar(xs, med, width, yerr=err, capsize=2, label=configs[0]["timing"][name]["label"])
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(configs)))
    ax.set_xticklabels([f"z={c['z']}, h={c['h']}" for c in configs])
    ax.set_ylabel("time per step / hand-written PyTorch")
    meta = result["meta"]
    ax.set_title(f"Table 1 side by side ({meta.get('device', 'cpu')}, {meta['threads']} "
                 f"thread(s), load {meta['load_before']})")
    ax.legend(fontsize=7, ncol=4 if len(configs) > 2 else 2, loc="upper center",
              bbox_to_anchor=(0.5, -0.08))
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
