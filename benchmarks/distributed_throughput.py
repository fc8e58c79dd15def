"""2 gloo ranks x 1 thread vs 1 process x 2 threads, same global batch, on this machine.

Runs the issue #2 reference model (ResNet-18, ImageNet stem, 28 px, batch 256, SGD, fp32) for
``--steps`` steps each way through the real trainer, alternately ``--repeats`` times, and prints
the median images/s of each (the first ``--warmup`` steps of a run are left out), and of 2 ranks
with per-rank BN (``--no-global-bn``) to separate the cost of global BN. In the 2-rank global-BN
runs it also times the collectives simclr issues per step: the NT-Xent all-gather (forward and
backward) and the global-BN all-reduces (forward and backward), on rank 0. DDP's own gradient
all-reduce overlaps the backward and is not in those figures.

usage: python benchmarks/distributed_throughput.py [--steps 30] [--repeats 3]
       (Fashion-MNIST from DATA_DIR or /usr/share/datasets/fashion-mnist; synthetic otherwise)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(os.environ.get("DATA_DIR", "/usr/share/datasets/fashion-mnist"))


def pretrain_args(out: Path, steps: int) -> list[str]:
    data = ["--dataset", "fashion-mnist", "--data-dir", str(DATA)] if DATA.is_dir() else [
        "--dataset", "synthetic", "--image-size", "28"]
    return ["pretrain", *data, "--out", str(out), "--limit", str(256 * (steps + 1)), "--max-steps", str(steps),
            "--arch", "resnet18", "--stem", "imagenet", "--image-size", "28", "--batch-size", "256",
            "--optimizer", "sgd", "--base-lr", "0.06", "--weight-decay", "5e-4", "--warmup-epochs", "0",
            "--temperature", "0.5", "--color-strength", "0.5", "--no-blur", "--precision", "fp32",
            "--device", "cpu", "--log-every", "1"]


def rate(run: Path, warmup: int) -> float:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    return statistics.median(r["images_per_s"] for r in rows[warmup:])


def worker(argv: list[str]) -> None:
    """Runs under torchrun: the trainer with simclr's collectives timed."""
    import torch

    from simclr import distributed
    from simclr.cli import main

    spent: dict[str, float] = {"gather": 0.0, "bn": 0.0}
    calls: dict[str, int] = {"gather": 0, "bn": 0}

    def timed(fn, kind: str):  # noqa: ANN001, ANN202
        def inner(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            spent[kind] += time.perf_counter() - t0
            calls[kind] += 1
            return out

        return staticmethod(inner)

    for cls, kind in ((distributed._GatherWithGrad, "gather"), (distributed._AllReduceSumWithGrad, "bn")):
        cls.forward = timed(cls.forward, kind)
        cls.backward = timed(cls.backward, kind)
    torch.set_num_threads(1)
    code = main(argv)
    if distributed.context().is_main or int(os.environ.get("RANK", "0")) == 0:
        steps = int(argv[argv.index("--max-steps") + 1])
        print(json.dumps({"gather_ms_per_step": 1e3 * spent["gather"] / steps,
                          "bn_ms_per_step": 1e3 * spent["bn"] / steps,
                          "gather_calls": calls["gather"], "bn_calls": calls["bn"]}))
    sys.exit(code)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="simclr-dist-"))
    one, two, local, comm = [], [], [], []
    try:
        for i in range(args.repeats):
            run = tmp / f"one{i}"
            env = {**os.environ, "OMP_NUM_THREADS": "2"}
            subprocess.run([sys.executable, "-m", "simclr", *pretrain_args(run, args.steps)], check=True,
                           env=env, capture_output=True)
            one.append(rate(run, args.warmup))
            run = tmp / f"two{i}"
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                "--nproc_per_node=2", __file__, "--worker", *pretrain_args(run, args.steps)],
                               check=True, env=env, capture_output=True, text=True)
            two.append(rate(run, args.warmup))
            comm.append(json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1]))
            run = tmp / f"local{i}"
            subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                            "-m", "simclr", *pretrain_args(run, args.steps), "--no-global-bn"],
                           check=True, env=env, capture_output=True)
            local.append(rate(run, args.warmup))
            print(f"repeat {i}: 1 process x 2 threads {one[-1]:.1f} img/s | 2 ranks x 1 thread {two[-1]:.1f} "
                  f"img/s (per-rank BN {local[-1]:.1f}) | gather {comm[-1]['gather_ms_per_step']:.1f} ms/step, "
                  f"global BN {comm[-1]['bn_ms_per_step']:.1f} ms/step", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"median over {args.repeats}: 1 process x 2 threads {statistics.median(one):.1f} img/s, "
          f"2 ranks x 1 thread {statistics.median(two):.1f} img/s "
          f"(ratio {statistics.median(two) / statistics.median(one):.2f}; per-rank BN "
          f"{statistics.median(local):.1f}); per step on rank 0: gather "
          f"{statistics.median(c['gather_ms_per_step'] for c in comm):.1f} ms "
          f"({comm[0]['gather_calls'] // args.steps} calls), global BN "
          f"{statistics.median(c['bn_ms_per_step'] for c in comm):.1f} ms "
          f"({comm[0]['bn_calls'] // args.steps} calls)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
    else:
        main()
