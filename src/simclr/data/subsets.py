"""Labelled subsets: the 1% / 10% label sets of the semi-supervised protocols, drawn or read from a file.

``balanced_subset`` draws a class-balanced subset deterministically from a seed: every class keeps the
same fraction of its images (rounded), so the class proportions are the dataset's. ``write_subset``
writes it one image a line, as the official repository's ImageNet lists (``1percent.txt``) are
written: an index into the train split for in-memory datasets, the image's path relative to the
dataset folder for folder datasets. ``read_subset`` reads such a file back, and the official lists
too: a line is an index, a relative path or a bare file name (``n01440764_10026.JPEG``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from simclr.data.folder import FolderImages
from simclr.data.images import Images
from simclr.errors import SimCLRError

SUBSET_FILE = "subset.txt"


def check_fraction(fraction: float) -> None:
    if not 0 < fraction <= 1:
        raise SimCLRError(f"--label-fraction {fraction:g} is outside (0, 1]: give e.g. 0.01 for 1% of the labels")


def balanced_subset(labels: torch.Tensor, fraction: float, seed: int = 0,
                    classes: Sequence[str] = ()) -> list[int]:
    """Indices (sorted) of ``round(fraction x n_c)`` images of every class c, drawn with ``seed``.

    Refused: a fraction outside (0, 1], unlabelled images (label -1), a class left with no image."""
    check_fraction(fraction)
    labels = torch.as_tensor(labels).long()
    if labels.numel() == 0 or bool((labels < 0).any()):
        raise SimCLRError("a labelled subset needs labelled images: this dataset has images without labels")
    g = torch.Generator().manual_seed(seed)
    chosen: list[torch.Tensor] = []
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten()
        k = round(fraction * len(members))
        if k == 0:
            name = classes[c] if c < len(classes) else str(c)
            raise SimCLRError(
                f"--label-fraction {fraction:g} leaves class {name!r} ({len(members)} images) with no image: "
                f"raise it to at least {0.5 / len(members):.2g}"
            )
        chosen.append(members[torch.randperm(len(members), generator=g)[:k]])
    return sorted(torch.cat(chosen).tolist())


def subset_names(images: Images, indices: Sequence[int]) -> list[str]:
    """The lines of a subset file: relative paths for folder datasets, indices for the others."""
    if isinstance(images, FolderImages):
        root = Path(images.root)
        return [Path(os.path.relpath(images.paths[i], root)).as_posix() for i in indices]
    return [str(i) for i in indices]


def write_subset(path: str | os.PathLike, images: Images, indices: Sequence[int]) -> None:
    Path(path).write_text("".join(line + "\n" for line in subset_names(images, indices)))


def read_subset(path: str | os.PathLike, images: Images) -> list[int]:
    """The indices into ``images`` that the subset file names (in file order, duplicates dropped).

    A line is an integer index, or (folder datasets) a path relative to the dataset folder or a bare
    file name; blank lines and ``#`` comments are skipped. Names the dataset lacks are an error that
    lists the first few."""
    p = Path(path)
    if not p.is_file():
        raise SimCLRError(f"--subset-file {path} does not exist")
    lines = [ln.split("#", 1)[0].strip() for ln in p.read_text().splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise SimCLRError(f"--subset-file {path} names no image")
    by_name: dict[str, int] = {}
    if isinstance(images, FolderImages):
        root = Path(images.root)
        for i, full in enumerate(images.paths):
            rel = Path(os.path.relpath(full, root)).as_posix()
            by_name[rel] = i
            by_name.setdefault(Path(full).name, i)
    n = len(images)
    out: list[int] = []
    missing: list[str] = []
    for line in lines:
        if line.isdigit() and not by_name:
            i = int(line)
            if i < n:
                out.append(i)
                continue
        elif line in by_name:
            out.append(by_name[line])
            continue
        missing.append(line)
    if missing:
        what = "indices" if not by_name else "images"
        raise SimCLRError(
            f"--subset-file {path}: {len(missing)} of its {len(lines)} {what} are not in the dataset's train split "
            f"({n} images), e.g. {', '.join(missing[:5])}"
        )
    seen: set[int] = set()
    unique = [i for i in out if not (i in seen or seen.add(i))]  # type: ignore[func-returns-value]
    labels = images.labels[torch.as_tensor(unique)]
    if bool((labels < 0).any()):
        raise SimCLRError(f"--subset-file {path} names images without labels")
    return unique


__all__ = ["SUBSET_FILE", "balanced_subset", "check_fraction", "read_subset", "subset_names", "write_subset"]
