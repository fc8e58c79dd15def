"""Embedding a dataset or a folder of image files: batched, with a progress bar, and skipping
(and naming) files that cannot be decoded instead of substituting another image."""

from __future__ import annotations

import sys
import warnings

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from simclr.data.folder import FolderImages, load_rgb
from simclr.data.loaders import _center_resize, _pil_to_uint8
from simclr.data.sources import ArrayImages, Images
from simclr.embedding import embed


class _Files(Dataset):
    def __init__(self, images: FolderImages, size: int) -> None:
        self.paths, self.size = images.paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor | None, int, str]:
        try:
            return _pil_to_uint8(_center_resize(load_rgb(self.paths[i]), self.size)), i, ""
        except Exception as e:  # noqa: BLE001 - any decode failure: skip this file, name it
            return None, i, f"{type(e).__name__}: {e}"


def _collate(items: list) -> tuple[torch.Tensor, list[int], list[tuple[int, str]]]:
    good = [(x, i) for x, i, _ in items if x is not None]
    bad = [(i, why) for x, i, why in items if x is None]
    x = torch.stack([x for x, _ in good]) if good else torch.zeros(0, 3, 1, 1, dtype=torch.uint8)
    return x, [i for _, i in good], bad


def embed_images(
    encoder: nn.Module,
    images: Images,
    size: int,
    device: torch.device,
    batch_size: int = 256,
    workers: int = 0,
    head: nn.Module | None = None,
    progress: bool = True,
) -> tuple[torch.Tensor, list[int]]:
    """(embeddings (M, D), indices of the M images that could be read) of ``images`` at side ``size``."""
    bar = tqdm(total=len(images), unit="img", desc="embed", file=sys.stderr, disable=not progress or None)
    out: list[torch.Tensor] = []
    kept: list[int] = []
    try:
        if isinstance(images, ArrayImages):
            for start in range(0, len(images), batch_size):
                x = images.images[start : start + batch_size]
                out.append(embed(encoder, x, batch_size, device, head, image_size=size))
                kept.extend(range(start, start + len(x)))
                bar.update(len(x))
        else:
            assert isinstance(images, FolderImages)
            loader = DataLoader(_Files(images, size), batch_size=batch_size, num_workers=workers,
                                collate_fn=_collate)
            for x, idx, bad in loader:
                for i, why in bad:
                    warnings.warn(f"skipping {images.paths[i]}: {why}", stacklevel=2)
                if idx:
                    out.append(embed(encoder, x, batch_size, device, head))
                    kept.extend(idx)
                bar.update(len(idx) + len(bad))
    finally:
        bar.close()
    vectors = torch.cat(out) if out else torch.zeros(0, 0)
    return vectors, kept
