"""A data format is one module and its @register_source: a source defined here, in the test file, is a
--dataset like the shipped ones (listed, validated, loaded, trained on)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from simclr import pretrain
from simclr.data.images import ArrayImages, Images
from simclr.data.registry import SOURCES, DatasetDefaults, hold_out, register_source
from simclr.data.sources import DATASETS, load_images
from tests.helpers import losses, tiny_config


@pytest.fixture
def stripes() -> object:
    @register_source("stripes", DatasetDefaults(16, 0.5, 0.5), "test: striped squares")
    def load(split: str, data_dir: str | None, limit: int | None, seed: int, image_size: int | None) -> Images:
        g = torch.Generator().manual_seed(seed)
        images = torch.randint(0, 256, (80, 3, 16, 16), dtype=torch.uint8, generator=g)
        return hold_out(ArrayImages(images, torch.arange(80) % 4, ["a", "b", "c", "d"]), split, limit)

    yield load
    del SOURCES["stripes"]


def test_a_registered_source_is_a_dataset(stripes: object, tmp_path: Path) -> None:
    assert "stripes" in DATASETS and DATASETS["stripes"].image_size == 16
    assert len(load_images("stripes", "pretrain")) == 80
    test = load_images("stripes", "test")
    assert len(test) == 16 and test.labels.tolist() == [i % 4 for i in range(4, 80, 5)]
    pretrain(tiny_config(**{"data.dataset": "stripes", "data.limit": None, "data.image_size": None}), tmp_path / "r")
    assert [s for s, _ in losses(tmp_path / "r")] == [1, 2, 3, 4]  # 80 images, batch 32: 2 steps x 2 epochs
    with pytest.raises(ValueError, match="registered already"):
        register_source("stripes", DatasetDefaults(16, 0.5, 0.5))(lambda *a: None)  # type: ignore[arg-type]
