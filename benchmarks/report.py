"""The one reporter: every summary the benchmark scripts print, from their run folders and results JSON.

usage:
    python benchmarks/report.py run RUN_DIR                  # a run: throughput, monitors, evaluations
    python benchmarks/report.py curve RUN_DIR                # accuracy against minutes (--save-every-epoch)
    python benchmarks/report.py few-labels OUT [--fractions 0.01 0.1 1.0]   # benchmarks/few_labels.sh's table
    python benchmarks/report.py precision OUT                # benchmarks/precision_auto_vs_fp32.sh's arms
    python benchmarks/report.py compare "a=runs/a-seed*" "b=runs/b-seed*"   # groups + exact permutation test
    python benchmarks/report.py results [FILE.json ...]      # results JSON as Markdown (default: all of
                                                             # benchmarks/results/; the docs site's page too)
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import math
import re
import statistics
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def run_summary(run: Path) -> None:
    """A run directory: throughput from metrics.jsonl, the monitors, its evaluation JSON files."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    rates = [r["images_per_s"] for r in rows if r.get("images_per_s")]
    # the first log rows include start-up; quote the median over the run
    print(f"steps logged: {len(rows)}  last step {rows[-1]['step']}  last loss {rows[-1]['loss']:.4f}")
    if rates:
        print(f"images/s: median {statistics.median(rates):.1f}  min {min(rates):.1f}  "
              f"max {max(rates):.1f}")
    config = run / "config.yaml"
    if config.exists() and rows[-1].get("time_s"):
        import yaml

        batch = yaml.safe_load(config.read_text())["train"]["batch_size"]
        seconds = rows[-1]["time_s"]
        # training seconds of the loop (callbacks and monitors included), from the first step to the last record
        print(f"training time {seconds:.1f} s: end to end {rows[-1]['step'] * batch / seconds:.1f} images/s")
    knn = [(r["epoch"], r["knn_top1"]) for r in rows if "knn_top1" in r]
    if knn:
        print("knn monitor: " + ", ".join(f"epoch {e:.0f} {v:.4f}" for e, v in knn))
    if "probe_test_top1" in rows[-1]:
        print(f"online probe: test top1 {rows[-1]['probe_test_top1']:.4f} (last batch probe_acc "
              f"{rows[-1]['probe_acc']:.4f})")
    for name in ("linear", "knn", "linear-random", "knn-random"):
        f = run / f"{name}.json"
        if f.exists():
            d = json.loads(f.read_text())
            print(f"{name:14s} top1 {d['top1']:.4f}" + (f"  top5 {d['top5']:.4f}" if "top5" in d else ""))


