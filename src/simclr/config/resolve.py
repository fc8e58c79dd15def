"""Filling the "auto" values of a configuration from the dataset's defaults, and validating every option
before any work starts (type, range, choice, and combinations that cannot run)."""

from __future__ import annotations

import importlib.util
import math
from typing import Any

from simclr.augment import CROP_INTERPOLATIONS
from simclr.config.files import suggest
from simclr.config.schema import LOGGER_NAMES, PretrainConfig
from simclr.data.sources import DATASETS
from simclr.errors import SimCLRError
from simclr.losses import LOSS_KINDS, LOSSES
from simclr.models.backbones import STEM_WORDS, check_arch, family, resolve_stem, wants_adamw
from simclr.models.encoder import INPUT_NORMS, STEMS
from simclr.models.heads import HEADS
from simclr.optim import DEFAULT_BASE_LR, LR_SCHEDULES, OPTIMIZERS
from simclr.runtime import PRECISION_CHOICES

BN_VIEWS = ("joint", "per-view")


def _check_choice(value: Any, options: tuple[str, ...] | list[str], flag: str) -> None:
    if value not in options:
        hint = suggest(str(value), list(options))
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
    if cfg.model.stem == "auto" and defaults.stem is not None and family(cfg.model.arch) == "simclr":
        cfg.model.stem = defaults.stem
    transformer = wants_adamw(cfg.model.arch)  # MoCo v3's recipe for ViTs (and ConvNeXt): AdamW, 1.5e-4 x B/256
    if o.optimizer is None:
        o.optimizer = "adamw" if transformer else "lars"
    if o.weight_decay is None:
        o.weight_decay = 0.1 if transformer and o.optimizer == "adamw" else 1e-6
    if a.blur is None:
        a.blur = d.image_size > 32
    if lo.temperature is None:
        lo.temperature = defaults.temperature
    if o.base_lr is None:
        o.base_lr = 1.5e-4 if transformer and o.optimizer == "adamw" else DEFAULT_BASE_LR.get(o.optimizer, 0.3)
    if o.warmup_epochs is None:
        o.warmup_epochs = min(10.0, 0.1 * t.epochs)
    validate(cfg)
    return cfg


