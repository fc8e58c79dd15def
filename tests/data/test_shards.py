"""WebDataset shards: written from a folder, read back image for image, pretrained on with an exact
resume, evaluated and embedded; bad shards and samples named and skipped, bad patterns one line."""

from __future__ import annotations

import io
import json
import re
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simclr import pretrain
from simclr.cli.main import main
from simclr.data.folder import FolderImages
from simclr.data.shards import ShardImages, expand_pattern, iter_members, shard_index, write_shards
from simclr.data.sources import load_images
from simclr.errors import SimCLRError
from tests.helpers import losses, tiny_config


def _folder(root: Path, per_class: int = 20) -> Path:
    rng = np.random.default_rng(0)
    for c in ("cat", "dog", "eel"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, (18 + i % 5, 20, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / c / f"{i:02d}.png")
    return root


def _shards(tmp_path: Path, per_shard: int = 16) -> tuple[FolderImages, str]:
    images = FolderImages(_folder(tmp_path / "imgs"))
    samples = [(images.paths[i], int(images.labels[i]), images.classes[int(images.labels[i])])
                for i in range(len(images))]
    written = write_shards(samples, tmp_path / "shards", per_shard)
    return images, f"{tmp_path / 'shards'}/shard-{{000000..{len(written) - 1:06d}}}.tar"


def test_expand_pattern(tmp_path: Path) -> None:
    assert expand_pattern("s/a-{008..011}.tar") == ["s/a-008.tar", "s/a-009.tar", "s/a-010.tar", "s/a-011.tar"]
    assert expand_pattern("{x,y}/{1..2}.tar") == ["x/1.tar", "x/2.tar", "y/1.tar", "y/2.tar"]
    for name in ("b.tar", "a.tar", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    assert expand_pattern(str(tmp_path)) == [str(tmp_path / "a.tar"), str(tmp_path / "b.tar")]


def test_shards_hold_the_folder_image_for_image(tmp_path: Path) -> None:
    images, pattern = _shards(tmp_path)
    shards = ShardImages(pattern)
    assert len(shards) == len(images) == 60 and shards.classes == images.classes == ["cat", "dog", "eel"]
    assert shards.labels.tolist() == images.labels.tolist()
    for i in (0, 17, 59):
        a, b = shards.load(i)[0], images.load(i)[0]
        assert np.array_equal(np.asarray(a), np.asarray(b))
    first = expand_pattern(pattern)[0]
    assert list(iter_members(first))[:3] == ["000000000.png", "000000000.cls", "000000000.json"]
    assert shards.names[1] == f"{first}:000000001"
    # the same index again, from the cache
    _, line = shard_index(pattern)
    assert "read from the cache" in line
    # the split rule of a source without its own: every 5th sample is the test split
    test = load_images("webdataset", "test", pattern)
    assert len(test) == 12 and test.labels.tolist() == images.labels[4::5].tolist()


def test_pretraining_on_shards_resumes_at_the_exact_sample(tmp_path: Path) -> None:
    _, pattern = _shards(tmp_path)
    settings = {"data.dataset": "webdataset", "data.data_dir": pattern, "data.limit": None, "data.workers": 0,
                "monitor.online_probe": False}
    full = tmp_path / "full"
    pretrain(tiny_config(**settings), full)  # 60 images, batch 32: 1 step an epoch, 2 epochs
    part = tmp_path / "part"
    pretrain(tiny_config(**{**settings, "train.batch_size": 16, "train.max_steps": 5}), part)
    pretrain(tiny_config(**{**settings, "train.batch_size": 16}), part, resume=True)  # 3 steps an epoch
    whole = tmp_path / "whole"
    pretrain(tiny_config(**{**settings, "train.batch_size": 16}), whole)
    a, b = losses(whole), losses(part)
    assert [s for s, _ in a] == [s for s, _ in b] == list(range(1, 7))
    assert [la for _, la in a] == pytest.approx([lb for _, lb in b], rel=1e-5)
    assert losses(full)  # the other batch size trains too


def test_evaluation_and_embedding_read_shards(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _, pattern = _shards(tmp_path)
    run = tmp_path / "run"
    pretrain(tiny_config(**{"monitor.online_probe": False}), run)
    out = tmp_path / "knn.json"
    assert main(["knn", "--run", str(run), "--dataset", "webdataset", "--data-dir", pattern, "--out", str(out),
                 "--k", "5", "--device", "cpu"]) == 0
    result = json.loads(out.read_text())
    assert result["dataset"] == "webdataset" and 0 <= result["top1"] <= 1
    emb = tmp_path / "e.npz"
    assert main(["embed", "--run", str(run), "--dataset", "webdataset", "--data-dir", pattern, "--out",
                 str(emb), "--device", "cpu"]) == 0
    with np.load(emb) as z:
        assert len(z["paths"]) == 60 and str(z["paths"][0]).endswith(".tar:000000000")


def _tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def _png_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_bad_shards_and_samples_are_named_and_skipped(tmp_path: Path) -> None:
    good = [(f"k{i}.png", _png_bytes(i)) for i in range(6)] + [("k0.cls", b"1")]
    _tar(tmp_path / "s-0.tar", [*good[:2], ("nolabel.cls", b"3"), *good[2:]])  # a sample without an image
    _tar(tmp_path / "s-1.tar", [(f"t{i}.png", _png_bytes(10 + i)) for i in range(4)])
    data = (tmp_path / "s-1.tar").read_bytes()
    (tmp_path / "s-1.tar").write_bytes(data[: 512 * 5])  # cut in the third member's data
    _tar(tmp_path / "s-2.tar", [("g.png", b"not a png at all"), ("h.png", _png_bytes(20))])
    with pytest.warns(UserWarning) as caught:
        shards = ShardImages(str(tmp_path / "s-{0..2}.tar"))
    named = " ".join(str(w.message) for w in caught)
    assert "s-0.tar:nolabel: no image" in named and "s-1.tar: truncated" in named
    keys = [shards.index.key(i) for i in range(len(shards))]
    assert keys == ["k0", "k1", "k2", "k3", "k4", "k5", "t0", "t1", "g", "h"]  # t2 was cut: left out
    with pytest.warns(UserWarning, match="s-2.tar:g"):  # a sample that does not decode: named, the next used
        img, _ = shards.load(keys.index("g"))
    assert np.array_equal(np.asarray(img), np.asarray(Image.open(io.BytesIO(_png_bytes(20))).convert("RGB")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shards.load(keys.index("g"))  # not tried again


@pytest.mark.parametrize(("pattern", "message"), [
    ("{tmp}/none-{0..3}.tar", "no such shard .*none-0.tar \\(and 3 more\\)"),
    ("{tmp}/empty", "no shard matches"),
    ("{tmp}/x.tar.gz", "must be uncompressed .tar"),
    ("{tmp}/text.tar", "hold no sample with an image"),
])
def test_a_bad_pattern_is_one_line_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture, pattern: str,
                                                   message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "x.tar.gz").write_bytes(b"\x1f\x8b")
    _tar(tmp_path / "text.tar", [("a.txt", b"hello")])
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["pretrain", "--dataset", "webdataset", "--data-dir", pattern.replace("{tmp}", str(tmp_path)),
                     "--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert re.search(message, err[0]), err[0]
    assert not out.exists()
    with pytest.raises(SimCLRError):
        ShardImages(pattern.replace("{tmp}", str(tmp_path)))


def test_the_shards_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _folder(tmp_path / "imgs", per_class=5)
    assert main(["shards", "--data-dir", str(tmp_path / "imgs"), "--out", str(tmp_path / "sh"),
                 "--per-shard", "4"]) == 0
    err = capsys.readouterr().err
    assert "15 images in 4 shards" in err and "shard-{000000..000003}.tar" in err
    assert "\n15/15 images\n" in err and "\r" not in err  # not a terminal: a line each, no carriage returns
    assert len(ShardImages(f"{tmp_path}/sh/shard-{{000000..000003}}.tar")) == 15
    assert main(["shards", "--data-dir", str(tmp_path / "imgs"), "--out", str(tmp_path / "sh")]) == 2
