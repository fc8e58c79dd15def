"""Where images come from, by name: the data source registry.

A source is one function ``load(split, data_dir, limit, seed, image_size) -> Images`` and its
per-dataset defaults, registered under a name (``--dataset NAME``) with ``@register_source``. The
named datasets live in ``simclr.data.sources``, a folder of files in ``simclr.data.folder``,
WebDataset shards in ``simclr.data.shards``: a new format is one module with its ``@register_source``
(imported by ``simclr.data.sources``). Every source yields an ``Images`` (``simclr.data.images``):
in-memory arrays, or samples decoded on demand (``load(index, plan)``), which the one loader
(``simclr.data.loaders.PretrainLoader``) batches the same way into the device-side augmentation.
Nothing above ``simclr.data`` names a format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simclr.data.images import Images

Loader = Callable[[str, "str | None", "int | None", int, "int | None"], Images]


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


@dataclass(frozen=True)
class Source:
    """A registered source: its name, defaults, loader and one line for the listing."""

    name: str
    defaults: DatasetDefaults
    load: Loader
    summary: str = ""


SOURCES: dict[str, Source] = {}


def register_source(name: str, defaults: DatasetDefaults, summary: str = "") -> Callable[[Loader], Loader]:
    """Register ``load(split, data_dir, limit, seed, image_size) -> Images`` as ``--dataset name``. ``split``
    is 'pretrain' (every image; labels ignored), 'train' or 'test'."""

    def add(load: Loader) -> Loader:
        if name in SOURCES and SOURCES[name].load is not load:
            raise ValueError(f"a data source {name!r} is registered already")
        SOURCES[name] = Source(name, defaults, load, summary)
        return load

    return add


def hold_out(images: Images, split: str, limit: int | None) -> Images:
    """The split of a source without its own train / test parts: every 5th image is the test split (for
    linear-eval and knn), the others train; 'pretrain' is every image; then the first ``limit``."""
    if split != "pretrain":
        keep = [i for i in range(len(images)) if (i % 5 == 4) == (split == "test")]
        images = images.subset(keep)
    return images.subset(range(min(len(images), limit))) if limit else images


__all__ = ["SOURCES", "DatasetDefaults", "Source", "hold_out", "register_source"]
