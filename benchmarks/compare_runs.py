"""Compare groups of evaluated runs: per-run figures, medians, and an exact permutation test.

Each group is LABEL=PATTERN, PATTERN a glob of run directories. A run's figures come from
``linear.json`` / ``knn.json`` (``simclr linear-eval`` / ``simclr knn --out``) or from
``result.json`` (``benchmarks/other_library_reference.py``); the hold-out cross-entropy at the
chosen l2 from the log beside the run (``RUN_DIR.log``) when there is one. With two groups, the
exact permutation test says how often a random relabelling of the pooled runs separates the
group means at least as much as observed (two-sided), for each figure.

usage:
    python benchmarks/compare_runs.py "lightly=runs/lightly-seed*" "simclr=runs/match-all-seed[0-9]"
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("groups", nargs="+", help="LABEL=GLOB of run directories")
    args = p.parse_args()
    groups: dict[str, dict[str, list[float]]] = {}
    print(f"{'run':40s} {'linear':>8s} {'kNN':>8s} {'hold-out CE':>12s}")
    for spec in args.groups:
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


if __name__ == "__main__":
    main()
