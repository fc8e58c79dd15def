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


if __name__ == "__main__":
    main(Path(sys.argv[1]))
