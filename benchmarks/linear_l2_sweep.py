"""Linear evaluation of finished runs at every L2 penalty of the grid, to see how much the
penalty chosen on the hold-out moves the test figure.

For each run: features of the 60k train / 10k test images (cached as RUN/features.pt), then
for each penalty (strongest first, warm-started as in simclr.eval.linear): the hold-out
cross-entropy (the selection signal) and top-1 of the converged fit on 90% of train, and the test
top-1 of the refit on all of train.

usage: python benchmarks/linear_l2_sweep.py RUN_DIR [RUN_DIR ...] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from simclr import load_encoder
from simclr.data.sources import load_images
from simclr.eval.features import extract_features
from simclr.eval.linear import L2_GRID, fit_logreg, holdout_split, standardise, topk_accuracy


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
    print("| run | " + " | ".join(f"l2 {g:g}: hold-out xent / top-1 / test top-1" for g in grid) + " |")
    for run in map(Path, args.runs):
        xtr, ytr, xte, yte = features(run, args.data_dir)
        xtr, xte = standardise(xtr, xte)
        val, fit = holdout_split(len(xtr), seed=0)
        cells, prev = [], None
        for l2 in grid:
            prev = fit_logreg(xtr[fit], ytr[fit], 10, l2, 1000, init=prev)
            logits = xtr[val] @ prev[0] + prev[1]
            xent = float(F.cross_entropy(logits, ytr[val]))
            hold = topk_accuracy(logits, ytr[val], (1,))["top1"]
            full = fit_logreg(xtr, ytr, 10, l2, 1000, init=prev)
            test = topk_accuracy(xte @ full[0] + full[1], yte, (1,))["top1"]
            cells.append(f"{xent:.4f} / {hold:.4f} / {test:.4f}")
        print(f"| {run.name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
