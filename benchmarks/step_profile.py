"""Achieved GFLOP/s of the training step against this machine's matmul peak, and where time goes.

For each model setting: counts the floating-point operations of one training step (forward +
NT-Xent + backward, with torch.utils.flop_counter; a multiply-add counts as 2), times whole steps
(augmentation + forward + loss + backward + SGD step), measures the fp32 matmul peak in the same
run (a large square matmul), and prints the achieved rate as a fraction of that peak. With
``--profile`` it also prints torch.profiler's table of the operators that take the step's time.

usage: python benchmarks/step_profile.py [--settings imagenet:1.0 cifar:0.25 ...] [--batch-size 256]
       [--steps 3] [--repeats 3] [--profile]
A setting is STEM:WIDTH[:ARCH], e.g. ``imagenet:1.0`` is the issue #2 reference model.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from simclr.augment import AugmentConfig, SimCLRAugment
from simclr.cpu_memory import retain_freed_memory
from simclr.loss import nt_xent
from simclr.models import build_model
from simclr.optim import build_optimizer


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
    def __init__(self, spec: str, batch: int, size: int) -> None:
        parts = spec.split(":")
        self.stem, self.width = parts[0], float(parts[1])
        self.arch = parts[2] if len(parts) > 2 else "resnet18"
        self.name = spec
        torch.manual_seed(0)
        self.model = build_model(self.arch, self.width, self.stem, size).train()
        self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = build_optimizer("sgd", self.model, 0.06, 5e-4)
        self.aug = SimCLRAugment(AugmentConfig(color_strength=0.5, blur=False), size)
        self.images = torch.randint(0, 256, (batch, 1, 28, 28), dtype=torch.uint8)
        self.g = torch.Generator().manual_seed(0)

    def views(self) -> torch.Tensor:
        x = torch.cat([self.aug(self.images, self.g), self.aug(self.images, self.g)])
        return x.contiguous(memory_format=torch.channels_last)

    def forward_backward(self, x: torch.Tensor) -> None:
        _, z = self.model(x)
        loss, _ = nt_xent(*z.chunk(2), 0.5)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()

    def step(self) -> None:
        self.forward_backward(self.views())
        self.opt.step()

    def flops(self) -> int:
        x = self.views()
        with FlopCounterMode(display=False) as counter:
            self.forward_backward(x)
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
    if args.retain_freed_memory:
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
