"""A directory tree of images as a dataset, robust to files that are not good images.

Images larger than PIL's ``Image.MAX_IMAGE_PIXELS`` (89.5 megapixels by default; raise it to
accept bigger ones) are refused before decoding, so one file cannot take gigabytes of memory.
Labels come from the first-level subfolder names when every image sits in one (as
torchvision's ImageFolder); images directly in the root make the dataset unlabelled
(label -1). Zero-byte files and files whose header PIL cannot read are skipped at scan time,
each named in a warning; a file that fails to decode later (truncated, corrupt) is named in a
warning and replaced by the next good image, so an epoch never crashes.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from simclr.errors import SimCLRError

IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm",
)


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


def load_rgb(path: str) -> Image.Image:
    with _refusing_bombs(), Image.open(path) as img:
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
    """(paths, labels, class_names) for the images under ``root``; bad files warned and skipped."""
    root_p = Path(root)
    if not root_p.exists():
        raise SimCLRError(f"--data-dir {root} does not exist: point it at a folder of images")
    if not root_p.is_dir():
        raise SimCLRError(f"--data-dir {root} is not a directory")
    if not os.access(root_p, os.R_OK | os.X_OK):
        raise SimCLRError(f"--data-dir {root} is not readable: check its permissions")
    candidates: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root_p, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                candidates.append(Path(dirpath) / name)
    good: list[Path] = []
    for p in candidates:
        why = header_ok(p)
        if why is None:
            good.append(p)
        else:
            warnings.warn(f"skipping {p}: {why}", stacklevel=2)
    if not good:
        raise SimCLRError(
            f"no readable images found under {root} (looked for {', '.join(IMAGE_EXTENSIONS)})"
        )
    top_dirs = {p.relative_to(root_p).parts[0] for p in good if len(p.relative_to(root_p).parts) > 1}
    in_root = any(len(p.relative_to(root_p).parts) == 1 for p in good)
    if top_dirs and not in_root:
        classes = sorted(top_dirs)
        index = {c: i for i, c in enumerate(classes)}
        labels = [index[p.relative_to(root_p).parts[0]] for p in good]
    else:
        classes, labels = [], [-1] * len(good)
    return [str(p) for p in good], labels, classes


class FolderImages:
    """The images of a folder (an ``Images``): ``load(i) -> (PIL RGB image, label)``."""

    def __init__(self, root: str | os.PathLike, limit: int | None = None) -> None:
        paths, labels, classes = scan_folder(root)
        if limit is not None:
            paths, labels = paths[:limit], labels[:limit]
        self.root = str(root)
        self.paths = paths
        self.labels = torch.tensor(labels, dtype=torch.long)
        self.classes = classes
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.paths)

    @classmethod
    def from_paths(cls, paths: Sequence[str], root: str | os.PathLike = "", labels: Sequence[int] | None = None,
                   classes: Sequence[str] = ()) -> FolderImages:
        """Images at given paths (already checked), unlabelled unless ``labels`` are given."""
        out = cls.__new__(cls)
        out.root, out.classes, out._bad = str(root), list(classes), set()
        out.paths = list(paths)
        out.labels = torch.tensor(list(labels) if labels is not None else [-1] * len(out.paths), dtype=torch.long)
        return out

    def subset(self, indices: Sequence[int]) -> FolderImages:
        """The images at ``indices``, in that order."""
        indices = list(indices)
        return FolderImages.from_paths([self.paths[i] for i in indices], self.root,
                                       self.labels[indices].tolist() if indices else [], self.classes)

    def load(self, index: int) -> tuple[Image.Image, int]:
        """Image ``index`` (RGB) and its label; a file that fails to decode is named in a warning and
        replaced by the next good one."""
        n = len(self.paths)
        for k in range(n):
            i = (index + k) % n
            if i in self._bad:
                continue
            try:
                return load_rgb(self.paths[i]), int(self.labels[i])
            except Exception as e:  # noqa: BLE001 - any decode failure: skip the file, name it
                self._bad.add(i)
                warnings.warn(f"skipping {self.paths[i]}: {type(e).__name__}: {e}", stacklevel=2)
        raise SimCLRError(f"none of the {n} images under {self.root} could be decoded")
