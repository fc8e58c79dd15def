"""Training steps per second of each backbone family, at one image size, on this machine.

Each backbone runs the real step of ``simclr pretrain`` (``simclr.train.setup.training_from``: the loader's
batch with the augmentation on the device, forward, NT-Xent, backward, the finiteness guard, the
optimiser its recipe picks: LARS for convolutional nets, AdamW for transformers) on in-memory
Fashion-MNIST-sized images (random pixels: speed does not depend on them), after one warm-up step;
backbones are interleaved over ``--repeats`` rounds and the median is printed, with the parameter count.

usage: python benchmarks/backbone_speed.py [--size 32] [--batch-size 128] [--steps 3] [--repeats 3]
       [--archs resnet18 torchvision/resnet18 ...] [--precision fp32]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time

import torch

from simclr.data.images import ArrayImages
from simclr.train.setup import training_from

# (arch, backbone_kwargs) at 32 px: a ViT needs patches that tile the image
DEFAULT = [
    ("resnet18", {}), ("torchvision/resnet18", {}), ("timm/resnet18", {}), ("torchvision/convnext_tiny", {}),
    ("timm/convnext_atto", {}), ("timm/vit_tiny_patch16_224", {"patch_size": 4}), ("torchvision/vit_b_16", {}),
    ("torchvision/efficientnet_b0", {}), ("torchvision/mobilenet_v3_small", {}),
]


def images(n: int, size: int) -> ArrayImages:
    g = torch.Generator().manual_seed(0)
    return ArrayImages(torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=g),
                       torch.randint(0, 10, (n,), generator=g), [str(i) for i in range(10)])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--archs", nargs="+", help="arch names (default: one or two of every family)")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()
    archs = [(a, dict(DEFAULT).get(a, {})) for a in args.archs] if args.archs else DEFAULT
    data = images(args.batch_size * (args.steps + 1) * 2, args.size)
    runs = {}
    for arch, kwargs in archs:
        overrides = {"data.dataset": "fashion-mnist", "data.image_size": args.size, "model.arch": arch,
                     "model.stem": "imagenet", "model.backbone_kwargs": kwargs or None,
                     "train.batch_size": args.batch_size,
                     "train.precision": args.precision, "train.device": "cpu", "train.epochs": 100,
                     "augment.color_strength": 0.5, "augment.blur": False, "monitor.online_probe": False}
        training = training_from(overrides, data)
        batches = itertools.chain.from_iterable(training.loader.batches(e) for e in itertools.count())
        counter = itertools.count()
        training.step(next(batches), next(counter))  # warm-up
        runs[arch] = (training, batches, counter)
    rates: dict[str, list[float]] = {a: [] for a, _ in archs}
    for r in range(args.repeats):
        for arch, _ in archs:
            training, batches, counter = runs[arch]
            t0 = time.perf_counter()
            for _ in range(args.steps):
                training.step(next(batches), next(counter))
            rates[arch].append(args.steps / (time.perf_counter() - t0))
        print(f"round {r}: " + ", ".join(f"{a} {rates[a][-1]:.2f}" for a, _ in archs), flush=True)
    out = {}
    for arch, _ in archs:
        training = runs[arch][0]
        params = sum(p.numel() for p in training.model.encoder.parameters()) / 1e6
        med = statistics.median(rates[arch])
        out[arch] = {"steps_per_s": med, "images_per_s": med * args.batch_size, "params_m": params,
                     "feature_dim": training.model.encoder.feature_dim, "optimizer": training.cfg.optim.optimizer}
        print(f"{arch}: {med:.2f} steps/s ({med * args.batch_size:.0f} images/s), {params:.1f} M parameters, "
              f"h {out[arch]['feature_dim']}, {out[arch]['optimizer']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": args.size, "batch": args.batch_size, "precision": args.precision, "backbones": out}, f,
                      indent=2)


if __name__ == "__main__":
    main()
