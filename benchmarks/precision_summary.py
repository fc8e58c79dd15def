"""Summarise benchmarks/precision_auto_vs_fp32.sh: per run, the precision ``auto`` chose and why, wall
times, linear / kNN top-1; then each arm's medians, their difference and the end-to-end speed-up.

usage: python benchmarks/precision_summary.py OUT_DIR
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path


def read_run(run: Path, log: Path) -> dict:
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


def main(out: Path) -> None:
    arms: dict[str, list[dict]] = {"auto": [], "fp32": []}
    for run in sorted(p for p in out.iterdir() if p.is_dir()):
        arm = run.name.split("-seed")[0]
        if arm in arms and (run / "wall_s").exists():
            r = read_run(run, out / f"{run.name}.log")
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


if __name__ == "__main__":
    main(Path(sys.argv[1]))
