"""Linear eval on a Fashion-MNIST subset: a trained run against untrained baselines.

Compares the trained encoder of RUN_DIR with the same architecture untrained, both with every BN
gamma at 1 (what `--random-init` uses) and with the zero-init last-BN gammas training starts from.

usage: python benchmarks/random_init_subset.py RUN_DIR [--train 4000] [--test 2000]
"""

from __future__ import annotations

import argparse

import torch

from simclr.data.sources import load_images
from simclr.eval import extract_features, linear_eval
from simclr.models.encoder import ResNet
from simclr.models.weights import load_encoder


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--train", type=int, default=4000)
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    args = p.parse_args()
    trained = load_encoder(args.run)
    torch.manual_seed(0)
    zero_gamma = ResNet(trained.arch, trained.width_multiplier, trained.stem_type).eval()
    torch.manual_seed(0)
    gamma_one = ResNet(trained.arch, trained.width_multiplier, trained.stem_type, zero_init_residual=False).eval()
    tr = load_images("fashion-mnist", "train", args.data_dir, args.train)
    te = load_images("fashion-mnist", "test", args.data_dir, args.test)
    cpu = torch.device("cpu")
    for name, enc in (("trained", trained), ("random, gamma 1", gamma_one), ("random, zero-init gamma", zero_gamma)):
        xtr, ytr = extract_features(enc, tr, 28, cpu)
        xte, yte = extract_features(enc, te, 28, cpu)
        r = linear_eval(xtr, ytr, xte, yte)
        print(f"{name:24s} linear top1 {r['top1']:.4f}  top5 {r['top5']:.4f}  (train top1 {r['train_top1']:.4f})")


if __name__ == "__main__":
    main()
