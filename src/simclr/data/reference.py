"""The reference augmentation path: torchvision's per-image PIL transforms in DataLoader workers.

This is how most SimCLR implementations feed their model, and what ``--augment-on workers``
selects. It draws from the same distribution as the batched device path (``simclr.augment``),
which ``tests/data/test_reference.py`` checks op by op and parameter by parameter. It exists as
a baseline to measure against and as a fallback; the device path is the default because it is
faster on every machine measured (BENCHMARKS.md).

Randomness: each image's two views come from torch's global generator, seeded with
(seed, epoch, index) inside a ``fork_rng`` block, so an epoch's views do not depend on the number
of workers or on which worker handles which image, and the caller's generator is left untouched.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset
from torchvision import transforms as T

from simclr.augment import OPS, AugmentConfig, blur_kernel_size
from simclr.data.images import Images
from simclr.data.seeds import mix_seed
from simclr.errors import SimCLRError


def reference_transform(cfg: AugmentConfig, size: int) -> T.Compose:
    """torchvision's transforms for one view: PIL RGB image in, float (3, S, S) in [0, 1] out."""
    if cfg.brightness != "multiplicative" or cfg.contrast != "gray-mean":
        raise SimCLRError(
            "--augment-on workers uses torchvision's colour ops (multiplicative brightness, contrast "
            "toward the grayscale mean); the 'additive' / 'channel-mean' variants need --augment-on device"
        )
    if tuple(cfg.order) != OPS or cfg.identity_view:
        raise SimCLRError("--augment-on workers runs the paper's order on both views; augment.order and "
                          "augment.identity_view need --augment-on device")
    ops: list = []
    mode = T.InterpolationMode(cfg.crop_interpolation)
    if cfg.crop:
        ops.append(T.RandomResizedCrop(size, scale=cfg.crop_scale, ratio=cfg.crop_ratio, interpolation=mode))
    else:
        ops += [T.Resize(size, interpolation=mode), T.CenterCrop(size)]
    ops.append(T.RandomHorizontalFlip(cfg.flip_p))
    s = cfg.color_strength
    if s > 0 and cfg.color_p > 0:
        jitter = T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, min(0.5, 0.2 * s))
        ops.append(T.RandomApply([jitter], p=cfg.color_p))
    if cfg.grayscale_p > 0:
        ops.append(T.RandomGrayscale(cfg.grayscale_p))
    if cfg.blur and cfg.blur_p > 0 and blur_kernel_size(size) > 1:
        ops.append(T.RandomApply([T.GaussianBlur(blur_kernel_size(size), cfg.blur_sigma)], p=cfg.blur_p))
    ops.append(T.ToTensor())
    return T.Compose(ops)


class ReferencePairs(Dataset):
    """Two torchvision-augmented views (float, 3 x S x S) of each image, seeded per (epoch, index),
    and its label. Items are asked for by ``(epoch, index)`` keys, so workers that persist across epochs
    draw each epoch's views."""

    def __init__(self, images: Images, cfg: AugmentConfig, size: int, seed: int, rank: int = 0) -> None:
        self.images, self.seed, self.rank = images, seed, rank
        self.transform = reference_transform(cfg, size)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, int]:
        epoch, index = key
        img, label = self.images.load(index)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(mix_seed(self.seed, epoch, index, 3, self.rank))
            return self.transform(img), self.transform(img), label
