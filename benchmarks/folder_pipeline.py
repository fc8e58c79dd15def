"""The data path alone at 224 px, from real photos on disk: simclr's folder loader against the common recipe.

Photos: scikit-image's sample photographs (astronaut, coffee, chelsea, rocket, immunohistochemistry,
hubble_deep_field, retina; ``pip install scikit-image``; random smooth pictures where it is missing), cut
at random and resized into JPEGs (quality 90) of two kinds: ImageNet-sized (375-500 px on the short
side) and phone-sized (``--phone-side``, 3000 px: a 12 MP photo's short side). For each kind, alternated
``--repeats`` times: images/s of two-view batches ready for the step:

- ``simclr``: ``PretrainLoader`` over ``FolderImages`` (decode, crop + resize in ``--workers`` loader
  workers, then flip, colour, grayscale and blur batched on the CPU), the defaults of a folder run;
- ``simclr-shards``: the same, reading the same JPEGs from WebDataset shards (64 a shard);
- ``common``: torchvision ``ImageFolder`` + the SimCLR PIL transforms (RandomResizedCrop 224, bilinear as
  torchvision's default; flip, colour jitter 0.8 / 0.8 / 0.8 / 0.2 with p 0.8, grayscale p 0.2, Gaussian
  blur p 0.5, ToTensor) in a DataLoader with the same workers.

usage: python benchmarks/folder_pipeline.py [--images 384] [--phone-images 96] [--batch-size 64] [--workers 2]
       [--batches 4] [--repeats 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common_baseline import CommonPairs, common_loader, common_view  # noqa: E402

from simclr.augment import AugmentConfig  # noqa: E402
from simclr.data.folder import FolderImages  # noqa: E402
from simclr.data.loaders import PretrainLoader  # noqa: E402

try:  # the shards arrived with issue #31: an older checkout (--before runs of this script) has none
    from simclr.data.shards import ShardImages, write_shards
except ImportError:
    ShardImages = write_shards = None  # type: ignore[assignment,misc]

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")


def photos() -> list[np.ndarray]:
    try:
        import skimage.data

        return [getattr(skimage.data, name)() for name in PHOTOS]
    except ImportError:
        rng = np.random.default_rng(0)
        return [np.asarray(Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((640, 480),
                                                                                                   Image.BICUBIC))
                for _ in PHOTOS]


def make_jpegs(root: Path, n: int, short: tuple[int, int], seed: int) -> Path:
    """``n`` JPEGs in 8 class folders: a random cut (half to all of a sample photo), resized to a short side
    drawn from ``short``, 4:3 or 3:4."""
    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(p).convert("RGB") for p in photos()]
    for i in range(n):
        src = sources[i % len(sources)]
        w, h = src.size
        cw, ch = int(w * rng.uniform(0.5, 1)), int(h * rng.uniform(0.5, 1))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        side = int(rng.integers(short[0], short[1] + 1))
        size = (side * 4 // 3, side) if i % 2 else (side, side * 4 // 3)
        folder = root / f"class{i % 8}"
        folder.mkdir(parents=True, exist_ok=True)
        src.crop((x, y, x + cw, y + ch)).resize(size, Image.BICUBIC).save(folder / f"{i:05d}.jpg", quality=90)
    return root


def simclr_rate(root: Path, batch: int, workers: int, batches: int, shards: str | None = None) -> float:
    images = FolderImages(root) if shards is None else ShardImages(shards)
    aug = AugmentConfig(crop_scale=(0.08, 1.0), color_strength=1.0, blur=True)
    loader = PretrainLoader(images, batch, aug, 224, 0, torch.device("cpu"), workers)
    it = itertools.chain.from_iterable(loader.batches(e) for e in itertools.count())
    next(it)  # workers started, first batch
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - start)


def common_rate(root: Path, batch: int, workers: int, batches: int) -> float:
    from torchvision.datasets import ImageFolder

    folder = ImageFolder(str(root))
    pairs = CommonPairs(len(folder), lambda i: folder.loader(folder.samples[i][0]), common_view(224, 1.0, blur=True))
    it = itertools.chain.from_iterable(common_loader(pairs, batch, workers, pin=False) for _ in itertools.count())
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=384)
    p.add_argument("--phone-images", type=int, default=96)
    p.add_argument("--phone-side", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--kinds", nargs="+", default=["imagenet", "phone"])
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in a.kinds:
            n, short = (a.images, (375, 500)) if kind == "imagenet" else (a.phone_images, (a.phone_side,) * 2)
            start = time.perf_counter()
            root = make_jpegs(Path(tmp) / kind, n, short, seed=0)
            mb = sum(f.stat().st_size for f in root.rglob("*.jpg")) / n / 1e6
            print(f"{kind}: {n} JPEGs, short side {short[0]}-{short[1]} px, {mb:.2f} MB each "
                  f"({time.perf_counter() - start:.0f} s to make)", flush=True)
            rates: dict[str, list[float]] = {"simclr": [], "common": []}
            pattern = None
            if write_shards is not None:
                images = FolderImages(root)
                written = write_shards(((images.paths[i], int(images.labels[i]), "") for i in range(len(images))),
                                       Path(tmp) / f"{kind}-shards", 64)
                pattern = f"{Path(tmp) / f'{kind}-shards'}/shard-{{000000..{len(written) - 1:06d}}}.tar"
                rates["simclr-shards"] = []
            for r in range(a.repeats):
                names = list(rates)
                for name in names if r % 2 == 0 else reversed(names):
                    if name == "common":
                        rate = common_rate(root, a.batch_size, a.workers, a.batches)
                    else:
                        rate = simclr_rate(root, a.batch_size, a.workers, a.batches,
                                           pattern if name == "simclr-shards" else None)
                    rates[name].append(rate)
                    print(f"  repeat {r} {name}: {rate:.1f} images/s", flush=True)
            ours, common = (statistics.median(rates[k]) for k in ("simclr", "common"))
            print(f"{kind}: simclr {ours:.1f}, common {common:.1f} images/s (medians): {ours / common:.2f}x",
                  flush=True)
            rows.append({"kind": kind, "images": n, "short_side": list(short), "mean_file_mb": mb,
                         "images_per_s": rates, "medians": {k: statistics.median(v) for k, v in rates.items()},
                         "ratio": ours / common})
    if a.json:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parents[1]).stdout.strip()
        a.json.write_text(json.dumps({"benchmark": "folder_pipeline", "command": " ".join(sys.argv), "commit": commit,
                                      "date": time.strftime("%Y-%m-%d"), "batch_size": a.batch_size,
                                      "workers": a.workers, "size": 224, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
