"""Achieved GFLOP/s of the training step against this machine's matmul peak, and where time goes.

For each model setting: counts the floating-point operations of one training step (forward +
NT-Xent + backward, with torch.utils.flop_counter; a multiply-add counts as 2), times whole real
steps of ``simclr pretrain`` (the loader's augmented batch + ``TrainStep``: forward, loss, backward,
finiteness guard, SGD step; ``simclr.train.setup``), measures the fp32 matmul peak in the same
run (a large square matmul), and prints the achieved rate as a fraction of that peak. With
``--profile`` it also prints torch.profiler's table of the operators that take the step's time.

usage: python benchmarks/step_profile.py [--settings imagenet:1.0 cifar:0.25 ...] [--batch-size 256]
       [--steps 3] [--repeats 3] [--profile]
A setting is STEM:WIDTH[:ARCH], e.g. ``imagenet:1.0`` is the issue #2 reference model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from throughput import Stepper, fake_fashion_mnist, reference_overrides
from torch.utils.flop_counter import FlopCounterMode

from simclr.runtime import retain_freed_memory
from simclr.train.setup import training_from


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n x n fp32 matmul, the best of ``repeats`` (the machine's attainable peak)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


class Setting:
    """One model setting's real training step (``simclr.train.setup.training_from``): the loader's batch
    (augmentation included) and ``TrainStep``, on in-memory Fashion-MNIST-sized data."""

    def __init__(self, spec: str, batch: int, size: int) -> None:
        parts = spec.split(":")
        stem, width = parts[0], float(parts[1])
        arch = parts[2] if len(parts) > 2 else "resnet18"
        self.name = spec
        overrides = reference_overrides("fp32", batch, size, True, False, "cpu")
        overrides.update({"model.stem": stem, "model.width_multiplier": width, "model.arch": arch})
        self.training = training_from(overrides, fake_fashion_mnist(4 * batch))
        self.model = self.training.model
        self.step = Stepper(self.training)

    def flops(self) -> int:
        """FLOPs of one forward + NT-Xent + backward of the method (a multiply-add counts 2)."""
        batch = next(self.training.loader.batches(0))
        with FlopCounterMode(display=False) as counter:
            self.training.method.training_step(batch).loss.backward()
        return counter.get_total_flops()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--settings", nargs="+", default=["imagenet:1.0"])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--profile", action="store_true", help="print the operator table of each setting")
    p.add_argument("--retain-freed-memory", action=argparse.BooleanOptionalAction, default=True,
                   help="glibc keeps freed buffers for reuse, as simclr pretrain does on a CPU (default on)")
    args = p.parse_args()
    if not args.retain_freed_memory:  # simclr keeps freed memory on a CPU unless told not to
        os.environ["SIMCLR_RETAIN_FREED_MEMORY"] = "0"
    retain_freed_memory()
    settings = [Setting(s, args.batch_size, args.image_size) for s in args.settings]
    flops = {s.name: s.flops() for s in settings}
    for s in settings:
        s.step()  # warm-up
    times: dict[str, list[float]] = {s.name: [] for s in settings}
    peaks = []
    for _ in range(args.repeats):
        peaks.append(matmul_peak())
        for s in settings:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                s.step()
            times[s.name].append((time.perf_counter() - t0) / args.steps)
    peak = statistics.median(peaks)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, retain freed memory "
          f"{args.retain_freed_memory}, batch {args.batch_size} "
          f"({2 * args.batch_size} views) at {args.image_size} px, {args.steps} steps x {args.repeats} repeats")
    print(f"fp32 matmul peak (2048^3, median of {args.repeats} bests): {peak:.1f} GFLOP/s")
    print("| setting | params (M) | GFLOP per step | s per step (median) | images/s | achieved GFLOP/s | of peak |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for s in settings:
        t = statistics.median(times[s.name])
        gf = flops[s.name] / 1e9
        params = sum(q.numel() for q in s.model.parameters()) / 1e6
        print(f"| {s.name} | {params:.2f} | {gf:.1f} | {t:.3f} | {args.batch_size / t:.1f} | "
              f"{gf / t:.1f} | {gf / t / peak:.1%} |")
    if args.profile:
        for s in settings:
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                s.step()
            print(f"\n## {s.name}: operators by self CPU time (one step)")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
