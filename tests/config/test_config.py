"""Per-dataset defaults filled in by ``resolve``; explicit values always win."""

from __future__ import annotations

import pytest

from simclr import PretrainConfig
from simclr.config import apply_overrides, load_preset, preset_names, resolve
from simclr.errors import SimCLRError


def resolved(**overrides: object) -> PretrainConfig:
    cfg = PretrainConfig()
    apply_overrides(cfg, dict(overrides), "test")
    return resolve(cfg)


def test_paper_defaults_for_small_image_datasets() -> None:
    cfg = resolved(**{"data.dataset": "fashion-mnist"})
    assert cfg.data.image_size == 28 and cfg.model.stem == "auto"
    assert cfg.augment.color_strength == 0.5 and tuple(cfg.augment.crop_scale) == (0.08, 1.0)
    assert cfg.augment.blur is False and cfg.loss.temperature == 0.5


def test_synthetic_quickstart_defaults() -> None:
    cfg = resolved(**{"data.dataset": "synthetic"})
    assert cfg.model.stem == "imagenet"
    assert cfg.augment.color_strength == 1.0 and tuple(cfg.augment.crop_scale) == (0.25, 1.0)


def test_explicit_values_override_dataset_defaults() -> None:
    cfg = resolved(**{"data.dataset": "synthetic", "model.stem": "cifar", "augment.crop_scale": [0.08, 1.0],
                      "augment.color_strength": 0.5})
    assert cfg.model.stem == "cifar"
    assert tuple(cfg.augment.crop_scale) == (0.08, 1.0) and cfg.augment.color_strength == 0.5


def test_augment_on_is_checked() -> None:
    assert resolved().augment.on == "device"
    assert resolved(**{"augment.on": "workers"}).augment.on == "workers"
    with pytest.raises(SimCLRError, match="--augment-on 'gpu' is not valid"):
        resolved(**{"augment.on": "gpu"})
    with pytest.raises(SimCLRError, match="augment-on device"):
        resolved(**{"augment.on": "workers", "augment.brightness": "additive"})


def test_schedule_decay_and_interpolation_choices_are_checked() -> None:
    cfg = resolved(**{"optim.lr_schedule": "epoch", "optim.decay_1d": True, "augment.crop_interpolation": "bilinear"})
    assert cfg.augment.to_augment_config().crop_interpolation == "bilinear"
    assert resolved().optim.lr_schedule == "step" and not resolved().optim.decay_1d  # the paper's defaults
    assert resolved().augment.crop_interpolation == "bicubic"
    with pytest.raises(SimCLRError, match="--lr-schedule 'epochs' is not valid.*did you mean 'epoch'"):
        resolved(**{"optim.lr_schedule": "epochs"})
    with pytest.raises(SimCLRError, match="--crop-interpolation 'bilinaer' is not valid.*bilinear"):
        resolved(**{"augment.crop_interpolation": "bilinaer"})
    assert resolved().model.input_norm == "none"  # the official code does not normalise
    assert resolved(**{"model.input_norm": "imagenet"}).model.input_norm == "imagenet"
    with pytest.raises(SimCLRError, match="--input-norm 'imagenett' is not valid.*did you mean 'imagenet'"):
        resolved(**{"model.input_norm": "imagenett"})
    assert resolved().train.bn_views == "joint"  # the official code: one forward of both views
    with pytest.raises(SimCLRError, match="--bn-views 'perview' is not valid.*did you mean 'per-view'"):
        resolved(**{"train.bn_views": "perview"})
    with pytest.raises(SimCLRError, match="--bn-views per-view cannot be combined with --chunk-size"):
        resolved(**{"train.bn_views": "per-view", "train.chunk_size": 8})


def test_every_preset_resolves() -> None:
    assert {"cifar10-paper", "imagenet-paper", "fmnist-fast"} <= set(preset_names())
    for name in preset_names():
        cfg = PretrainConfig()
        apply_overrides(cfg, load_preset(name), name)
        resolve(cfg)


def test_every_augmentation_op_can_be_switched_off() -> None:
    """What the composition study (benchmarks/reproduce/composition.py) needs: each op on or off alone."""
    assert resolved().augment.to_augment_config().crop
    a = resolved(**{"augment.crop": False, "augment.flip_p": 0.0, "augment.color_p": 0.0,
                    "augment.grayscale_p": 0.0, "augment.blur": False}).augment.to_augment_config()
    assert (a.crop, a.flip_p, a.color_p, a.grayscale_p, a.blur) == (False, 0.0, 0.0, 0.0, False)


def test_order_and_identity_view_come_from_a_config_and_are_checked() -> None:
    """What the composition study's ordered pairs and one-branch views need (augment.order, identity_view)."""
    order = ["blur", "crop", "flip", "color", "grayscale"]
    a = resolved(**{"augment.order": order, "augment.identity_view": True}).augment.to_augment_config()
    assert a.order == tuple(order) and a.identity_view
    assert resolved().augment.to_augment_config().order == ("crop", "flip", "color", "grayscale", "blur")
    with pytest.raises(SimCLRError, match="augment.order must be a list of names"):
        resolved(**{"augment.order": "crop"})
    with pytest.raises(SimCLRError, match="name each of crop, flip, color, grayscale, blur once"):
        resolved(**{"augment.order": ["crop", "flip", "color", "blur"]})
