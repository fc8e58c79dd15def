"""Folder datasets: labels from subfolders, bad files skipped with a named warning (once), every
image mode converted to RGB."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, JpegImagePlugin

from simclr.data.folder import FolderImages, draft_size, scan_folder, to_rgb
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


def test_bad_files_are_named_once_and_left_out_of_the_next_run(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # The walk opens no file (issue #31: 0.7 ms a file at every start): a zero-byte file is left out from
    # its size, a file that is not an image is found when it is decoded. (Before, every header was read at
    # scan time and these files were named there.)
    good = [write_png(tmp_path / "a" / f"{i}.png", rgb(i)) for i in range(2)]
    (tmp_path / "a" / "zero.png").write_bytes(b"")
    (tmp_path / "a" / "text.jpg").write_text("this is not an image")
    (tmp_path / "a" / "garbage.png").write_bytes(os.urandom(300))
    (tmp_path / "a" / "notes.txt").write_text("ignored: not an image extension")
    with monkeypatch.context() as m:
        m.setattr("PIL.Image.open", lambda *a, **k: pytest.fail("the walk opened a file"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            paths, _, _ = scan_folder(tmp_path)
    messages = " ".join(str(w.message) for w in caught)
    assert "zero.png: empty file" in messages and "notes.txt" not in messages
    assert [Path(p).name for p in paths] == ["0.png", "1.png", "garbage.png", "text.jpg"]
    # two processes (loader workers) meet the bad files: each is named once
    first, second = FolderImages(tmp_path), FolderImages(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for images in (first, second):
            for i in range(len(images)):
                images.load(i)
    named = [str(w.message) for w in caught if "skipping" in str(w.message)]
    assert len(named) == 2 and any("garbage.png" in n for n in named) and any("text.jpg" in n for n in named)
    # the next run leaves them out and says so
    again = FolderImages(tmp_path)
    assert sorted(again.paths) == sorted(str(p) for p in good)
    assert "2 known not to decode left out" in again.index_line
    # a bad file replaced by a good one is tried again
    write_png(tmp_path / "a" / "garbage.png", rgb(7))
    assert "garbage.png" in [Path(p).name for p in FolderImages(tmp_path).paths]


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
        monkeypatch.setattr("simclr.data.index.os.access", lambda *a, **k: False)
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
        images = FolderImages(tmp_path)
    assert "loop.png" in " ".join(str(w.message) for w in caught)  # the walk names the link loop
    assert sorted(Path(p).name for p in images.paths) == ["big.png", "bomb.png", "ok.png"]  # no directory loop
    with pytest.warns(UserWarning) as caught:  # the bombs are refused when decoded, never decoded
        for i in range(len(images)):
            img, _ = images.load(i)
            assert img.size == (12, 12)
    named = " ".join(str(w.message) for w in caught)
    assert "bomb.png" in named and "DecompressionBomb" in named and "big.png" in named


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


def test_draft_size_is_the_largest_reduction_that_covers_the_smallest_crop() -> None:
    assert draft_size(4000, 3000, 2000, 224) == (500, 375)  # 2000 / 8 = 250 >= 224
    assert draft_size(4000, 3000, 1000, 224) == (1000, 750)  # 1000 / 4 = 250; / 8 = 125 < 224
    assert draft_size(1001, 801, 448, 224) == (501, 401)  # / 2, rounded up
    assert draft_size(500, 375, 447, 224) is None  # no reduction keeps 224 px of crop
    assert draft_size(500, 375, 100, 224) is None


def _smooth_photo(w: int, h: int, seed: int) -> Image.Image:
    low = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8))
    return low.resize((w, h), Image.BICUBIC)


def _loader_views(root: Path, size: int, scale: tuple[float, float]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """label -> the two views the folder loader makes of that image at epoch 0 (crops only: no flip, colour, blur)."""
    from simclr.augment import AugmentConfig
    from simclr.data.loaders import PretrainLoader

    aug = AugmentConfig(crop_scale=scale, flip_p=0.0, color_p=0.0, grayscale_p=0.0, blur=False)
    loader = PretrainLoader(FolderImages(root), 2, aug, size, 7, torch.device("cpu"), workers=0)
    out = {}
    for batch in loader.batches(0):
        for v1, v2, y in zip(batch.view1, batch.view2, batch.labels, strict=True):
            out[int(y)] = ((v1 * 255).round().numpy(), (v2 * 255).round().numpy())
    return out


def _reference_views(path: Path, index: int, size: int, scale: tuple[float, float]) -> list[np.ndarray]:
    """The two crops decoded in full, cropped, then resized: the exact path."""
    from simclr.augment import sample_crop_boxes
    from simclr.data.seeds import mix_seed

    with Image.open(path) as im:
        img = im.convert("RGB")
    g = torch.Generator().manual_seed(mix_seed(7, 0, index))
    boxes = sample_crop_boxes(2, img.size[1], img.size[0], scale, (3 / 4, 4 / 3), g).tolist()
    return [np.asarray(img.crop((x, y, x + w, y + h)).resize((size, size), Image.BICUBIC), dtype=np.float32)
            .transpose(2, 0, 1) for y, x, h, w in boxes]


def test_big_jpegs_are_decoded_reduced_into_the_same_views(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # phone-sized photos, large crops: decoded at 1/4 or 1/8 of their size (JPEG DCT scaling), the views
    # within a few grey levels of the exact full decode + crop + resize; a wrong box would be far off
    for i, cls in enumerate(("a", "b")):
        write_png(tmp_path / cls / "photo.jpg", _smooth_photo(2400, 1800, i))
    drafts: list = []
    real = JpegImagePlugin.JpegImageFile.draft
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft",
                        lambda self, mode, size: drafts.append(size) or real(self, mode, size))
    views = _loader_views(tmp_path, 64, (0.5, 1.0))
    assert len(drafts) == 2 and all(s[0] <= 600 for s in drafts)  # both reduced at least 4x
    for label, cls in enumerate(("a", "b")):
        ref = _reference_views(tmp_path / cls / "photo.jpg", label, 64, (0.5, 1.0))
        for got, want in zip(views[label], ref, strict=True):
            assert np.abs(got - want).mean() < 3.0, np.abs(got - want).mean()
        wrong = np.abs(views[label][0] - ref[1]).mean()  # the other crop of the same image
        assert wrong > 3 * np.abs(views[label][0] - ref[0]).mean()


def test_small_images_and_pngs_keep_the_exact_path(tmp_path: Path) -> None:
    write_png(tmp_path / "a" / "small.jpg", _smooth_photo(500, 375, 0))  # crops too small to reduce
    write_png(tmp_path / "b" / "big.png", _smooth_photo(2400, 1800, 1))  # not a JPEG: decoded in full
    views = _loader_views(tmp_path, 64, (0.08, 1.0))
    for label, name in enumerate(("a/small.jpg", "b/big.png")):
        ref = _reference_views(tmp_path / name, label, 64, (0.08, 1.0))
        for got, want in zip(views[label], ref, strict=True):
            assert np.array_equal(got, want)