def curve(run: Path) -> None:
    """Accuracy against minutes of pretraining: a --save-every-epoch run and its linear-epochE.json files."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    # minutes of pretraining at the end of each epoch: the time_s of the record that ends it
    ends = {round(r["epoch"]): r["time_s"] for r in rows if abs(r["epoch"] - round(r["epoch"])) < 1e-9}
    rates = [r["images_per_s"] for r in rows[1:]]
    print(f"{run}: {rows[-1]['step']} steps, last loss {rows[-1]['loss']:.4f}, "
          f"median {statistics.median(rates):.1f} images/s")
    print("| epoch | minutes of pretraining | linear top-1 | linear top-5 |")
    print("| --- | --- | --- | --- |")
    for f in sorted(run.glob("linear-epoch*.json"), key=lambda p: int(p.stem.removeprefix("linear-epoch"))):
        epoch = int(f.stem.removeprefix("linear-epoch"))
        d = json.loads(f.read_text())
        minutes = ends.get(epoch, float("nan")) / 60
        print(f"| {epoch} | {minutes:.1f} | {d['top1']:.4f} | {d['top5']:.4f} |")
    knn = run / "knn.json"
    if knn.exists():
        print(f"kNN top-1 of the final encoder: {json.loads(knn.read_text())['top1']:.4f}")


COLUMNS = [
    ("v1", "SimCLR fine-tune (v1)", "{c}-{f}/results.json"),
    ("v2", "v2: from head layer 1", "{c}-{f}/results.json"),
    ("linear", "linear eval on the same labels", "{c}-{f}.json"),
    ("scratch", "from scratch, same network", "{c}-{f}/results.json"),
    ("self", "self-distilled", "{c}-{f}/results.json"),
    ("half", "distilled into a half-width student", "{c}-{f}/results.json"),
]


def cell(root: Path, column: str, fraction: str, pattern: str) -> str:
    path = root / pattern.format(c=column, f=fraction)
    if not path.is_file():
        return "-"
    top1 = json.loads(path.read_text())["top1"]
    time = root / f"{column}-{fraction}.time"
    minutes = f" ({int(time.read_text()) / 60:.1f} min)" if time.is_file() else ""
    return f"{100 * top1:.2f}{minutes}"


def few_labels(root: Path, fractions: list[str]) -> None:
    """benchmarks/few_labels.sh's output folder as a Markdown table: each cell the test top-1 of a results JSON
    (finetune / distill: results.json; linear-eval: its --out), the wall time in minutes (.time files), "-"
    where not run."""
    print("| labels | " + " | ".join(title for _, title, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for f in fractions:
        n = ""
        ft = root / f"v1-{f}" / "results.json"
        if ft.is_file():
            n = f" ({json.loads(ft.read_text())['labels']})"
        print(f"| {float(f):.0%}{n} | " + " | ".join(cell(root, c, f, pat) for c, _, pat in COLUMNS) + " |")
    supcon = root / "linear-supcon.json"
    if supcon.is_file():
        print(f"\nSupCon pretraining, linear eval: {100 * json.loads(supcon.read_text())['top1']:.2f}")


def precision_run(run: Path, log: Path) -> dict:
    text = log.read_text() if log.exists() else ""
    choice = re.search(r"precision auto: (.*)", text)
    pretrain = re.search(r"pretrain wall time: (\d+) s", text)
    return {
        "linear": json.loads((run / "linear.json").read_text())["top1"],
        "knn": json.loads((run / "knn.json").read_text())["top1"],
        "wall_s": int((run / "wall_s").read_text()),
        "pretrain_s": int(pretrain.group(1)) if pretrain else None,
        "auto": choice.group(1) if choice else None,
    }


def precision(out: Path) -> None:
    """benchmarks/precision_auto_vs_fp32.sh's folder: per run the precision auto chose, wall times, linear / kNN
    top-1; each arm's medians, their difference, the end-to-end speed-up."""
    arms: dict[str, list[dict]] = {"auto": [], "fp32": []}
    for run in sorted(p for p in out.iterdir() if p.is_dir()):
        arm = run.name.split("-seed")[0]
        if arm in arms and (run / "wall_s").exists():
            r = precision_run(run, out / f"{run.name}.log")
            arms[arm].append(r)
            print(f"{run.name:14s} linear {r['linear']:.4f}  knn {r['knn']:.4f}  pretrain {r['pretrain_s']} s  "
                  f"end to end {r['wall_s']} s" + (f"  [{r['auto']}]" if r["auto"] else ""))
    if not (arms["auto"] and arms["fp32"]):
        return
    med = {arm: {k: statistics.median(r[k] for r in rows) for k in ("linear", "knn", "wall_s", "pretrain_s")}
           for arm, rows in arms.items()}
    for arm, m in med.items():
        print(f"median {arm:4s} ({len(arms[arm])} seeds): linear {m['linear']:.4f}  knn {m['knn']:.4f}  "
              f"pretrain {m['pretrain_s']:.0f} s  end to end {m['wall_s']:.0f} s")
    print(f"linear auto - fp32: {100 * (med['auto']['linear'] - med['fp32']['linear']):+.2f} points; "
          f"kNN {100 * (med['auto']['knn'] - med['fp32']['knn']):+.2f} points")
    print(f"speed-up of auto, end to end: {med['fp32']['wall_s'] / med['auto']['wall_s']:.2f}x; "
          f"pretraining: {med['fp32']['pretrain_s'] / med['auto']['pretrain_s']:.2f}x")


FIGURES = ("linear", "knn", "holdout_ce")


def read_run(run: Path) -> dict[str, float | None]:
    """linear top-1, kNN top-1 and hold-out cross-entropy (None where not recorded)."""
    out: dict[str, float | None] = dict.fromkeys(FIGURES)
    if (run / "result.json").exists():
        r = json.loads((run / "result.json").read_text())
        out["linear"], out["knn"] = r["linear"]["top1"], r["knn"]["top1"]
        l2 = r["linear"].get("l2")
    else:
        lin = json.loads((run / "linear.json").read_text()) if (run / "linear.json").exists() else {}
        knn = json.loads((run / "knn.json").read_text()) if (run / "knn.json").exists() else {}
        out["linear"], out["knn"], l2 = lin.get("top1"), knn.get("top1"), lin.get("l2")
    log = run.with_name(run.name + ".log")
    if l2 is not None and log.exists():
        found = re.findall(r"l2 (\S+): hold-out cross-entropy ([0-9.]+)", log.read_text())
        chosen = [float(ce) for l2_text, ce in found if math.isclose(float(l2_text), l2)]
        out["holdout_ce"] = chosen[-1] if chosen else None
    return out


