"""How hard are the positives of each augmentation path? A trained network's NT-Xent on their views.

Two pipelines that draw views from the same distribution give a trained network the same loss on
the same images, up to sampling noise; a pipeline whose views keep more of the image (easier
positives) gives a lower one. For each of ``--batches`` batches of Fashion-MNIST train images, this
draws the two views of every image with simclr's device path (``SimCLRAugment``) and with
torchvision's transforms (what ``--augment-on workers`` runs, ``simclr.data.reference``; and, when
lightly is importable, lightly's ``SimCLRTransform``), feeds them to the model of RUN_DIR's
checkpoint in eval mode, and prints the mean loss of each path and the paired differences (same
images in each batch) with their standard errors. The augmentation settings are RUN_DIR's.

usage: python benchmarks/view_difficulty.py RUN_DIR [--batches 150]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
from PIL import Image

from simclr.augment import SimCLRAugment
from simclr.config import PretrainConfig, apply_overrides, load_yaml
from simclr.data.reference import reference_transform
from simclr.data.sources import load_images
from simclr.io import safe_load
from simclr.losses import nt_xent
from simclr.train.setup import build_network


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--batches", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    cfg = PretrainConfig()
    apply_overrides(cfg, load_yaml(args.run / "config.yaml"), "config")
    model = build_network(cfg)
    model.load_state_dict(safe_load(args.run / "checkpoint.pt")["model"])
    model.eval()
    size = cfg.data.image_size
    aug = cfg.augment.to_augment_config()
    device_path = SimCLRAugment(aug, size)
    torchvision_path = reference_transform(aug, size)
    paths = {"device": None, "torchvision": torchvision_path}
    try:
        from lightly.transforms import SimCLRTransform

        lightly = SimCLRTransform(input_size=size, cj_strength=aug.color_strength, gaussian_blur=0.0, normalize=None)
        paths["lightly"] = lambda img: lightly(img)[0]
    except ImportError:
        print("lightly is not importable: comparing the device path with torchvision's transforms only")
    images = load_images(cfg.data.dataset, "pretrain", cfg.data.data_dir, None, args.seed, size)
    g = torch.Generator().manual_seed(args.seed)
    losses: dict[str, list[float]] = {name: [] for name in paths}
    for b in range(args.batches):
        x = images.images[torch.randperm(len(images), generator=g)[: args.batch_size]]
        pil = [Image.fromarray(x[i].permute(1, 2, 0).squeeze(2).numpy()).convert("RGB") for i in range(len(x))]
        for name, transform in paths.items():
            if transform is None:
                v1, v2 = device_path(torch.cat([x, x]), torch.Generator().manual_seed(args.seed * 100_003 + b)).chunk(2)
            else:
                v1 = torch.stack([transform(img) for img in pil])
                v2 = torch.stack([transform(img) for img in pil])
            with torch.no_grad():
                losses[name].append(float(nt_xent(model(v1)[1], model(v2)[1], cfg.loss.temperature)[0]))
    n = args.batches
    for name, values in losses.items():
        se = statistics.stdev(values) / n**0.5
        print(f"{name:12s} mean loss {statistics.fmean(values):.4f} (se {se:.4f}, {n} batches)")
    for name in paths:
        if name != "torchvision":
            diff = [a - b for a, b in zip(losses[name], losses["torchvision"], strict=True)]
            print(f"{name} - torchvision, paired by batch: {statistics.fmean(diff):+.4f} "
                  f"(se {statistics.stdev(diff) / n ** 0.5:.4f})")


if __name__ == "__main__":
    main()
