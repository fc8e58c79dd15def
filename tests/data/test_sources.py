"""Dataset registry: synthetic data, IDX files, limits, unknown names."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from simclr.data.sources import DATASETS, load_images
from simclr.data.synthetic import CLASSES, generate
from simclr.errors import SimCLRError


def test_synthetic_is_deterministic_labelled_and_split() -> None:
    a, ya = generate(300, "train", seed=1)
    b, yb = generate(300, "train", seed=1)
    c, _ = generate(300, "train", seed=2)
    t, _ = generate(300, "test", seed=1)
    assert a.shape == (300, 3, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, b) and torch.equal(ya, yb)
    assert not torch.equal(a, c) and not torch.equal(a, t)
    assert set(ya.tolist()) == set(range(len(CLASSES)))  # every class appears
    # a prefix of a larger draw is the smaller draw: --limit picks the first N
    big, ybig = generate(1000, "train", seed=1)
    assert torch.equal(big[:300], a) and torch.equal(ybig[:300], ya)


def test_synthetic_nuisances_vary_within_a_class() -> None:
    x, y = generate(400, "train", seed=0)
    same = x[y == 0].float()
    # colour/background/position differ: per-image mean colours spread widely within a class
    assert same.mean((2, 3)).std(0).min() > 10


def write_idx(path: Path, arr: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_mnist_family_reads_idx_gz(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = np.arange(7) % 10
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", imgs)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    ds = load_images("fashion-mnist", "train", str(tmp_path), limit=5)
    assert len(ds) == 5
    assert torch.equal(ds.images[:, 0], torch.from_numpy(imgs[:5]))
    assert ds.labels.tolist() == labels[:5].tolist()
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot" and len(ds.classes) == 10
    assert load_images("mnist", "train", str(tmp_path)).classes[3] == "3 - three"


def test_truncated_idx(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((3, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3))
    raw = gzip.decompress((tmp_path / "train-images-idx3-ubyte.gz").read_bytes())
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(raw[:-100])
    with pytest.raises(SimCLRError, match="truncated"):
        load_images("mnist", "train", str(tmp_path))


def test_unknown_dataset_and_bad_limit() -> None:
    with pytest.raises(SimCLRError, match="synthetic"):
        load_images("imagenet-1k", "train")
    with pytest.raises(SimCLRError, match="--limit"):
        load_images("synthetic", "train", limit=0)


def test_defaults_follow_the_paper() -> None:
    assert DATASETS["cifar10"].temperature == 0.5 and DATASETS["cifar10"].color_strength == 0.5
    assert DATASETS["folder"].temperature == 0.1 and DATASETS["folder"].color_strength == 1.0
    assert DATASETS["folder"].image_size == 224
