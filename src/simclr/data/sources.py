"""Where images come from: the dataset registry and its per-dataset defaults.

``load_images(name, split, ...)`` returns an ``Images`` (``simclr.data.images``): an
:class:`~simclr.data.images.ArrayImages` held in memory (synthetic, CIFAR, STL-10, MNIST family)
or a :class:`~simclr.data.folder.FolderImages` (decoded from files by loader workers).
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from simclr.data import synthetic
from simclr.data.folder import FolderImages
from simclr.data.images import ArrayImages, Images
from simclr.errors import SimCLRError


@dataclass(frozen=True)
class DatasetDefaults:
    """Per-dataset defaults, following PAPER.md (CIFAR setting for small images).

    ``stem`` and ``crop_scale`` are None where the general rule applies (CIFAR stem at <= 32 px;
    crop area U(0.08, 1))."""

    image_size: int
    temperature: float
    color_strength: float
    stem: str | None = None
    crop_scale: tuple[float, float] | None = None


DATASETS: dict[str, DatasetDefaults] = {
    # The quickstart dataset, tuned so that a one-minute CPU run beats the random encoder
    # (BENCHMARKS.md): its nuisances are colours, so full-strength colour distortion; its
    # classes are shapes, so crops keep at least a quarter of the image; the ImageNet stem runs
    # 8x faster than the CIFAR stem at 32 px and the shapes are large.
    "synthetic": DatasetDefaults(32, 0.5, 1.0, stem="imagenet", crop_scale=(0.25, 1.0)),
    "cifar10": DatasetDefaults(32, 0.5, 0.5),
    "cifar100": DatasetDefaults(32, 0.5, 0.5),
    "stl10": DatasetDefaults(96, 0.5, 1.0),
    "mnist": DatasetDefaults(28, 0.5, 0.5),
    "fashion-mnist": DatasetDefaults(28, 0.5, 0.5),
    "folder": DatasetDefaults(224, 0.1, 1.0),
}


def _limit(images: ArrayImages, limit: int | None) -> ArrayImages:
    return images if limit is None else images.subset(slice(0, limit))


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise SimCLRError(f"{path} is not an IDX file of unsigned bytes")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise SimCLRError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {arr.size}")
    return arr.reshape(shape)


def _find_idx(data_dir: str, stem: str) -> Path | None:
    root = Path(data_dir)
    for depth_glob in ("", "*/", "*/*/"):
        for suffix in (".gz", ""):
            hits = sorted(root.glob(f"{depth_glob}{stem}{suffix}"))
            if hits:
                return hits[0]
    return None


def _mnist_family(name: str, split: str, data_dir: str | None) -> ArrayImages:
    import torchvision.datasets as tvd

    cls = tvd.FashionMNIST if name == "fashion-mnist" else tvd.MNIST
    prefix = "train" if split == "train" else "t10k"
    if data_dir:
        img_p = _find_idx(data_dir, f"{prefix}-images-idx3-ubyte")
        lab_p = _find_idx(data_dir, f"{prefix}-labels-idx1-ubyte")
        if img_p is not None and lab_p is not None:
            images = torch.from_numpy(_read_idx(img_p).copy()).unsqueeze(1)
            labels = torch.from_numpy(_read_idx(lab_p).astype(np.int64))
            # the raw IDX files hold label numbers only: name them as torchvision does
            return ArrayImages(images, labels, list(cls.classes))
    ds = _torchvision(cls, data_dir, train=(split == "train"))
    return ArrayImages(ds.data.unsqueeze(1).contiguous(), ds.targets.long(), list(ds.classes))


def _torchvision(cls, data_dir: str | None, **kwargs):  # noqa: ANN001, ANN202
    root = data_dir or os.path.join(os.path.expanduser("~"), ".cache", "simclr", "data")
    try:
        return cls(root, download=False, **kwargs)
    except (RuntimeError, FileNotFoundError):
        pass
    try:
        return cls(root, download=True, **kwargs)
    except Exception as e:  # noqa: BLE001 - network errors come in many types
        raise SimCLRError(
            f"{cls.__name__} is not in {root} and could not be downloaded ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); pass --data-dir with a local copy"
        ) from e


def load_images(
    name: str,
    split: str,
    data_dir: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    image_size: int | None = None,
) -> Images:
    """The images of ``name`` for ``split``: 'pretrain', 'train' (labelled) or 'test'.

    For every dataset except STL-10, 'pretrain' is 'train' (labels ignored). STL-10
    pretrains on its 100k unlabelled images plus the 5k labelled train images.
    """
    if name not in DATASETS:
        raise SimCLRError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    if split not in ("pretrain", "train", "test"):
        raise ValueError(f"unknown split {split!r}")
    if limit is not None and limit <= 0:
        raise SimCLRError(f"--limit must be a positive number of images, got {limit}")
    if name == "synthetic":
        size = image_size or DATASETS[name].image_size
        default_n = synthetic.DEFAULT_TEST_SIZE if split == "test" else synthetic.DEFAULT_TRAIN_SIZE
        n = limit if limit is not None else default_n
        imgs, labels = synthetic.generate(n, "test" if split == "test" else "train", seed, size)
        return ArrayImages(imgs, labels, list(synthetic.CLASSES))
    if name == "folder":
        if not data_dir:
            raise SimCLRError("--dataset folder needs --data-dir DIR (a folder of images)")
        root = Path(data_dir)
        want = "test" if split == "test" else "train"
        if (root / "train").is_dir() and (root / "test").is_dir():
            return FolderImages(root / want, limit)
        images = FolderImages(root, None)
        if split != "pretrain":
            # No train/ and test/ subfolders: every 5th image is held out for evaluation.
            keep = [i for i in range(len(images)) if (i % 5 == 4) == (split == "test")]
            images = images.subset(keep)
        return images.subset(range(min(len(images), limit))) if limit else images
    if name in ("mnist", "fashion-mnist"):
        return _limit(_mnist_family(name, "test" if split == "test" else "train", data_dir), limit)
    import torchvision.datasets as tvd

    if name in ("cifar10", "cifar100"):
        cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
        ds = _torchvision(cls, data_dir, train=(split != "test"))
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return _limit(ArrayImages(images, torch.tensor(ds.targets), list(ds.classes)), limit)
    # stl10
    splits = {"pretrain": "train+unlabeled", "train": "train", "test": "test"}[split]
    ds = _torchvision(tvd.STL10, data_dir, split=splits)
    images = torch.from_numpy(ds.data).contiguous()
    return _limit(ArrayImages(images, torch.from_numpy(ds.labels).long(), list(ds.classes)), limit)
