"""What a dataset is to the rest of simclr: the ``Images`` protocol, in-memory images, PIL conversions.

Every dataset is an ``Images``: it has a length, ``labels`` (a tensor, -1 = unknown), ``classes``
(names; empty when unlabelled), ``subset(indices)`` and ``load(i) -> (PIL RGB image, label)``. Two
kinds exist: :class:`ArrayImages` (uint8 images held in memory: synthetic, CIFAR, STL-10, the MNIST
family), which the loaders batch straight from the tensor, and
:class:`~simclr.data.folder.FolderImages` (files decoded by loader workers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from PIL import Image


@runtime_checkable
class Images(Protocol):
    """A dataset of images with (possibly unknown) labels."""

    labels: torch.Tensor
    classes: list[str]

    def __len__(self) -> int: ...

    def subset(self, indices: Sequence[int]) -> Images:
        """The images at ``indices``, in that order."""
        ...

    def load(self, index: int, plan: Callable[[int, int], tuple[int, int] | None] | None = None
             ) -> tuple[Image.Image, int]:
        """Image ``index`` as an RGB PIL image, and its label. ``plan(width, height)``: told the full size
        before decoding, it may ask for a reduced size (sources decoded from JPEG files use it; see
        ``simclr.data.folder.load_rgb``)."""
        ...


@dataclass
class ArrayImages:
    """In-memory images (N, C, H, W) uint8 with C in {1, 3}, and labels (N,) (-1 = unknown)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, indices: Sequence[int] | slice) -> ArrayImages:
        """The images at ``indices`` (a list, a range or a slice), in that order."""
        if isinstance(indices, range) and indices.step == 1:
            indices = slice(indices.start, indices.stop)
        if not isinstance(indices, slice):
            indices = torch.as_tensor(list(indices), dtype=torch.long)
        return ArrayImages(self.images[indices], self.labels[indices], self.classes)

    def load(self, index: int, plan: Callable[[int, int], tuple[int, int] | None] | None = None
             ) -> tuple[Image.Image, int]:
        return to_pil_rgb(self.images[index]), int(self.labels[index])


def has_labels(images: Images) -> bool:
    """Whether any image of the set has a label."""
    return bool((torch.as_tensor(images.labels) >= 0).any())


def num_classes(images: Images) -> int:
    """The number of classes: the named ones, else the largest label + 1."""
    return len(images.classes) or int(torch.as_tensor(images.labels).max()) + 1


def to_pil_rgb(x: torch.Tensor) -> Image.Image:
    """A uint8 (C, H, W) tensor, C = 1 or 3, as an RGB PIL image."""
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return Image.fromarray(x.permute(1, 2, 0).contiguous().numpy(), mode="RGB")


def pil_to_uint8(img: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a uint8 (3, H, W) tensor."""
    return torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(
        img.size[1], img.size[0], 3
    ).permute(2, 0, 1)


def center_resize(img: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to ``size`` (antialiased bicubic), then centre-crop size x size."""
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


__all__ = ["ArrayImages", "Images", "center_resize", "has_labels", "num_classes", "pil_to_uint8", "to_pil_rgb"]
