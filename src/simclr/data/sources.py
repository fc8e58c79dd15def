"""The named datasets and ``load_images``: any registered source (``simclr.data.registry``) by name.

``load_images(name, split, ...)`` returns an ``Images`` (``simclr.data.images``): an
:class:`~simclr.data.images.ArrayImages` held in memory (synthetic, CIFAR, STL-10, MNIST family), a
:class:`~simclr.data.folder.FolderImages` (files decoded by loader workers) or a
:class:`~simclr.data.shards.ShardImages` (WebDataset tar shards, one seek a sample).
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch

from simclr.data import synthetic
from simclr.data.images import ArrayImages, Images
from simclr.data.registry import SOURCES, DatasetDefaults, Loader, register_source
from simclr.errors import SimCLRError


class _Defaults(Mapping[str, DatasetDefaults]):
    """Dataset name -> its defaults, read from the registry (``simclr.data.registry.SOURCES``)."""

    def __getitem__(self, name: str) -> DatasetDefaults:
        return SOURCES[name].defaults

    def __iter__(self) -> Iterator[str]:
        return iter(SOURCES)

    def __len__(self) -> int:
        return len(SOURCES)


DATASETS: Mapping[str, DatasetDefaults] = _Defaults()


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


# The named datasets. The quickstart dataset is tuned so that a one-minute CPU run beats the random encoder
# (BENCHMARKS.md): its nuisances are colours, so full-strength colour distortion; its classes are shapes,
# so crops keep at least a quarter of the image; the ImageNet stem runs 8x faster than the CIFAR stem at
# 32 px and the shapes are large.
@register_source("synthetic", DatasetDefaults(32, 0.5, 1.0, stem="imagenet", crop_scale=(0.25, 1.0)),
                 "8 generated shape classes (the default; no download)")
def _synthetic(split: str, data_dir: str | None, limit: int | None, seed: int, image_size: int | None) -> Images:
    size = image_size or 32
    default_n = synthetic.DEFAULT_TEST_SIZE if split == "test" else synthetic.DEFAULT_TRAIN_SIZE
    n = limit if limit is not None else default_n
    imgs, labels = synthetic.generate(n, "test" if split == "test" else "train", seed, size)
    return ArrayImages(imgs, labels, list(synthetic.CLASSES))


def _cifar(name: str) -> Loader:
    def load(split: str, data_dir: str | None, limit: int | None, seed: int, image_size: int | None) -> Images:
        import torchvision.datasets as tvd

        cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
        ds = _torchvision(cls, data_dir, train=(split != "test"))
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return _limit(ArrayImages(images, torch.tensor(ds.targets), list(ds.classes)), limit)

    return load


register_source("cifar10", DatasetDefaults(32, 0.5, 0.5), "CIFAR-10 (torchvision)")(_cifar("cifar10"))
register_source("cifar100", DatasetDefaults(32, 0.5, 0.5), "CIFAR-100 (torchvision)")(_cifar("cifar100"))


@register_source("stl10", DatasetDefaults(96, 0.5, 1.0), "STL-10; pretrains on unlabelled + train (torchvision)")
def _stl10(split: str, data_dir: str | None, limit: int | None, seed: int, image_size: int | None) -> Images:
    import torchvision.datasets as tvd

    splits = {"pretrain": "train+unlabeled", "train": "train", "test": "test"}[split]
    ds = _torchvision(tvd.STL10, data_dir, split=splits)
    images = torch.from_numpy(ds.data).contiguous()
    return _limit(ArrayImages(images, torch.from_numpy(ds.labels).long(), list(ds.classes)), limit)


def _mnist(name: str) -> Loader:
    def load(split: str, data_dir: str | None, limit: int | None, seed: int, image_size: int | None) -> Images:
        return _limit(_mnist_family(name, "test" if split == "test" else "train", data_dir), limit)

    return load


register_source("mnist", DatasetDefaults(28, 0.5, 0.5), "MNIST (IDX files in --data-dir, or torchvision)")(
    _mnist("mnist"))
register_source("fashion-mnist", DatasetDefaults(28, 0.5, 0.5),
                "Fashion-MNIST (IDX files in --data-dir, e.g. Debian's dataset-fashion-mnist)")(_mnist("fashion-mnist"))


def load_images(
    name: str,
    split: str,
    data_dir: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    image_size: int | None = None,
) -> Images:
    """The images of the source ``name`` (``simclr.data.registry``) for ``split``: 'pretrain', 'train'
    (labelled) or 'test'.

    For every dataset except STL-10, 'pretrain' is 'train' (labels ignored). STL-10 pretrains on its
    100k unlabelled images plus the 5k labelled train images.
    """
    if name not in SOURCES:
        raise SimCLRError(f"unknown dataset {name!r}: choose one of {', '.join(SOURCES)}")
    if split not in ("pretrain", "train", "test"):
        raise ValueError(f"unknown split {split!r}")
    if limit is not None and limit <= 0:
        raise SimCLRError(f"--limit must be a positive number of images, got {limit}")
    return SOURCES[name].load(split, data_dir, limit, seed, image_size)


# the formats of their own modules register themselves on import; listed after the named datasets
from simclr.data import folder as _folder  # noqa: E402, F401

__all__ = ["DATASETS", "DatasetDefaults", "load_images"]
