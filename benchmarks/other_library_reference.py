"""Issue #2's reference run trained by the other library's own code, judged by simclr's evaluation.

Issue #2 quotes one run of "a widely used SSL library's SimCLR recipe" (linear top-1 0.8575, kNN
0.785) as the figure to reach. Its recipe (SGD lr 0.06, momentum 0.9, weight decay 5e-4, cosine over
the epochs, NT-Xent tau 0.5, colour strength 0.5, no blur, kNN k 200 / t 0.1) is lightly's SimCLR
benchmark recipe. This script trains it with lightly's own modules (``SimCLRTransform``,
``SimCLRProjectionHead``, ``NTXentLoss``) on torchvision's ``resnet18`` (ImageNet stem, fc removed),
PIL images through a 2-worker DataLoader, the cosine stepped once per epoch as Lightning does, fp32;
then extracts h from un-augmented images (ImageNet-normalised, as lightly's eval transform does)
and runs ``simclr.eval.linear_eval`` and ``knn_eval`` on them: the very protocol our
``simclr linear-eval`` / ``simclr knn`` use. Several seeds then say how far one run of the other
library's recipe is from its own median, on this machine.

lightly is not a dependency of simclr; install it beside the venv, without its dependencies:
    pip install --no-deps --target /tmp/lightly_pkg lightly lightning-utilities
    PYTHONPATH=/tmp/lightly_pkg python benchmarks/other_library_reference.py --out runs/lightly-seed0 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn

from simclr.data.sources import load_images
from simclr.eval import extract_features, knn_eval, linear_eval

DATA = os.environ.get("DATA_DIR", "/usr/share/datasets/fashion-mnist")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Pairs(torch.utils.data.Dataset):
    """Fashion-MNIST train images as RGB PIL images, each returned as two lightly SimCLR views."""

    def __init__(self, images: np.ndarray, transform) -> None:  # noqa: ANN001
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):  # noqa: ANN204
        return self.transform(Image.fromarray(self.images[i]).convert("RGB"))


class Encoder(nn.Module):
    """Float RGB in [0, 1] -> ImageNet normalisation -> the trained backbone -> h (B, 512)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone((x - self.mean) / self.std).flatten(1)


def seed_worker(worker_id: int) -> None:
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def main() -> None:
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
    from lightly.transforms import SimCLRTransform

    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--max-steps", type=int, default=None, help="stop early (smoke test)")
    p.add_argument("--limit", type=int, default=None, help="first N train images only (smoke test)")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)

    train = load_images("fashion-mnist", "pretrain", DATA, args.limit, args.seed, 28)
    transform = SimCLRTransform(input_size=28, cj_strength=0.5, gaussian_blur=0.0)
    loader = torch.utils.data.DataLoader(
        Pairs(train.images[:, 0].numpy(), transform), batch_size=256, shuffle=True, num_workers=2,
        drop_last=True, persistent_workers=True, worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(args.seed))
    resnet = torchvision.models.resnet18()
    backbone = nn.Sequential(*list(resnet.children())[:-1])
    head = SimCLRProjectionHead(512, 512, 128)
    criterion = NTXentLoss(temperature=0.5)
    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.06, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)

    log = (args.out / "metrics.jsonl").open("w")
    step, t_start = 0, time.perf_counter()
    backbone.train()
    head.train()
    for epoch in range(args.epochs):
        t0, seen = time.perf_counter(), 0
        for x0, x1 in loader:
            z0 = head(backbone(x0).flatten(1))
            z1 = head(backbone(x1).flatten(1))
            loss = criterion(z0, z1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            seen += 256
            if step % 10 == 0:
                rate = seen / (time.perf_counter() - t0)
                row = {"step": step, "epoch": epoch, "loss": loss.item(), "lr": sched.get_last_lr()[0],
                       "images_per_s": rate}
                log.write(json.dumps(row) + "\n")
                log.flush()
                print(f"epoch {epoch} step {step} loss {loss.item():.4f} {rate:.1f} images/s", flush=True)
            if args.max_steps and step >= args.max_steps:
                break
        sched.step()
        if args.max_steps and step >= args.max_steps:
            break
    wall = time.perf_counter() - t_start
    encoder = Encoder(backbone).eval()
    torch.save(encoder.state_dict(), args.out / "encoder_state.pt")

    device = torch.device("cpu")
    test = load_images("fashion-mnist", "test", DATA, args.limit, args.seed, 28)
    xtr, ytr = extract_features(encoder, load_images("fashion-mnist", "train", DATA, args.limit, args.seed, 28),
                                28, device)
    xte, yte = extract_features(encoder, test, 28, device)
    lin = linear_eval(xtr, ytr, xte, yte, log=lambda m: print(m, flush=True))
    knn = knn_eval(xtr, ytr, xte, yte)
    result = {"seed": args.seed, "steps": step, "pretrain_wall_s": wall,
              "images_per_s": step * 256 / wall, "linear": lin, "knn": knn}
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
