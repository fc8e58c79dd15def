"""Labelled subsets: class balance, determinism, the subset file round trip, and the refusals."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from simclr.data.folder import FolderImages
from simclr.data.images import ArrayImages
from simclr.data.subsets import balanced_subset, read_subset, write_subset
from simclr.errors import SimCLRError


def _labels() -> torch.Tensor:
    # uneven classes: 300, 120 and 40 images, shuffled
    y = torch.cat([torch.full((300,), 0), torch.full((120,), 1), torch.full((40,), 2)])
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.5, 1.0])
def test_every_class_keeps_the_same_fraction(fraction: float) -> None:
    y = _labels()
    idx = balanced_subset(y, fraction, seed=3)
    assert idx == sorted(set(idx))
    counts = Counter(y[idx].tolist())
    for c, n_c in Counter(y.tolist()).items():
        assert counts[c] == round(fraction * n_c)


def test_the_seed_decides_the_subset() -> None:
    y = _labels()
    assert balanced_subset(y, 0.1, seed=1) == balanced_subset(y, 0.1, seed=1)
    assert balanced_subset(y, 0.1, seed=1) != balanced_subset(y, 0.1, seed=2)


@pytest.mark.parametrize(("fraction", "message"), [
    (0.0, r"outside \(0, 1\]"), (-0.5, r"outside \(0, 1\]"), (1.5, r"outside \(0, 1\]"),
    (0.01, "leaves class 'c2' .* with no image"),
])
def test_bad_fractions_are_refused(fraction: float, message: str) -> None:
    with pytest.raises(SimCLRError, match=message):
        balanced_subset(_labels(), fraction, classes=["c0", "c1", "c2"])


def test_unlabelled_images_cannot_be_subset() -> None:
    with pytest.raises(SimCLRError, match="without labels"):
        balanced_subset(torch.tensor([0, 1, -1, 1]), 0.5)


def test_in_memory_subsets_round_trip_as_indices(tmp_path: Path) -> None:
    images = ArrayImages(torch.zeros(460, 1, 4, 4, dtype=torch.uint8), _labels(), ["c0", "c1", "c2"])
    idx = balanced_subset(images.labels, 0.1, seed=0)
    write_subset(tmp_path / "subset.txt", images, idx)
    assert (tmp_path / "subset.txt").read_text().splitlines() == [str(i) for i in idx]
    assert read_subset(tmp_path / "subset.txt", images) == idx
    (tmp_path / "bad.txt").write_text("3\n999\n1000\n")
    with pytest.raises(SimCLRError, match=r"2 of its 3 indices are not in .* e\.g\. 999, 1000"):
        read_subset(tmp_path / "bad.txt", images)


def _folder(root: Path) -> FolderImages:
    paths, labels = [], []
    for c, name in enumerate(["n01", "n02"]):
        for i in range(4):
            p = root / name / f"{name}_{i}.JPEG"
            paths.append(str(p))
            labels.append(c)
    return FolderImages.from_paths(paths, root, labels, ["n01", "n02"])


def test_folder_subsets_round_trip_as_paths_and_read_official_style_lists(tmp_path: Path) -> None:
    images = _folder(tmp_path)
    write_subset(tmp_path / "subset.txt", images, [1, 6])
    assert (tmp_path / "subset.txt").read_text() == "n01/n01_1.JPEG\nn02/n02_2.JPEG\n"
    assert read_subset(tmp_path / "subset.txt", images) == [1, 6]
    # the official ImageNet lists: bare file names, one a line
    (tmp_path / "1percent.txt").write_text("n02_3.JPEG\nn01_0.JPEG\n\n# a comment\nn02_3.JPEG\n")
    assert read_subset(tmp_path / "1percent.txt", images) == [7, 0]
    (tmp_path / "missing.txt").write_text("n01_0.JPEG\nn09_1.JPEG\nn09_2.JPEG\n")
    with pytest.raises(SimCLRError, match=r"2 of its 3 images are not in .* e\.g\. n09_1\.JPEG, n09_2\.JPEG"):
        read_subset(tmp_path / "missing.txt", images)
