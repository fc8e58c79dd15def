"""What the augmentation ships to the device per batch: its draws' size and the host time to make them.

``SimCLRAugment.sample`` (every random draw, on the host) then ``pack`` (the one buffer that
``AugmentParams.to`` copies to a GPU), for ``--views`` views at each ``--sizes`` side, from images 1.5x
that side: bytes per batch and milliseconds (median of ``--repeats``). Run it in two checkouts
(``PYTHONPATH=<tree>/src``) to compare them.

usage: python benchmarks/augment_draws.py [--views 1024 8192] [--sizes 32 224] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from simclr.augment import AugmentConfig, SimCLRAugment, pack


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--views", type=int, nargs="+", default=[1024, 8192])
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 224])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    for size in args.sizes:
        aug = SimCLRAugment(AugmentConfig(color_strength=1.0, blur=size > 32), size)
        for n in args.views:
            times, nbytes = [], 0
            for r in range(args.repeats):
                t0 = time.perf_counter()
                packed, _ = pack(aug.sample(n, size * 3 // 2, size * 3 // 2, torch.Generator().manual_seed(r)).tensors)
                times.append(time.perf_counter() - t0)
                nbytes = packed.numel() * packed.element_size()
            print(f"{n} views at {size} px: {nbytes / 1e6:.2f} MB, {statistics.median(times) * 1e3:.1f} ms "
                  "to draw and pack (one thread)", flush=True)


if __name__ == "__main__":
    main()