def permutation_p(a: list[float], b: list[float], limit: int = 200_000) -> float | None:
    """Exact two-sided p-value of |mean(a) - mean(b)| over every split of the pooled runs."""
    pooled, k = a + b, len(a)
    if not a or not b or math.comb(len(pooled), k) > limit:
        return None
    observed = abs(statistics.fmean(a) - statistics.fmean(b))
    total, hits = sum(pooled), 0
    for idx in itertools.combinations(range(len(pooled)), k):
        s = sum(pooled[i] for i in idx)
        diff = abs(s / k - (total - s) / (len(pooled) - k))
        hits += diff >= observed - 1e-12
    return hits / math.comb(len(pooled), k)


def compare(specs: list[str]) -> None:
    """Groups of evaluated runs (LABEL=GLOB each): per-run figures, medians, and with two groups an exact
    permutation test per figure. A run's figures come from linear.json / knn.json or from result.json
    (benchmarks/other_library_reference.py); the hold-out cross-entropy at the chosen l2 from RUN_DIR.log."""
    groups: dict[str, dict[str, list[float]]] = {}
    print(f"{'run':40s} {'linear':>8s} {'kNN':>8s} {'hold-out CE':>12s}")
    for spec in specs:
        label, _, pattern = spec.partition("=")
        runs = sorted(Path(d) for d in glob.glob(pattern) if Path(d).is_dir())
        if not runs:
            raise SystemExit(f"{label}: no run directories match {pattern!r}")
        values: dict[str, list[float]] = {f: [] for f in FIGURES}
        for run in runs:
            r = read_run(run)
            cells = [f"{r[f]:.4f}" if r[f] is not None else "-" for f in FIGURES]
            print(f"{label + ': ' + run.name:40s} {cells[0]:>8s} {cells[1]:>8s} {cells[2]:>12s}")
            for f in FIGURES:
                if r[f] is not None:
                    values[f].append(float(r[f]))  # type: ignore[arg-type]
        groups[label] = values
    print()
    for label, values in groups.items():
        parts = []
        for f in FIGURES:
            v = values[f]
            if v:
                parts.append(f"{f} median {statistics.median(v):.4f} mean {statistics.fmean(v):.4f} "
                             f"range {min(v):.4f}-{max(v):.4f} (n {len(v)})")
        print(f"{label}: " + "; ".join(parts))
    if len(groups) == 2:
        (la, a), (lb, b) = groups.items()
        for f in FIGURES:
            pval = permutation_p(a[f], b[f])
            if pval is not None:
                diff = statistics.fmean(a[f]) - statistics.fmean(b[f])
                print(f"{f}: mean {la} - {lb} = {diff:+.4f}, exact permutation p (two-sided) = {pval:.3f}")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return str(value).replace("|", "\\|")


def results_markdown(paths: list[Path]) -> str:
    """Results JSON files as Markdown: each file's scalar facts, then each list of records as a table."""
    lines: list[str] = []
    for path in paths:
        data = json.loads(path.read_text())
        lines += [f"## {path.stem}", ""]
        if isinstance(data, dict):
            lines += [f"- {k}: {_cell(v)}" for k, v in data.items() if not isinstance(v, (list, dict))] + [""]
            tables = {k: v for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
        else:
            tables = {"rows": data} if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        for name, rows in tables.items():
            columns = [c for c in rows[0] if not isinstance(rows[0][c], (dict, list))][:9]
            lines += [f"{name}:", "", "| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
            lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |" for r in rows[:60]]
            if len(rows) > 60:
                lines.append(f"| ... {len(rows) - 60} more rows |" + " |" * (len(columns) - 1))
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description="the benchmarks' reporter")
    sub = p.add_subparsers(dest="what", required=True)
    sub.add_parser("run").add_argument("run", type=Path)
    sub.add_parser("curve").add_argument("run", type=Path)
    fl = sub.add_parser("few-labels")
    fl.add_argument("root", type=Path)
    fl.add_argument("--fractions", nargs="+", default=["0.01", "0.1", "1.0"])
    sub.add_parser("precision").add_argument("out", type=Path)
    sub.add_parser("compare").add_argument("groups", nargs="+", help="LABEL=GLOB of run directories")
    sub.add_parser("results").add_argument("files", nargs="*", type=Path)
    a = p.parse_args()
    if a.what == "run":
        run_summary(a.run)
    elif a.what == "curve":
        curve(a.run)
    elif a.what == "few-labels":
        few_labels(a.root, a.fractions)
    elif a.what == "precision":
        precision(a.out)
    elif a.what == "compare":
        compare(a.groups)
    else:
        print(results_markdown(a.files or sorted(RESULTS.glob("*.json"))))


if __name__ == "__main__":
    main()
