"""Batches for pretraining (two augmented views) and for evaluation (un-augmented images).

Randomness is a pure function of (seed, epoch, batch): the shuffle order of an epoch comes
from a generator seeded with (seed, epoch), the augmentation of a batch from one seeded with
(seed, epoch, batch index), and a folder image's crop from (seed, epoch, image index). So a
run resumed from a checkpoint sees exactly the data an uninterrupted run would have seen.

In-memory datasets are augmented as whole batches on the training device. Folder datasets
are decoded, cropped and resized (PIL, antialiased) in DataLoader workers, which hand uint8
crops to the same batched colour / grayscale / blur ops on the device. With
``augment_on="workers"`` (``--augment-on workers``) every dataset instead goes through the
reference path: torchvision's PIL transforms per image in the workers (``simclr.data.reference``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from simclr.augment import AugmentConfig, SimCLRAugment, sample_crop_boxes
from simclr.data.folder import draft_size
from simclr.data.images import ArrayImages, Images, center_resize, pil_to_uint8
from simclr.data.reference import ReferencePairs
from simclr.data.seeds import mix_seed
from simclr.errors import SimCLRError


class ViewBatch(NamedTuple):
    """One pretraining batch on the training device: two views (B, 3, S, S) in [0, 1] of the same
    B images, and their labels (B,) (-1 = unknown; pretraining ignores them, monitors use them)."""

    view1: torch.Tensor
    view2: torch.Tensor
    labels: torch.Tensor


class LabelledBatch(NamedTuple):
    """One single-view batch (fine-tuning, distillation): images (B, 3, S, S) in [0, 1], augmented,
    on the training device, and their labels (B,) (-1 = unknown)."""

    images: torch.Tensor
    labels: torch.Tensor


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``x`` on ``device``: on CUDA from pinned memory without blocking the host (the copy queues
    behind the work already queued, and the host goes on preparing the next batch)."""
    if device.type == "cuda":
        if not x.is_pinned():
            x = x.pin_memory()
        return x.to(device, non_blocking=True)
    return x.to(device)


class _FolderPairs(Dataset):
    """``views`` (2, or 1) random resized crops (uint8, S x S) of each folder image, seeded per
    (epoch, index), and its label; asked for by ``(epoch, index)`` keys (workers persist across epochs)."""

    def __init__(self, images: Images, cfg: AugmentConfig, size: int, seed: int, views: int = 2) -> None:
        self.images, self.cfg, self.size, self.seed, self.views = images, cfg, size, seed, views

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int]) -> tuple:
        epoch, index = key
        views = []
        if not self.cfg.crop:
            img, label = self.images.load(index)
            one = pil_to_uint8(center_resize(img, self.size))
            return (*[one] * self.views, label)
        drawn: dict[str, object] = {}

        def plan(w: int, h: int) -> tuple[int, int] | None:
            """The crops of the file about to be decoded (drawn from its full size), and the reduced size
            that still covers the smallest of them (a JPEG's DCT scaling: ``draft_size``)."""
            g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, index))
            boxes = sample_crop_boxes(self.views, h, w, self.cfg.crop_scale, self.cfg.crop_ratio, g).tolist()
            drawn.update(boxes=boxes, size=(w, h))
            return draft_size(w, h, min(min(bh, bw) for _, _, bh, bw in boxes), self.size)

        img, label = self.images.load(index, plan)
        boxes, full = drawn["boxes"], drawn["size"]
        sx, sy = full[0] / img.size[0], full[1] / img.size[1]  # type: ignore[index]
        for top, left, bh, bw in boxes:  # type: ignore[attr-defined]
            if img.size == full:  # decoded in full: the exact crop, then the resize
                crop = img.crop((left, top, left + bw, top + bh))
                views.append(pil_to_uint8(crop.resize((self.size, self.size), Image.BICUBIC)))
            else:  # decoded reduced: the same region of the smaller picture
                box = (left / sx, top / sy, (left + bw) / sx, (top + bh) / sy)
                views.append(pil_to_uint8(img.resize((self.size, self.size), Image.BICUBIC, box=box)))
        return (*views, label)


class EpochPlan(Sampler):
    """The sampler of a loader that lives for the whole run: the ``(epoch, index)`` keys of the epoch in
    hand (``plan``), read in the main process each time an epoch's iteration starts."""

    def __init__(self) -> None:
        self.keys: list[tuple[int, int]] = []

    def plan(self, epoch: int, indices: list[int]) -> None:
        self.keys = [(epoch, i) for i in indices]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


class _FolderEval(Dataset):
    """Decoded-on-demand images (a folder, shards), centre-cropped and resized."""

    def __init__(self, images: Images, size: int) -> None:
        self.images, self.size = images, size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img, label = self.images.load(index)
        return pil_to_uint8(center_resize(img, self.size)), label


