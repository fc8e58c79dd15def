"""The folder index: one walk in a fixed order, no file opened, cached while the folder is unchanged."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from simclr.data import index as idx
from simclr.data.folder import FolderImages
from simclr.data.index import IMAGE_EXTENSIONS, PathList, folder_index, scan


def _tree(root: Path) -> None:
    for rel in ("b/2.png", "b/10.jpg", "a/z.png", "a/deep/er/x.JPG", "a/é.png", "c.png", "b/.hidden.png",
                "a/notes.txt", "b/empty.png", ".dot/skip.png"):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"" if "empty" in rel else b"x" * (len(rel) + 1))


def _reference(root: Path) -> list[str]:
    """The order before the index: os.walk top-down with sorted names, images by extension, no dotfiles,
    no empty files."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".") and p.stat().st_size:
                out.append(str(p.relative_to(root)))
    return out


def test_the_walk_lists_what_os_walk_lists_in_the_same_order(tmp_path: Path) -> None:
    _tree(tmp_path)
    with warnings.catch_warnings(record=True):
        index = scan(tmp_path)
    assert [index.relative(i) for i in range(len(index))] == _reference(tmp_path)
    assert index.classes == []  # c.png sits in the root: unlabelled
    assert (index.labels == -1).all()
    sizes = [(tmp_path / index.relative(i)).stat().st_size for i in range(len(index))]
    assert index.sizes.tolist() == sizes


def test_labels_from_the_first_level(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "c.png").unlink()
    with warnings.catch_warnings(record=True):
        index = scan(tmp_path)
    assert index.classes == ["a", "b"]
    for i in range(len(index)):
        assert index.classes[index.labels[i]] == Path(index.relative(i)).parts[0]


def test_the_second_start_reads_the_cache_and_a_changed_folder_is_walked_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data"
    _tree(root)
    with warnings.catch_warnings(record=True):
        first, line = folder_index(root)
    assert "indexed in" in line and "cached in" in line
    with monkeypatch.context() as m:
        m.setattr(idx, "scan", lambda *a, **k: pytest.fail("walked again"))
        second, line = folder_index(root)
    assert "read from the cache" in line
    assert list(PathList(second)) == list(PathList(first))
    assert np.array_equal(second.labels, first.labels) and second.classes == first.classes
    (root / "a" / "deep" / "er" / "new.png").write_bytes(b"new")  # a deep directory changes
    with warnings.catch_warnings(record=True):
        third, line = folder_index(root)
    assert "indexed in" in line and "a/deep/er/new.png" in [third.relative(i) for i in range(len(third))]
    (root / "b" / "2.png").unlink()
    with warnings.catch_warnings(record=True):
        fourth, _ = folder_index(root)
    assert [fourth.relative(i) for i in range(len(fourth))] == _reference(root)


def test_subset_and_paths_are_those_of_a_list(tmp_path: Path) -> None:
    _tree(tmp_path)
    with warnings.catch_warnings(record=True):
        index = scan(tmp_path)
    paths = list(PathList(index))
    pick = [4, 0, 2, 2]
    sub = index.subset(pick)
    assert list(PathList(sub)) == [paths[i] for i in pick]
    assert sub.labels.tolist() == [index.labels[i] for i in pick]
    view = PathList(index)
    assert view[-1] == paths[-1] and view[1:3] == paths[1:3]
    with pytest.raises(IndexError):
        view[len(paths)]
    assert list(PathList(index.subset([]))) == []


def test_the_index_is_compact(tmp_path: Path) -> None:
    root = tmp_path / "many"
    for c in range(10):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(500):
            (root / f"class{c}" / f"n0144{c}_{i:05d}.JPEG").write_bytes(b"x")
    with warnings.catch_warnings(record=True):
        index = scan(root)
    assert len(index) == 5000
    # ImageNet-like names: about 25 bytes of path + 3 x 8 bytes of numbers a file (a Python list of str: ~100)
    assert index.nbytes() / len(index) < 60


def test_an_unwritable_cache_still_indexes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data"
    _tree(root)
    monkeypatch.setattr(idx, "_save", lambda *a: (_ for _ in ()).throw(OSError(30, "Read-only file system")))
    with pytest.warns(UserWarning, match="could not be cached"):
        index, _ = folder_index(root)
    assert [index.relative(i) for i in range(len(index))] == _reference(root)


def test_folder_images_share_one_index(tmp_path: Path) -> None:
    _tree(tmp_path)
    with warnings.catch_warnings(record=True):
        images = FolderImages(tmp_path, limit=3)
    assert len(images) == 3 and list(images.paths) == [str(tmp_path / r) for r in _reference(tmp_path)[:3]]
    assert images.subset([2, 0]).paths[0] == str(tmp_path / _reference(tmp_path)[2])