def check_loggers(spec: str) -> None:
    """``--logger``: known names, and the optional libraries they need installed (one line before any work)."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if names in (["auto"], ["none"]):
        return
    bad = [n for n in names if n not in LOGGER_NAMES]
    if bad or not names:
        raise SimCLRError(f"--logger {spec!r}: choose auto, none, or any of {', '.join(LOGGER_NAMES)} "
                          "(comma-separated)")
    for name in ("wandb", "mlflow"):
        if name in names and importlib.util.find_spec(name) is None:
            raise SimCLRError(f"--logger {name} needs {name}: pip install 'simclr[{name}]'")


def check_common(cfg: Any) -> None:
    """The checks every training command's config shares (``data.workers``, the ``RunTrain`` fields of
    ``train``, and the lr, momentum, weight decay and warm-up of ``optim``); one line for the first failure."""
    d, o, t = cfg.data, cfg.optim, cfg.train
    _check_choice(t.precision, PRECISION_CHOICES, "--precision")
    if t.dist_backend is not None:
        _check_choice(t.dist_backend, ("gloo", "nccl"), "--dist-backend")
    check_loggers(t.logger)
    checks = [
        (d.workers >= 0, f"--workers must be >= 0, got {d.workers}"),
        (o.lr is None or (o.lr > 0 and math.isfinite(o.lr)), f"--lr must be > 0, got {o.lr}"),
        (o.base_lr is not None and o.base_lr > 0, f"--base-lr must be > 0, got {o.base_lr}"),
        (o.weight_decay is not None and o.weight_decay >= 0, f"--weight-decay must be >= 0, got {o.weight_decay}"),
        (0 <= o.momentum < 1, f"--momentum must be in [0, 1), got {o.momentum}"),
        (o.warmup_epochs is not None and o.warmup_epochs >= 0, f"--warmup-epochs must be >= 0, got {o.warmup_epochs}"),
        (t.epochs is None or t.epochs >= 1, f"--epochs must be >= 1, got {t.epochs}"),
        (t.batch_size is None or t.batch_size >= 1, f"--batch-size must be >= 1, got {t.batch_size}"),
        (t.max_steps is None or t.max_steps >= 1, f"--max-steps must be >= 1, got {t.max_steps}"),
        (t.log_every >= 1, f"--log-every must be >= 1, got {t.log_every}"),
        (t.checkpoint_every_steps is None or t.checkpoint_every_steps >= 1,
         f"--checkpoint-every-steps must be >= 1, got {t.checkpoint_every_steps}"),
    ]
    for ok, message in checks:
        if not ok:
            raise SimCLRError(message)


def validate(cfg: PretrainConfig) -> None:
    d, m, a, lo, o, t, mo = cfg.data, cfg.model, cfg.augment, cfg.loss, cfg.optim, cfg.train, cfg.monitor
    check_arch(m.arch)
    _check_choice(m.stem, ("auto", *STEMS), "--stem")
    if family(m.arch) != "simclr":
        if m.width_multiplier != 1:
            raise SimCLRError(f"--width-multiplier is simclr's ResNet's; {m.arch} has its own sizes (got "
                              f"x{m.width_multiplier:g}): choose a wider or narrower model by name")
        stem = resolve_stem(m.stem, d.image_size or 224, m.arch)
        if stem in STEM_WORDS and resolve_stem("auto", 8, m.arch) != "cifar":
            raise SimCLRError(f"--stem {stem} ({STEM_WORDS[stem]}) is for ResNet-like backbones; {m.arch} keeps its "
                              "own stem: use --stem imagenet")
    if m.backbone_kwargs is not None and not isinstance(m.backbone_kwargs, dict):
        raise SimCLRError(f"model.backbone_kwargs must be a mapping of keyword arguments, got {m.backbone_kwargs!r}")
    _check_choice(m.input_norm, list(INPUT_NORMS), "--input-norm")
    _check_choice(m.head, HEADS, "--head")
    _check_choice(o.optimizer, OPTIMIZERS, "--optimizer")
    _check_choice(o.lr_scaling, ("linear", "sqrt"), "--lr-scaling")
    _check_choice(o.lr_schedule, LR_SCHEDULES, "--lr-schedule")
    _check_choice(t.bn_views, BN_VIEWS, "--bn-views")
    _check_choice(a.crop_interpolation, CROP_INTERPOLATIONS, "--crop-interpolation")
    _check_choice(lo.name, LOSSES, "--loss")
    _check_choice(a.on, ("device", "workers"), "--augment-on")
    if a.on == "workers" and (a.brightness != "multiplicative" or a.contrast != "gray-mean"):
        raise SimCLRError(
            "--augment-on workers uses torchvision's colour ops: brightness 'multiplicative' and contrast "
            "'gray-mean' only; use --augment-on device for the other variants"
        )
    if t.batch_size < 2:
        raise SimCLRError(f"--batch-size must be >= 2 (NT-Xent needs negatives), got {t.batch_size}")
    check_common(cfg)
    checks = [
        (d.image_size is not None and d.image_size >= 8, f"--image-size must be >= 8, got {d.image_size}"),
        (0.25 <= m.width_multiplier <= 4, f"--width-multiplier must be in 0.25-4, got {m.width_multiplier}"),
        (m.proj_dim >= 1, f"--proj-dim must be >= 1, got {m.proj_dim}"),
        (m.head_layers >= 1, f"--head-layers must be >= 1, got {m.head_layers}"),
        (lo.temperature is not None and lo.temperature > 0, f"--temperature must be > 0, got {lo.temperature}"),
        (0 < lo.margin <= 2, f"--margin must be in (0, 2] (a cosine similarity gap), got {lo.margin}"),
        (not lo.semi_hard or LOSS_KINDS[lo.name].semi_hard,
         f"--semi-hard is for --loss {' or '.join(k.name for k in LOSS_KINDS.values() if k.semi_hard)}, "
         f"not {lo.name}"),
        (t.time_budget is None or (t.time_budget > 0 and math.isfinite(t.time_budget)),
         f"--time-budget must be > 0 minutes, got {t.time_budget}"),
        (t.chunk_size is None or t.chunk_size >= 1, f"--chunk-size must be >= 1, got {t.chunk_size}"),
        (t.bn_views == "joint" or t.chunk_size is None,
         "--bn-views per-view cannot be combined with --chunk-size (chunks set their own BN batches)"),
        (lo.name == "ntxent" or t.chunk_size is None,
         f"--loss {lo.name} cannot be combined with --chunk-size (the chunked step is NT-Xent's); drop --chunk-size"),
        (mo.probe_lr > 0, f"monitor.probe_lr must be > 0, got {mo.probe_lr}"),
        (mo.knn_every >= 0, f"--knn-every must be >= 0 (0: off), got {mo.knn_every}"),
        (mo.knn_k >= 1, f"monitor.knn_k must be >= 1, got {mo.knn_k}"),
        (mo.knn_bank is None or mo.knn_bank >= 1, f"monitor.knn_bank must be >= 1, got {mo.knn_bank}"),
        (mo.knn_queries is None or mo.knn_queries >= 1, f"monitor.knn_queries must be >= 1, got {mo.knn_queries}"),
    ]
    for ok, message in checks:
        if not ok:
            raise SimCLRError(message)
    a.to_augment_config().validate()


__all__ = ["BN_VIEWS", "check_common", "check_loggers", "resolve", "validate"]
