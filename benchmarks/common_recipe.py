"""End-to-end pretraining throughput: simclr vs the common recipe, side by side on this machine.

The common recipe, as public SimCLR implementations write it (``common_baseline.py``): torchvision's
``resnet18`` (ImageNet stem) with a 2-layer MLP head, PIL images through torchvision transforms
(RandomResizedCrop, flip, ColorJitter 0.8 x s, RandomGrayscale 0.2, ToTensor) in 2 DataLoader workers,
two views per image, NT-Xent, SGD momentum 0.9, fp32, NCHW. simclr: ``simclr pretrain`` with the same model size,
recipe and batch (its defaults: batched augmentation on the training device, channels_last, tiny-map
convolutions as matmuls). Both on Fashion-MNIST 28 px, batch 256, colour strength 0.5, no blur.

Each configuration runs ``--steps`` steps in a fresh process, alternately, ``--repeats`` times;
images/s is measured over the steps after the first ``--warmup`` (so start-up and worker spin-up are
left out) and the medians are printed with their ratio.

usage: python benchmarks/common_recipe.py [--steps 30] [--repeats 3] [--simclr-flags '--no-online-probe']
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = os.environ.get("DATA_DIR", "/usr/share/datasets/fashion-mnist")
LOG_EVERY = 5  # simclr's log interval here (its default is 10): --steps and --warmup must be multiples


def common_worker(steps: int, warmup: int) -> None:
    """The common recipe's training loop (``common_baseline.py``); prints images/s as JSON."""
    import torch
    from common_baseline import CommonPairs, CommonStep, common_loader, common_view
    from PIL import Image

    from simclr.data.sources import load_images

    images = load_images("fashion-mnist", "pretrain", DATA, None, 0, 28).images[:, 0].numpy()
    pairs = CommonPairs(len(images), lambda i: Image.fromarray(images[i]), common_view(28, s=0.5))
    loader = common_loader(pairs, 256, workers=2, pin=False)
    step = CommonStep("resnet18", torch.device("cpu"), "fp32", lr=0.06, tau=0.5)
    done, t0 = 0, 0.0
    for v1, v2 in loader:
        if done == warmup:
            t0 = time.perf_counter()
        step(v1, v2)
        done += 1
        if done == steps:
            break
    print(json.dumps({"images_per_s": (steps - warmup) * 256 / (time.perf_counter() - t0)}))


def run_common(steps: int, warmup: int) -> float:
    r = subprocess.run([sys.executable, __file__, "--common-worker", str(steps), str(warmup)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])["images_per_s"]


def run_simclr(steps: int, warmup: int, out: Path, extra: tuple[str, ...] = (), env: dict | None = None) -> float:
    """``simclr pretrain`` of the same recipe for ``steps`` steps in a fresh process (``env``: e.g. a PYTHONPATH
    naming another checkout's src/); images/s over the log intervals after ``warmup`` steps."""
    subprocess.run([sys.executable, "-m", "simclr", "pretrain", "--dataset", "fashion-mnist", "--data-dir", DATA,
                    "--out", str(out), "--arch", "resnet18", "--stem", "imagenet", "--image-size", "28",
                    "--batch-size", "256", "--max-steps", str(steps), "--epochs", "5", "--temperature", "0.5",
                    "--color-strength", "0.5", "--no-blur", "--optimizer", "sgd", "--base-lr", "0.06",
                    "--weight-decay", "5e-4", "--warmup-epochs", "0", "--device", "cpu",
                    "--log-every", str(LOG_EVERY), *extra], capture_output=True, check=True, env=env)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line]
    # images / time over the steps after warm-up, from the rates of the log intervals after it (each
    # interval is LOG_EVERY steps; a log step also computes the health signals, as in a real run)
    rows = [r for r in rows if r["step"] > warmup]
    return len(rows) * LOG_EVERY * 256 / sum(LOG_EVERY * 256 / r["images_per_s"] for r in rows)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--simclr-flags", default="", help="extra flags for simclr pretrain, e.g. '--no-online-probe'")
    args = p.parse_args()
    if args.steps % LOG_EVERY or args.warmup % LOG_EVERY or args.warmup >= args.steps:
        p.error(f"--steps and --warmup must be multiples of {LOG_EVERY}, with --warmup < --steps")
    ours, common = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            common.append(run_common(args.steps, args.warmup))
            ours.append(run_simclr(args.steps, args.warmup, Path(tmp) / f"run{i}",
                                   ("--precision", "fp32", *args.simclr_flags.split())))
            print(f"repeat {i}: common recipe {common[-1]:.1f} images/s | simclr {ours[-1]:.1f} images/s "
                  f"| ratio {ours[-1] / common[-1]:.2f}", flush=True)
    mo, mc = statistics.median(ours), statistics.median(common)
    print(f"median over {args.repeats}: common recipe {mc:.1f} images/s, simclr {mo:.1f} images/s, "
          f"ratio {mo / mc:.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--common-worker":
        common_worker(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
