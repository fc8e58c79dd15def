"""Run configuration: the dataclasses (``schema``), where values come from (``files``: presets, YAML,
overrides) and how "auto" values are filled and every value checked (``resolve``)."""

from simclr.config.files import apply_overrides, load_preset, load_yaml, preset_names, suggest
from simclr.config.resolve import BN_VIEWS, check_common, resolve, validate
from simclr.config.schema import (
    AugmentSection,
    DataConfig,
    DistillConfig,
    FinetuneConfig,
    LossConfig,
    ModelConfig,
    MonitorConfig,
    OptimConfig,
    PretrainConfig,
    RunTrain,
    TrainConfig,
    config_dict,
    sections,
)

__all__ = [
    "BN_VIEWS", "AugmentSection", "DataConfig", "DistillConfig", "FinetuneConfig", "LossConfig", "ModelConfig",
    "MonitorConfig", "OptimConfig", "PretrainConfig", "RunTrain", "TrainConfig", "apply_overrides", "load_preset",
    "load_yaml", "check_common", "preset_names", "resolve", "config_dict", "sections", "suggest", "validate",
]
