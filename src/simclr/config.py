"""Run configuration: small dataclasses, YAML files, presets and command-line overrides.

Precedence, lowest first: built-in defaults < per-dataset defaults (PAPER.md) < ``--preset`` <
``--config FILE.yaml`` < command-line flags. ``resolve()`` fills every ``None`` ("auto") so the
``config.yaml`` written to the run directory is complete and re-runnable with ``--config``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from simclr.augment import CROP_INTERPOLATIONS, AugmentConfig
from simclr.data.sources import DATASETS
from simclr.errors import SimCLRError
from simclr.models.encoder import ARCHS, INPUT_NORMS, STEMS
from simclr.models.heads import HEADS
from simclr.optim import DEFAULT_BASE_LR, LR_SCHEDULES, OPTIMIZERS

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class DataConfig:
    dataset: str = "synthetic"
    data_dir: str | None = None
    image_size: int | None = None  # auto: the dataset's native size (224 for folders)
    limit: int | None = None
    workers: int = 2


@dataclass
class ModelConfig:
    arch: str = "resnet18"
    width_multiplier: float = 1.0
    stem: str = "auto"  # auto: cifar at <= 32 px, else imagenet
    head: str = "mlp"
    head_layers: int = 2  # 2 = SimCLR v1, 3 = v2
    head_bn: bool = True  # official code: BN after every head layer; False: paper's plain MLP
    head_out_bn: bool = True  # official code: BN after the last layer too; False: hidden layers only
    proj_dim: int = 128
    zero_init_residual: bool = True  # official code: each block's last BN gamma starts at 0; False: gamma 1
    input_norm: str = "none"  # official code: none; imagenet: ImageNet mean/std inside the encoder


@dataclass
class AugmentSection:
    color_strength: float | None = None  # auto: 0.5 for small-image datasets, 1.0 otherwise
    blur: bool | None = None  # auto: off at <= 32 px
    crop_scale: tuple[float, float] | None = None  # auto: (0.08, 1) (PAPER.md), per dataset where set
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    crop_interpolation: str = "bicubic"  # the paper; "bilinear" is torchvision's default
    flip_p: float = 0.5
    color_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    brightness: str = "multiplicative"  # official v2 / torchvision; "additive" is v1
    contrast: str = "gray-mean"  # torchvision; "channel-mean" is the official code
    on: str = "device"  # device: batched tensor ops on the training device; workers: torchvision PIL per image

    def to_augment_config(self) -> AugmentConfig:
        assert self.color_strength is not None and self.blur is not None and self.crop_scale is not None
        return AugmentConfig(
            crop=True,
            crop_scale=tuple(self.crop_scale),  # type: ignore[arg-type]
            crop_ratio=tuple(self.crop_ratio),  # type: ignore[arg-type]
            crop_interpolation=self.crop_interpolation,
            flip_p=self.flip_p,
            color_strength=self.color_strength,
            color_p=self.color_p,
            brightness=self.brightness,
            contrast=self.contrast,
            grayscale_p=self.grayscale_p,
            blur=self.blur,
            blur_p=self.blur_p,
            blur_sigma=tuple(self.blur_sigma),  # type: ignore[arg-type]
        )


@dataclass
class LossConfig:
    temperature: float | None = None  # auto: 0.5 for small-image datasets, 0.1 for folders


@dataclass
class OptimConfig:
    optimizer: str = "lars"
    lr: float | None = None  # absolute peak lr; auto: base_lr scaled by the batch size
    base_lr: float | None = None  # auto: lars 0.3, sgd 0.06, adamw 1e-3
    lr_scaling: str = "linear"  # linear: base x B/256; sqrt: base x sqrt(B) (use base 0.075)
    weight_decay: float = 1e-6
    momentum: float = 0.9
    warmup_epochs: float | None = None  # auto: 10% of the epochs, at most 10
    lr_schedule: str = "step"  # step: warm-up + cosine updated every step; epoch: held through each epoch
    decay_1d: bool = False  # True: weight decay also on biases and BN (torch's plain optimisers)


BN_VIEWS = ("joint", "per-view")


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 256
    max_steps: int | None = None
    precision: str = "fp32"
    channels_last: bool | None = None  # auto: on (1.2-1.3x faster on this CPU, BENCHMARKS.md)
    seed: int = 0
    device: str = "auto"
    log_every: int = 10
    chunk_size: int | None = None  # images per chunk for an exact large-batch gradient (off: whole batch)
    global_bn: bool | None = None  # auto: on when torchrun runs more than one rank
    bn_views: str = "joint"  # joint: BN statistics over both views at once (official code); per-view: each alone
    dist_backend: str | None = None  # auto: nccl on GPUs, gloo otherwise
    checkpoint_every_steps: int | None = None  # also checkpoint mid-epoch every N steps (default: epoch ends only)
    compile: bool = False  # torch.compile the training model (first steps slower while it compiles)
    save_every_epoch: bool = False  # also keep encoder-epochE.pt at every epoch end (for accuracy curves)


@dataclass
class PretrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentSection = field(default_factory=AugmentSection)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for section in d.values():
            for k, v in section.items():
                if isinstance(v, tuple):
                    section[k] = list(v)
        return d


def _section_types() -> dict[str, type]:
    return {f.name: f.default_factory for f in fields(PretrainConfig)}  # type: ignore[misc]


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def apply_overrides(cfg: PretrainConfig, overrides: dict[str, Any], source: str) -> None:
    """Set ``section.key`` values from a nested dict (YAML) or from ``{"section.key": v}``."""
    flat: dict[str, Any] = {}
    for k, v in overrides.items():
        if isinstance(v, dict):
            for kk, vv in v.items():
                flat[f"{k}.{kk}"] = vv
        else:
            flat[k] = v
    sections = _section_types()
    for key, value in flat.items():
        if "." not in key:
            raise SimCLRError(f"{source}: {key!r} must sit under a section: {', '.join(sections)}")
        sec_name, name = key.split(".", 1)
        if sec_name not in sections:
            raise SimCLRError(f"{source}: unknown section {sec_name!r}{_suggest(sec_name, list(sections))}")
        section = getattr(cfg, sec_name)
        names = [f.name for f in fields(section)]
        if name not in names:
            raise SimCLRError(f"{source}: unknown key {key!r}{_suggest(name, names)}")
        hint = typing.get_type_hints(type(section))[name]
        setattr(section, name, _typed(value, hint, key, source))


def _typed(value: Any, hint: Any, key: str, source: str) -> Any:
    """``value`` checked against the field's type (ints accepted for floats, lists for tuples)."""
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    what = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    bad = SimCLRError(f"{source}: {key} must be {what.get(hint, 'a pair of numbers')}, got {value!r}")
    if value is None:
        raise bad
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(typing.get_args(hint)):
            raise bad
        return tuple(_typed(v, float, key, source) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if not math.isfinite(value):
            raise SimCLRError(f"{source}: {key} must be a finite number, got {value!r}")
        return float(value)
    if hint is str and not isinstance(value, str):
        raise bad
    return value


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise SimCLRError(f"cannot read config {path}: {e.strerror}") from e
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise SimCLRError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from e
    if not isinstance(data, dict):
        raise SimCLRError(f"{path} must hold a mapping of sections (data, model, ...)")
    return data


def preset_names() -> list[str]:
    folder = resources.files("simclr") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict[str, Any]:
    names = preset_names()
    if name not in names:
        raise SimCLRError(f"unknown preset {name!r}{_suggest(name, names)}: choose one of {', '.join(names)}")
    data = yaml.safe_load((resources.files("simclr") / "presets" / f"{name}.yaml").read_text())
    data.pop("reported", None)  # documentation: the figure the paper reports for this recipe
    return data


def _check_choice(value: Any, options: tuple[str, ...] | list[str], flag: str) -> None:
    if value not in options:
        hint = _suggest(str(value), list(options))
        raise SimCLRError(f"{flag} {value!r} is not valid{hint}: choose one of {', '.join(options)}")


def resolve(cfg: PretrainConfig) -> PretrainConfig:
    """Fill the "auto" values from the dataset's defaults and validate every option."""
    d, a, lo, o, t = cfg.data, cfg.augment, cfg.loss, cfg.optim, cfg.train
    _check_choice(d.dataset, list(DATASETS), "--dataset")
    defaults = DATASETS[d.dataset]
    if d.image_size is None:
        d.image_size = defaults.image_size
    if a.color_strength is None:
        a.color_strength = defaults.color_strength
    if a.crop_scale is None:
        a.crop_scale = defaults.crop_scale or (0.08, 1.0)
    if cfg.model.stem == "auto" and defaults.stem is not None:
        cfg.model.stem = defaults.stem
    if a.blur is None:
        a.blur = d.image_size > 32
    if lo.temperature is None:
        lo.temperature = defaults.temperature
    if o.base_lr is None:
        o.base_lr = DEFAULT_BASE_LR.get(o.optimizer, 0.3)
    if o.warmup_epochs is None:
        o.warmup_epochs = min(10.0, 0.1 * t.epochs)
    validate(cfg)
    return cfg


def validate(cfg: PretrainConfig) -> None:
    d, m, a, lo, o, t = cfg.data, cfg.model, cfg.augment, cfg.loss, cfg.optim, cfg.train
    _check_choice(m.arch, list(ARCHS), "--arch")
    _check_choice(m.stem, ("auto", *STEMS), "--stem")
    _check_choice(m.input_norm, list(INPUT_NORMS), "--input-norm")
    _check_choice(m.head, HEADS, "--head")
    _check_choice(o.optimizer, OPTIMIZERS, "--optimizer")
    _check_choice(o.lr_scaling, ("linear", "sqrt"), "--lr-scaling")
    _check_choice(o.lr_schedule, LR_SCHEDULES, "--lr-schedule")
    _check_choice(t.bn_views, BN_VIEWS, "--bn-views")
    _check_choice(a.crop_interpolation, CROP_INTERPOLATIONS, "--crop-interpolation")
    _check_choice(t.precision, PRECISIONS, "--precision")
    _check_choice(a.on, ("device", "workers"), "--augment-on")
    if a.on == "workers" and (a.brightness != "multiplicative" or a.contrast != "gray-mean"):
        raise SimCLRError(
            "--augment-on workers uses torchvision's colour ops: brightness 'multiplicative' and contrast "
            "'gray-mean' only; use --augment-on device for the other variants"
        )
    if t.dist_backend is not None:
        _check_choice(t.dist_backend, ("gloo", "nccl"), "--dist-backend")
    checks = [
        (d.image_size is not None and d.image_size >= 8, f"--image-size must be >= 8, got {d.image_size}"),
        (d.workers >= 0, f"--workers must be >= 0, got {d.workers}"),
        (m.width_multiplier > 0, f"--width-multiplier must be > 0, got {m.width_multiplier}"),
        (m.proj_dim >= 1, f"--proj-dim must be >= 1, got {m.proj_dim}"),
        (m.head_layers >= 1, f"--head-layers must be >= 1, got {m.head_layers}"),
        (lo.temperature is not None and lo.temperature > 0, f"--temperature must be > 0, got {lo.temperature}"),
        (o.lr is None or (o.lr > 0 and math.isfinite(o.lr)), f"--lr must be > 0, got {o.lr}"),
        (o.base_lr is not None and o.base_lr > 0, f"--base-lr must be > 0, got {o.base_lr}"),
        (o.weight_decay >= 0, f"--weight-decay must be >= 0, got {o.weight_decay}"),
        (0 <= o.momentum < 1, f"--momentum must be in [0, 1), got {o.momentum}"),
        (o.warmup_epochs is not None and o.warmup_epochs >= 0, f"--warmup-epochs must be >= 0, got {o.warmup_epochs}"),
        (t.epochs >= 1, f"--epochs must be >= 1, got {t.epochs}"),
        (t.batch_size >= 2, f"--batch-size must be >= 2 (NT-Xent needs negatives), got {t.batch_size}"),
        (t.max_steps is None or t.max_steps >= 1, f"--max-steps must be >= 1, got {t.max_steps}"),
        (t.log_every >= 1, f"--log-every must be >= 1, got {t.log_every}"),
        (t.chunk_size is None or t.chunk_size >= 1, f"--chunk-size must be >= 1, got {t.chunk_size}"),
        (t.bn_views == "joint" or t.chunk_size is None,
         "--bn-views per-view cannot be combined with --chunk-size (chunks set their own BN batches)"),
        (t.checkpoint_every_steps is None or t.checkpoint_every_steps >= 1,
         f"--checkpoint-every-steps must be >= 1, got {t.checkpoint_every_steps}"),
    ]
    for ok, message in checks:
        if not ok:
            raise SimCLRError(message)
    a.to_augment_config().validate()
