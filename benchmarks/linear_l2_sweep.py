"""Linear evaluation of finished runs at every L2 penalty of the grid, to see how much the
penalty chosen on the hold-out moves the test figure.

For each run: features of the 60k train / 10k test images (cached as RUN/features.pt), then
for each penalty (strongest first, warm-started as in simclr.evaluate): the hold-out top-1 of the
fit on 90% of train (the selection signal), and the test top-1 of the refit on all of train.

usage: python benchmarks/linear_l2_sweep.py RUN_DIR [RUN_DIR ...] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from simclr import load_encoder
from simclr.data.sources import load_images
from simclr.evaluate import L2_GRID, _fit_logreg, extract_features, standardise, topk_accuracy


def features(run: Path, data_dir: str) -> tuple[torch.Tensor, ...]:
    cache = run / "features.pt"
    if cache.exists():
        return tuple(torch.load(cache, weights_only=True))
    encoder = load_encoder(run)
    size = int(encoder.image_size)
    out = []
    for split in ("train", "test"):
        images = load_images("fashion-mnist", split, data_dir, None, 0, size)
        out += list(extract_features(encoder, images, size, torch.device("cpu")))
    torch.save(out, cache)
    return tuple(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    grid = sorted(L2_GRID, reverse=True)
    print("| run | " + " | ".join(f"l2 {g:g}: hold-out / test" for g in grid) + " |")
    for run in map(Path, args.runs):
        xtr, ytr, xte, yte = features(run, args.data_dir)
        xtr, xte = standardise(xtr, xte)
        perm = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(0))
        n_val = len(xtr) // 10
        val, fit = perm[:n_val], perm[n_val:]
        cells, prev, full = [], None, None
        for l2 in grid:
            prev = _fit_logreg(xtr[fit], ytr[fit], 10, l2, 250, init=prev)
            hold = topk_accuracy(xtr[val] @ prev[0] + prev[1], ytr[val], (1,))["top1"]
            full = _fit_logreg(xtr, ytr, 10, l2, 1000, init=prev)
            test = topk_accuracy(xte @ full[0] + full[1], yte, (1,))["top1"]
            cells.append(f"{hold:.4f} / {test:.4f}")
        se = math.sqrt(0.86 * 0.14 / n_val)
        print(f"| {run.name} | " + " | ".join(cells) + f" |  (hold-out SE ~{se:.4f})", flush=True)


if __name__ == "__main__":
    main()
