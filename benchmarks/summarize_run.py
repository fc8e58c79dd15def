"""Summarise a run directory: median throughput from metrics.jsonl and the eval JSON files.

usage: python benchmarks/summarize_run.py RUN_DIR
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main(run: Path) -> None:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    rates = [r["images_per_s"] for r in rows if r.get("images_per_s")]
    # the first log rows include start-up; quote the median over the run
    print(f"steps logged: {len(rows)}  last step {rows[-1]['step']}  last loss {rows[-1]['loss']:.4f}")
    if rates:
        print(f"images/s: median {statistics.median(rates):.1f}  min {min(rates):.1f}  "
              f"max {max(rates):.1f}")
    for name in ("linear", "knn", "linear-random", "knn-random"):
        f = run / f"{name}.json"
        if f.exists():
            d = json.loads(f.read_text())
            print(f"{name:14s} top1 {d['top1']:.4f}" + (f"  top5 {d['top5']:.4f}" if "top5" in d else ""))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
