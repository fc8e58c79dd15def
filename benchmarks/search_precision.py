"""Precision@10 of `simclr search` on Fashion-MNIST: the 10k test images as queries, the 60k train
images as the gallery; the fraction of each query's 10 nearest neighbours (cosine) with its label.

For a trained encoder, the same architecture untrained (standard init, BN gamma 1), and raw pixels.

usage: python benchmarks/search_precision.py RUN_DIR [--data-dir /usr/share/datasets/fashion-mnist]
"""

from __future__ import annotations

import argparse

import torch

from simclr import Searcher, embed, load_encoder
from simclr.data.sources import load_images
from simclr.models.encoder import ResNet
from simclr.use.embeddings import Embeddings
from simclr.use.search import precision_at_k


def precision(gallery: torch.Tensor, gl: torch.Tensor, queries: torch.Tensor, ql: torch.Tensor) -> float:
    g = Embeddings(gallery.numpy(), [""] * len(gallery), gl.numpy())
    hits = Searcher(g, method="exact").search(queries, k=10)
    return precision_at_k(hits, ql.numpy())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    args = p.parse_args()
    train = load_images("fashion-mnist", "train", args.data_dir)
    test = load_images("fashion-mnist", "test", args.data_dir)
    trained = load_encoder(args.run)
    torch.manual_seed(0)
    random = ResNet(trained.arch, trained.width_multiplier, trained.stem_type, zero_init_residual=False).eval()
    rows = {}
    for name, enc in (("trained encoder (h)", trained), ("random init, same architecture (h)", random)):
        rows[name] = precision(embed(enc, train.images), train.labels, embed(enc, test.images), test.labels)
    raw = lambda x: x.float().flatten(1) / 255  # noqa: E731
    rows["raw pixels"] = precision(raw(train.images), train.labels, raw(test.images), test.labels)
    print(f"Fashion-MNIST precision@10 (10k test queries, 60k train gallery, cosine), encoder {args.run}")
    print("| representation | precision@10 |")
    print("| --- | --- |")
    for name, v in rows.items():
        print(f"| {name} | {v:.4f} |")


if __name__ == "__main__":
    main()
