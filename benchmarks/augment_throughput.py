"""Augmentation alone, per CPU core: the batched device path vs the PIL/torchvision reference path.

Both make SimCLR views (two per image) with the default pipeline at the given side: random resized
crop + flip, colour jitter (p 0.8, strength 1.0 at 224 px, 0.5 at 32 px), grayscale (p 0.2), and
Gaussian blur (p 0.5) at 224 px only (off at <= 32 px, as the defaults). Decoding is excluded from
both: the device path starts from a uint8 tensor batch, the PIL path from decoded PIL images
(``simclr.data.reference``, exactly what ``--augment-on workers`` runs in each worker).
One intra-op thread and no workers, so the figures are images/s per core.

usage: python benchmarks/augment_throughput.py [--sizes 32 224] [--batch 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision.transforms.v2.functional as TF

from simclr.augment import AugmentConfig, SimCLRAugment
from simclr.data.reference import reference_transform
from simclr.runtime import retain_freed_memory


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 224])
    p.add_argument("--batch", type=int, default=256, help="images per timed call (each gets 2 views)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--retain-freed-memory", action=argparse.BooleanOptionalAction, default=True,
                   help="glibc keeps freed buffers for reuse, as simclr pretrain does on a CPU (default on)")
    args = p.parse_args()
    if args.retain_freed_memory:
        retain_freed_memory()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, retain freed memory {args.retain_freed_memory}, "
          f"{args.batch} images x 2 views per call, "
          f"medians of {args.repeats} interleaved repeats")
    print("| output side | source side | device path (images/s/core) | PIL path (images/s/core) | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for size in args.sizes:
        src = size if size <= 32 else round(size * 8 / 7)  # ImageNet-like: crops from a larger image
        cfg = AugmentConfig(color_strength=0.5 if size <= 32 else 1.0, blur=size > 32)
        images = torch.randint(0, 256, (args.batch, 3, src, src), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(0))
        device_aug = SimCLRAugment(cfg, size)
        pil_aug = reference_transform(cfg, size)
        pils = [TF.to_pil_image(im) for im in images]
        g = torch.Generator().manual_seed(1)

        def device_path() -> None:
            device_aug(torch.cat([images, images]), g)  # noqa: B023

        def pil_path() -> None:
            for im in pils:  # noqa: B023
                pil_aug(im)  # noqa: B023
                pil_aug(im)  # noqa: B023

        rates: dict[str, list[float]] = {"device": [], "pil": []}
        device_path()
        pil_path()
        for _ in range(args.repeats):
            for name, fn in (("device", device_path), ("pil", pil_path)):
                t0 = time.perf_counter()
                fn()
                rates[name].append(args.batch / (time.perf_counter() - t0))
        dev, pil = statistics.median(rates["device"]), statistics.median(rates["pil"])
        print(f"| {size} | {src} | {dev:.0f} | {pil:.0f} | {dev / pil:.2f}x |")


if __name__ == "__main__":
    main()
