"""Peak resident memory of one pretraining step at batch 4096, whole batch vs --chunk-size.

Each configuration runs ``simclr pretrain --max-steps 1`` in a fresh process (the issue #2
reference model: ResNet-18, ImageNet stem, 28 px, fp32) and reports that process's peak RSS
(``wait4``) and wall time. Fashion-MNIST from DATA_DIR or /usr/share/datasets/fashion-mnist,
``synthetic`` at 28 px otherwise.

usage: python benchmarks/chunk_memory.py [--batch-size 4096] [--chunks 256 1024]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(os.environ.get("DATA_DIR", "/usr/share/datasets/fashion-mnist"))


def run(batch: int, chunk: int | None, out: Path) -> tuple[float, float, float]:
    data = ["--dataset", "fashion-mnist", "--data-dir", str(DATA)] if DATA.is_dir() else ["--dataset", "synthetic"]
    cmd = [sys.executable, "-m", "simclr", "pretrain", *data, "--out", str(out), "--limit", str(batch),
           "--batch-size", str(batch), "--max-steps", "1", "--arch", "resnet18", "--stem", "imagenet",
           "--image-size", "28", "--optimizer", "sgd", "--base-lr", "0.06", "--temperature", "0.5",
           "--color-strength", "0.5", "--no-blur", "--device", "cpu", "--log-every", "1"]
    if chunk:
        cmd += ["--chunk-size", str(chunk)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read() if proc.stderr else ''}")
    loss = float([line for line in (out / "metrics.jsonl").read_text().splitlines() if line][-1]
                 .split('"loss": ')[1].split(",")[0])
    return usage.ru_maxrss / 2**20, wall, loss  # ru_maxrss is in KiB on Linux


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--chunks", type=int, nargs="+", default=[256])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for chunk in [None, *args.chunks]:
            rss, wall, loss = run(args.batch_size, chunk, Path(tmp) / f"c{chunk}")
            label = f"--chunk-size {chunk}" if chunk else "whole batch"
            print(f"batch {args.batch_size}, {label:18s}: peak RSS {rss:5.2f} GiB, one step {wall:5.1f} s "
                  f"(process wall time), loss {loss:.4f}", flush=True)


if __name__ == "__main__":
    main()