class PretrainLoader:
    """Yields ``ViewBatch(view1, view2, labels)``: float views (B, 3, S, S) in [0, 1] on ``device``;
    with ``views=1``, ``LabelledBatch(images, labels)``: one augmented view of each image (the
    training batches of fine-tuning and distillation).

    ``batches(epoch, start=k)`` skips the first k batches of the epoch (mid-epoch resume).
    Incomplete last batches are dropped (NT-Xent compares within a batch).

    With ``world_size`` W > 1, ``batch_size`` is the global batch B: every rank draws the same
    epoch order and takes its own B/W images of each global batch (disjoint shards), augmented
    with a stream seeded by its rank as well.
    """

    def __init__(
        self,
        images: Images,
        batch_size: int,
        aug: AugmentConfig,
        size: int,
        seed: int,
        device: torch.device,
        workers: int = 0,
        rank: int = 0,
        world_size: int = 1,
        augment_on: str = "device",
        views: int = 2,
    ) -> None:
        if views not in (1, 2):
            raise ValueError(f"views must be 1 or 2, got {views}")
        if views == 1 and augment_on == "workers":
            raise ValueError("single-view batches are augmented on the device only")
        self.views = views
        if augment_on not in ("device", "workers"):
            raise ValueError(f"augment_on must be 'device' or 'workers', got {augment_on!r}")
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} is not divisible by the world size {world_size}")
        self.images, self.batch_size, self.size = images, batch_size, size
        self.rank, self.world_size = rank, world_size
        self.local_batch = batch_size // world_size
        self.seed, self.device, self.workers = seed, device, workers
        self.in_memory = isinstance(images, ArrayImages)
        self.augment_on = augment_on
        self.augment: SimCLRAugment | None = None  # the device ops; None when the workers do it all
        self.identity_view = aug.identity_view and views == 2
        if self.identity_view and (augment_on == "workers" or not self.in_memory):
            raise SimCLRError("augment.identity_view needs an in-memory dataset augmented on the device "
                             "(not an image folder, not --augment-on workers)")
        self._pairs: Dataset | None = None
        self._plan = EpochPlan()
        self._loader: DataLoader | None = None  # made once: its workers persist across epochs
        if augment_on == "workers":  # the whole torchvision pipeline per image in the workers
            self._pairs = ReferencePairs(images, aug, size, seed, rank if world_size > 1 else 0)
        elif self.in_memory:
            self.augment = SimCLRAugment(aug, size)
        else:  # folder crops happen in the workers; the device then does flip, colour, gray, blur
            self.augment = SimCLRAugment(replace(aug, crop=False), size)
            self._pairs = _FolderPairs(images, aug, size, seed, views)

    def __len__(self) -> int:
        return len(self.images) // self.batch_size

    def _order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, 1))
        return torch.randperm(len(self.images), generator=g)

    def batches(self, epoch: int, start: int = 0) -> Iterator[ViewBatch | LabelledBatch]:
        order = self._order(epoch)
        n_batches = len(self)
        if start >= n_batches:
            return
        if self._pairs is None:
            assert isinstance(self.images, ArrayImages)
            for b in range(start, n_batches):
                idx = order[self._rows(b)]
                x = to_device(self.images.images[idx], self.device)
                labels = to_device(self.images.labels[idx], self.device)
                yield self._views(x if self.views == 1 else torch.cat([x, x]), labels, epoch, b)
            return
        self._plan.plan(epoch, torch.cat([order[self._rows(b)] for b in range(start, n_batches)]).tolist())
        if self._loader is None:
            self._loader = DataLoader(
                self._pairs,
                batch_size=self.local_batch,
                sampler=self._plan,
                num_workers=self.workers,
                pin_memory=self.device.type == "cuda",
                drop_last=True,
                persistent_workers=self.workers > 0,  # forked once, not every epoch (each epoch's keys carry it)
            )
        for b, parts in enumerate(self._loader, start=start):
            if self.views == 1:
                x, labels = (to_device(t, self.device) for t in parts)
                yield self._views(x, labels, epoch, b)
                continue
            # each view copied on its own (from pinned memory on CUDA) and joined on the device
            v1, v2, labels = (to_device(t, self.device) for t in parts)
            if self.augment is None:  # finished views from the workers
                yield ViewBatch(v1, v2, labels)
                continue
            yield self._views(torch.cat([v1, v2]), labels, epoch, b)

    def _rows(self, b: int) -> slice:
        """This rank's positions in the epoch order for global batch ``b``."""
        first = b * self.batch_size + self.rank * self.local_batch
        return slice(first, first + self.local_batch)

    def _views(self, x: torch.Tensor, labels: torch.Tensor, epoch: int, b: int) -> ViewBatch | LabelledBatch:
        key = (self.seed, epoch, b, 2) if self.world_size == 1 else (self.seed, epoch, b, 2, self.rank)
        g = torch.Generator().manual_seed(mix_seed(*key))
        assert self.augment is not None
        if self.views == 1:
            return LabelledBatch(self.augment(x, g), labels)
        if self.identity_view:  # the paper's Figure 5 setting: the first view is the image as it is
            n = x.shape[0] // 2
            return ViewBatch(as_float_batch(x[:n], self.size).contiguous(), self.augment(x[n:], g), labels)
        v1, v2 = self.augment(x, g).chunk(2)
        return ViewBatch(v1, v2, labels)


def as_float_batch(x: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """Images as the encoder takes them: floats (B, 3, S, S) in [0, 1] of the default dtype, from uint8
    or float (B, C, H, W) or (C, H, W), C = 1 or 3; resized to ``size`` (bilinear, antialiased) when given
    and different."""
    if x.dim() == 3:
        x = x.unsqueeze(0)
    dtype = torch.get_default_dtype()  # float32, unless a caller (a float64 test) chose otherwise
    x = x.to(dtype).div_(255) if x.dtype == torch.uint8 else x.to(dtype)
    if size is not None and (x.shape[-1] != size or x.shape[-2] != size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x


def eval_batches(
    images: Images, batch_size: int, size: int, device: torch.device, workers: int = 0
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Un-augmented float images (B, 3, S, S) in [0, 1] on ``device`` and their labels."""
    if isinstance(images, ArrayImages):
        for i in range(0, len(images), batch_size):
            x = to_device(images.images[i : i + batch_size], device)
            yield as_float_batch(x, size), images.labels[i : i + batch_size]
        return
    loader = DataLoader(_FolderEval(images, size), batch_size=batch_size, num_workers=workers,
                        pin_memory=device.type == "cuda")
    for x, y in loader:
        yield as_float_batch(to_device(x, device)), y
