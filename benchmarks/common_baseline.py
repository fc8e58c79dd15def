"""The common recipe: SimCLR as public implementations write it, the baseline simclr is timed against.

torchvision's ResNet (ImageNet stem) with a 2-layer MLP head (dim -> dim -> 128); each view made per
image by torchvision's PIL transforms (RandomResizedCrop, flip, ColorJitter 0.8 s with p 0.8,
RandomGrayscale 0.2, Gaussian blur p 0.5 where asked, ToTensor) in DataLoader workers; NT-Xent on the
concatenated views; SGD with momentum; autocast at the precision asked; the default NCHW layout. It
imports nothing of simclr: it is what a user of another implementation runs.

Used by ``benchmarks/common_recipe.py`` (CPU, Fashion-MNIST) and ``benchmarks/gpu_check.py`` (any device).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch import nn
from torchvision import transforms as T


def common_model(arch: str = "resnet18") -> nn.Module:
    """torchvision's ``arch`` with its classifier replaced by the 2-layer MLP head (dim -> dim -> 128)."""
    model = getattr(torchvision.models, arch)()
    dim = model.fc.in_features
    model.fc = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 128))
    return model


def common_view(size: int, s: float = 0.5, blur: bool = False) -> T.Compose:
    """One SimCLR view of a PIL image, per image, as torchvision's transforms make it."""
    ops = [T.RandomResizedCrop(size), T.RandomHorizontalFlip(),
           T.RandomApply([T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8), T.RandomGrayscale(p=0.2)]
    if blur:
        k = int(0.1 * size) // 2 * 2 + 1
        ops.append(T.RandomApply([T.GaussianBlur(k, (0.1, 2.0))], p=0.5))
    ops.append(T.ToTensor())
    return T.Compose(ops)


class CommonPairs(torch.utils.data.Dataset):
    """Two views of each image: ``load(i)`` gives the PIL image (an array in memory, a file on disk)."""

    def __init__(self, n: int, load: Callable[[int], Image.Image], view: T.Compose) -> None:
        self.n, self.load, self.view = n, load, view

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.load(i).convert("RGB")
        return self.view(img), self.view(img)


def common_loader(pairs: torch.utils.data.Dataset, batch: int, workers: int, pin: bool) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(pairs, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                                       pin_memory=pin, persistent_workers=workers > 0)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float = 0.5) -> torch.Tensor:
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    logits = (z @ z.t() / tau).fill_diagonal_(float("-inf"))
    targets = (torch.arange(2 * n, device=z.device) + n) % (2 * n)
    return F.cross_entropy(logits, targets)


class CommonStep:
    """One training step of the common recipe on ``device`` at ``precision`` (fp32, bf16, fp16)."""

    def __init__(self, arch: str, device: torch.device, precision: str = "fp32", lr: float = 0.06,
                 tau: float = 0.5) -> None:
        self.device, self.tau = device, tau
        self.model = common_model(arch).to(device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    def __call__(self, v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
        v1 = v1.to(self.device, non_blocking=True)
        v2 = v2.to(self.device, non_blocking=True)
        cast = (torch.autocast(self.device.type, dtype=self.dtype) if self.dtype is not None
                else contextlib.nullcontext())
        with cast:
            z1, z2 = self.model(torch.cat([v1, v2])).chunk(2)
            loss = nt_xent(z1.float(), z2.float(), self.tau)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        return loss.detach()


def forever(loader: Sequence | torch.utils.data.DataLoader) -> Iterator:
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


__all__ = ["CommonPairs", "CommonStep", "common_loader", "common_model", "common_view", "forever", "nt_xent"]
