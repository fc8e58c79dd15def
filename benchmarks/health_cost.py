"""Cost of the health signals (``simclr.train.health.batch_health``) per log step, on the CPU.

They run once per log step (every ``--log-every`` steps, 10 by default) on the batch's h (2N, D)
and z (N, d) each: this prints the median time of one call for the shapes of common settings, to
set against a training step's time (BENCHMARKS.md).

usage: python benchmarks/health_cost.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from simclr.train.health import batch_health

SHAPES = {  # name: (N images per batch, dim h, dim z)
    "ResNet-18, batch 256 (issue #2 reference)": (256, 512, 128),
    "ResNet-18 x0.25, batch 256 (quickstart)": (256, 128, 128),
    "ResNet-50, batch 1024": (1024, 2048, 128),
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, (n, dh, dz) in SHAPES.items():
        g = torch.Generator().manual_seed(0)
        h = torch.randn(2 * n, dh, generator=g)
        z1, z2 = torch.randn(n, dz, generator=g), torch.randn(n, dz, generator=g)
        batch_health(h, z1, z2)  # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            batch_health(h, z1, z2)
            times.append(time.perf_counter() - t0)
        print(f"{name}: h {tuple(h.shape)}, z 2 x {tuple(z1.shape)}: median {statistics.median(times) * 1e3:.1f} ms "
              f"(min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f}) over {args.repeats}")


if __name__ == "__main__":
    main()
