"""Accuracy against minutes of pretraining, from a run made with --save-every-epoch and the
linear-epochE.json files that benchmarks/fmnist_fast.sh writes.

usage: python benchmarks/summarize_curve.py RUN_DIR
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main(run: Path) -> None:
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


if __name__ == "__main__":
    main(Path(sys.argv[1]))
