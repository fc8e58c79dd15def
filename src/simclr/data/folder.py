"""A directory tree of images as a dataset, robust to files that are not good images.

The folder is listed once (``simclr.data.index``: one walk, no file opened, cached while the folder
is unchanged). Images larger than PIL's ``Image.MAX_IMAGE_PIXELS`` (89.5 megapixels by default; raise
it to accept bigger ones) are refused before decoding, so one file cannot take gigabytes of memory.
Labels come from the first-level subfolder names when every image sits in one (as torchvision's
ImageFolder); images directly in the root make the dataset unlabelled (label -1). Zero-byte files are
left out by the walk; a file that fails to decode (not an image, truncated, a bomb) is named in one
warning the first time any process meets it, replaced by the next good image, so an epoch never
crashes, and left out of the next run's index.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from simclr.data.index import FolderIndex, PathList, folder_index, mark_bad
from simclr.data.registry import DatasetDefaults, hold_out, register_source
from simclr.errors import SimCLRError


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL image as 8-bit RGB: grayscale, RGBA, palette and 16-bit inputs included."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)  # exact for 16-bit values; half the memory of float64
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        img = Image.fromarray((arr / top * 255).clip(0, 255).astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB")


@contextlib.contextmanager
def _refusing_bombs() -> Iterator[None]:
    """Beyond PIL's MAX_IMAGE_PIXELS (89.5 MP by default) an image is refused, not decoded."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def draft_size(width: int, height: int, smallest_crop: int, out: int) -> tuple[int, int] | None:
    """The reduced size to decode a ``width`` x ``height`` JPEG at (``Image.draft``: its DCT scales 1/2,
    1/4, 1/8) when every crop taken from it has a side of at least ``smallest_crop`` pixels and is resized
    to ``out``: the largest reduction r that keeps ``smallest_crop / r >= out`` (the crop still has at least
    as many pixels as the view it becomes), None where no reduction keeps that."""
    r = 1
    while r < 8 and smallest_crop / (2 * r) >= out:
        r *= 2
    return None if r == 1 else (-(-width // r), -(-height // r))


def load_rgb(path: str | IO[bytes], plan: Callable[[int, int], tuple[int, int] | None] | None = None
             ) -> Image.Image:
    """The image at ``path`` (a file name, or an open binary file) as RGB; with ``plan``,
    ``plan(width, height)`` (the full size, from the header) may ask for a reduced size, which a JPEG is
    decoded at (``draft_size``; other formats in full)."""
    with _refusing_bombs(), Image.open(path) as img:
        if plan is not None:
            size = plan(*img.size)
            if size is not None and img.format == "JPEG":
                img.draft("RGB", size)
        img.load()
        return to_rgb(img)


def header_ok(path: Path) -> str | None:
    """None if ``path`` looks like a readable image, else why not."""
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with _refusing_bombs(), Image.open(path) as img:
            img.size  # noqa: B018 - reading the header is the check
        return None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:
        return f"{type(e).__name__}: {e}"


def scan_folder(root: str | os.PathLike) -> tuple[list[str], list[int], list[str]]:
    """(paths, labels, class_names) of the images under ``root`` (its index: ``folder_index``)."""
    index, _ = folder_index(root)
    return list(PathList(index)), index.labels.tolist(), list(index.classes)


class FolderImages:
    """The images of a folder (an ``Images``): ``load(i) -> (PIL RGB image, label)``. ``paths`` is a
    sequence made from the compact index (no list of a million strings per process); ``index_line``
    says where the index came from (walked, or the cache)."""

    def __init__(self, root: str | os.PathLike, limit: int | None = None, *, index: FolderIndex | None = None,
                 remember_bad: bool = True) -> None:
        self.index_line = ""
        if index is None:
            index, self.index_line = folder_index(root)
        if limit is not None and limit < len(index):
            index = index.subset(np.arange(limit))
        self.root = str(root)
        self.index = index
        self.labels = torch.from_numpy(np.asarray(index.labels, dtype=np.int64))
        self.classes = list(index.classes)
        self.remember_bad = remember_bad
        self._bad: set[int] = set()

    @property
    def paths(self) -> PathList:
        return PathList(self.index)

    @property
    def names(self) -> PathList:
        """What names each image in listings and embeddings: its path."""
        return PathList(self.index)

    def decode(self, i: int, plan: Callable[[int, int], tuple[int, int] | None] | None = None) -> Image.Image:
        """Image ``i`` as RGB, or the decoder's exception (no substitute: ``load`` gives one)."""
        return load_rgb(self.index.path(i), plan)

    def __len__(self) -> int:
        return len(self.index)

    @classmethod
    def from_paths(cls, paths: Sequence[str], root: str | os.PathLike = "", labels: Sequence[int] | None = None,
                   classes: Sequence[str] = ()) -> FolderImages:
        """Images at given paths (absolute, or relative to the working directory), unlabelled unless
        ``labels`` are given; files that fail to decode are named but not remembered."""
        encoded = [os.fsencode(os.path.abspath(p)) for p in paths]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        n = len(encoded)
        index = FolderIndex("", np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets,
                            np.asarray(list(labels) if labels is not None else [-1] * n, dtype=np.int64),
                            list(classes), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), [],
                            np.zeros(0, dtype=np.int64))
        out = cls(root, index=index, remember_bad=False)
        return out

    def subset(self, indices: Sequence[int]) -> FolderImages:
        """The images at ``indices``, in that order."""
        return FolderImages(self.root, index=self.index.subset(np.asarray(list(indices), dtype=np.int64)),
                            remember_bad=self.remember_bad)

    def load(self, index: int, plan: Callable[[int, int], tuple[int, int] | None] | None = None
             ) -> tuple[Image.Image, int]:
        """Image ``index`` (RGB) and its label; a file that fails to decode is named in a warning (once
        across processes and runs: ``simclr.data.index.mark_bad``) and replaced by the next good one.
        ``plan``: see ``load_rgb`` (called with the full size of the file actually decoded)."""
        n = len(self)
        for k in range(n):
            i = (index + k) % n
            if i in self._bad:
                continue
            path = self.index.path(i)
            try:
                return load_rgb(path, plan), int(self.labels[i])
            except Exception as e:  # noqa: BLE001 - any decode failure: skip the file, name it
                self._bad.add(i)
                first = not self.remember_bad or mark_bad(self.index.root, self.index.relative(i))
                if first:
                    warnings.warn(f"skipping {path}: {type(e).__name__}: {e}", stacklevel=2)
        raise SimCLRError(f"none of the {n} images under {self.root} could be decoded")


@register_source("folder", DatasetDefaults(224, 0.1, 1.0),
                 "a folder of images (--data-dir DIR; labels from first-level subfolders; train/ + test/ as the split)")
def load_folder(split: str, data_dir: str | None, limit: int | None, seed: int, image_size: int | None) -> FolderImages:
    """``--dataset folder``: DIR's train/ or test/ where it has both, else all of DIR with every 5th image
    held out for evaluation (``hold_out``)."""
    if not data_dir:
        raise SimCLRError("--dataset folder needs --data-dir DIR (a folder of images)")
    root = Path(data_dir)
    if (root / "train").is_dir() and (root / "test").is_dir():
        return FolderImages(root / ("test" if split == "test" else "train"), limit)
    return hold_out(FolderImages(root), split, limit)  # type: ignore[return-value]


__all__ = ["FolderImages", "draft_size", "header_ok", "load_folder", "load_rgb", "scan_folder", "to_rgb"]
