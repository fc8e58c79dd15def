"""Folder datasets: labels from subfolders, bad files skipped with a named warning, every
image mode converted to RGB."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simclr.data.folder import FolderImages, scan_folder, to_rgb
from simclr.errors import SimCLRError


def write_png(path: Path, img: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def rgb(seed: int, side: int = 12) -> Image.Image:
    arr = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return Image.fromarray(arr)


def test_labels_from_first_level_subfolders(tmp_path: Path) -> None:
    for cls in ("dog", "cat"):
        for i in range(3):
            write_png(tmp_path / cls / f"{i}.png", rgb(i))
    write_png(tmp_path / "cat" / "nested" / "deep.png", rgb(9))  # deeper: still 'cat'
    paths, labels, classes = scan_folder(tmp_path)
    assert classes == ["cat", "dog"]
    assert len(paths) == 7
    for p, y in zip(paths, labels, strict=False):
        assert Path(p).relative_to(tmp_path).parts[0] == classes[y]


def test_flat_folder_is_unlabelled(tmp_path: Path) -> None:
    for i in range(3):
        write_png(tmp_path / f"{i}.png", rgb(i))
    _, labels, classes = scan_folder(tmp_path)
    assert classes == [] and labels == [-1, -1, -1]


def test_bad_files_are_skipped_and_named(tmp_path: Path) -> None:
    good = [write_png(tmp_path / "a" / f"{i}.png", rgb(i)) for i in range(2)]
    (tmp_path / "a" / "zero.png").write_bytes(b"")
    (tmp_path / "a" / "text.jpg").write_text("this is not an image")
    (tmp_path / "a" / "garbage.png").write_bytes(os.urandom(300))
    (tmp_path / "a" / "notes.txt").write_text("ignored: not an image extension")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths, _, _ = scan_folder(tmp_path)
    messages = " ".join(str(w.message) for w in caught)
    for name in ("zero.png", "text.jpg", "garbage.png"):
        assert name in messages
    assert "notes.txt" not in messages
    assert sorted(paths) == sorted(str(p) for p in good)


def test_truncated_file_is_skipped_at_decode_time(tmp_path: Path) -> None:
    write_png(tmp_path / "0.png", rgb(0, 64))
    full = write_png(tmp_path / "1.png", rgb(1, 64))
    data = full.read_bytes()
    full.write_bytes(data[: len(data) // 2])  # the header survives, the pixels do not
    write_png(tmp_path / "2.png", rgb(2, 64))
    images = FolderImages(tmp_path)
    assert len(images) == 3  # the header scan cannot tell
    with pytest.warns(UserWarning, match="1.png"):
        img, _ = images.load(1)
    # the next good image stands in, and the bad one is not retried
    assert np.array_equal(np.asarray(img), np.asarray(rgb(2, 64)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images.load(1)


def test_modes_are_converted(tmp_path: Path) -> None:
    gray = Image.fromarray(np.full((4, 4), 100, np.uint8), mode="L")
    assert np.asarray(to_rgb(gray)).tolist() == np.full((4, 4, 3), 100).tolist()
    rgba = Image.fromarray(np.dstack([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8)]), "RGBA")
    assert (np.asarray(to_rgb(rgba)) == 255).all()  # fully transparent over white
    pal = rgb(0).convert("P")
    assert to_rgb(pal).mode == "RGB"
    sixteen = Image.fromarray(np.full((4, 4), 65535, np.uint16))
    path = write_png(tmp_path / "16bit.png", sixteen)
    with Image.open(path) as im:
        assert im.mode.startswith("I")
        out = np.asarray(to_rgb(im))
    assert out.shape == (4, 4, 3) and (out == 255).all()


def test_empty_and_missing_dirs(tmp_path: Path) -> None:
    with pytest.raises(SimCLRError, match="no readable images"):
        scan_folder(tmp_path)
    with pytest.raises(SimCLRError, match="does not exist"):
        scan_folder(tmp_path / "nope")


def test_unreadable_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "locked"
    write_png(d / "0.png", rgb(0))
    if os.geteuid() == 0:  # root reads any directory: make the permission check fail instead
        monkeypatch.setattr("simclr.data.folder.os.access", lambda *a, **k: False)
    d.chmod(0)
    try:
        with pytest.raises(SimCLRError, match="not readable"):
            scan_folder(d)
    finally:
        d.chmod(0o755)


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (a decompression bomb's calling card)."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + b"\x00\x00\x00\x00IEND\xaeB`\x82")


def test_decompression_bombs_and_symlink_loops_are_skipped(tmp_path: Path) -> None:
    write_png(tmp_path / "ok.png", rgb(0))
    (tmp_path / "bomb.png").write_bytes(_png_claiming(100_000, 100_000))
    (tmp_path / "big.png").write_bytes(_png_claiming(10_000, 10_000))  # 100 MP: over PIL's 89.5 MP limit
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")  # a link to itself
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "up").symlink_to(tmp_path, target_is_directory=True)  # a directory loop
    with pytest.warns(UserWarning) as caught:
        paths, _, _ = scan_folder(tmp_path)
    named = " ".join(str(w.message) for w in caught)
    assert "bomb.png" in named and "DecompressionBomb" in named and "loop.png" in named and "big.png" in named
    assert [Path(p).name for p in paths] == ["ok.png"]  # the directory loop is not followed


def test_loader_workers_persist_across_epochs_and_draw_each_epochs_views(tmp_path: Path) -> None:
    """The workers are forked once for the run, not once per epoch; each epoch's crops are still that
    epoch's (the same as a fresh loader's, and not the previous epoch's)."""
    import torch

    from simclr.augment import AugmentConfig
    from simclr.data.loaders import PretrainLoader

    for i in range(8):
        write_png(tmp_path / ("a" if i % 2 else "b") / f"{i}.png", rgb(i, side=20))
    images = FolderImages(tmp_path)
    forks: list[int] = []
    os.register_at_fork(after_in_parent=lambda: forks.append(1))

    def loader() -> PretrainLoader:
        return PretrainLoader(images, 4, AugmentConfig(blur=False), 12, seed=0, device=torch.device("cpu"), workers=2)

    kept = loader()
    epochs = [[b.view1 for b in kept.batches(e)] for e in range(3)]
    assert len(forks) == 2  # two workers, forked once
    for e in (1, 2):
        fresh = [b.view1 for b in loader().batches(e)]
        assert all(torch.equal(a, b) for a, b in zip(epochs[e], fresh, strict=True))
        assert not torch.equal(epochs[e][0], epochs[e - 1][0])
    resumed = [b.view1 for b in kept.batches(1, start=1)]  # mid-epoch, with the same workers
    assert torch.equal(resumed[0], epochs[1][1])
