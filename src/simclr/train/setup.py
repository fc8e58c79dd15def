"""Pretraining's choices for the one run builder, from its configuration: ``build_training``.

Pretraining hands ``simclr.train.engine.build_run`` the network (seeded), two-view batches of its
augmentation, the optimiser ``--optimizer`` with the peak learning rate of the batch size, warm-up +
cosine, and the method (``--method``, from ``simclr.methods.registry``: it makes the model's parts
around the encoder, checks its settings, builds its step and names its objective in the banner); the
builder does the rest as for every command. Nothing here knows one method from another.
``build_training`` does no I/O beyond reading the images it is given, so benchmarks time exactly the
step a run trains with (``Training.step``). ``describe`` is the banner a run prints first.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any, TextIO

import torch
from torch import nn

from simclr import distributed
from simclr.augment import OPS
from simclr.config import PretrainConfig, apply_overrides, resolve
from simclr.data.images import Images, has_labels
from simclr.data.sources import load_images
from simclr.errors import SimCLRError
from simclr.methods import method_class
from simclr.models.backbones import Backbone, EncoderSpec, wants_adamw
from simclr.models.weights import config_spec
from simclr.optim import build_optimizer, cosine_schedule, scaled_lr
from simclr.runtime import check_precision, pick_device, prepare_device, resolve_precision
from simclr.train.engine import Training, build_run, precision_text


def encoder_spec(cfg: PretrainConfig) -> EncoderSpec:
    """The encoder f of ``cfg`` (resolved): ``simclr.models.backbones.EncoderSpec``."""
    assert cfg.data.image_size is not None
    return config_spec(dataclasses.asdict(cfg.model), cfg.data.image_size)


def build_network(cfg: PretrainConfig, backbone: nn.Module | None = None) -> nn.Module:
    """The randomly initialised model of ``cfg`` (resolved), on the CPU: the encoder f, and around it the
    parts its method makes (SimCLR: the head g); with ``backbone`` (a module given from Python,
    ``model.arch`` then ``module/<its class>``) f is that module, as it is."""
    if backbone is None:
        encoder: nn.Module = encoder_spec(cfg).build(cfg.model.zero_init_residual)
    else:
        encoder = backbone if isinstance(backbone, Backbone) else Backbone(backbone, encoder_spec(cfg))
    return method_class(cfg.model.method).build_model(cfg, encoder)


def run_precision(cfg: PretrainConfig, device: torch.device, precision: str | None = None) -> str:
    """The precision a run computes in: ``precision`` when given (``--precision auto`` resolved by the
    caller, who prints the choice), else ``cfg.train.precision``, ``auto`` resolved quietly."""
    return precision if precision is not None else resolve_precision(cfg.train.precision, device)[0]


def check_run(cfg: PretrainConfig, world: distributed.DistContext, device: torch.device, n_images: int,
              labelled: bool = True, precision: str | None = None) -> None:
    """Refuse, before any work, settings this launch cannot run (same outcome on every rank)."""
    t = cfg.train
    if t.bn_views == "per-view" and world.enabled:
        raise distributed.same_on_every_rank(SimCLRError(
            "--bn-views per-view runs in one process only (one forward per view would call DDP twice per step); "
            "drop it under torchrun"
        ))
    if t.batch_size % world.world_size:
        raise distributed.same_on_every_rank(SimCLRError(
            f"--batch-size {t.batch_size} (the global batch) does not divide among {world.world_size} ranks; "
            f"use a multiple of {world.world_size}"
        ))
    check_precision(run_precision(cfg, device, precision), device)
    spec = encoder_spec(cfg)
    if spec.family in ("torchvision", "timm"):
        spec.build()  # a torchvision / timm model that cannot be built here (e.g. a ViT's patches and the image size)
    method_class(cfg.model.method).validate(cfg, labelled)
    if n_images < t.batch_size:
        raise SimCLRError(
            f"--batch-size {t.batch_size} is larger than the dataset ({n_images} images): "
            "lower --batch-size or raise --limit"
        )


def peak_lr_of(cfg: PretrainConfig) -> float:
    """The peak learning rate of ``cfg`` (resolved): ``--lr``, else ``--base-lr`` scaled by the batch size."""
    o = cfg.optim
    return o.lr if o.lr is not None else scaled_lr(o.base_lr or 0.3, cfg.train.batch_size, o.lr_scaling)


def schedule_of(cfg: PretrainConfig, steps_per_epoch: int, peak_lr: float) -> Callable[[int], float]:
    """The learning rate of a global step: linear warm-up, then cosine to the run's end (``epochs`` x
    steps per epoch; with ``--time-budget``, the planned ``max_steps``, through its re-plans' anchors)."""
    o, t = cfg.optim, cfg.train
    assert o.warmup_epochs is not None
    total = t.max_steps if t.time_budget is not None and t.max_steps else steps_per_epoch * t.epochs
    return cosine_schedule(peak_lr, o.warmup_epochs, steps_per_epoch, total, per_epoch=o.lr_schedule == "epoch",
                           anchors=t.schedule_anchors or ())


def build_training(
    cfg: PretrainConfig,
    images: Images,
    device: torch.device,
    *,
    world: distributed.DistContext | None = None,
    ckpt: dict[str, Any] | None = None,
    loss: nn.Module | None = None,
    guard_where: str = "",
    log: TextIO | None = None,
    init_encoder: dict[str, Any] | None = None,
    precision: str | None = None,
    backbone: nn.Module | None = None,
) -> Training:
    """The parts of a pretraining run of ``cfg`` (resolved) on ``images`` and ``device``: pretraining's
    choices handed to the one run builder (``simclr.train.engine.build_run``).

    The network is ``build_network`` (seeded by ``--seed``; ``backbone``: the encoder module given from
    Python), started from ``init_encoder`` (``--init-from``); two views per image; the optimiser
    ``--optimizer`` at ``peak_lr_of``; ``schedule_of``; the method ``--method`` (``simclr.methods.registry``).
    ``ckpt``: a checkpoint to resume from. ``loss``: a loss module for the method instead of ``--loss``.
    ``guard_where``: the checkpoint the finiteness message names. ``precision``: what
    ``cfg.train.precision`` resolved to (``run_precision``).
    """
    d, o, t = cfg.data, cfg.optim, cfg.train
    assert d.image_size is not None and cfg.loss.temperature is not None and o.warmup_epochs is not None
    torch.manual_seed(t.seed)
    model = build_network(cfg, backbone)
    if init_encoder is not None:
        model.encoder.load_state_dict(init_encoder)
    peak_lr = peak_lr_of(cfg)
    method = method_class(cfg.model.method)
    return build_run(
        cfg, model, images, device, world=world, precision=run_precision(cfg, device, precision),
        augment=cfg.augment.to_augment_config(), image_size=d.image_size, augment_on=cfg.augment.on,
        optimizer=lambda m: build_optimizer(o.optimizer, m, peak_lr, o.weight_decay, o.momentum, o.decay_1d),
        peak_lr=peak_lr, schedule=lambda spe: schedule_of(cfg, spe, peak_lr),
        method=lambda m, tools: method.from_config(m, cfg, tools),
        ckpt=ckpt, loss=loss, guard_where=guard_where, log=log,
    )


def training_from(overrides: dict[str, Any], images: Images | None = None, device: str | None = None) -> Training:
    """A run's parts from config overrides (``{"section.key": value}``), without a run directory: what
    benchmarks time. ``images`` default to the config's dataset (pretrain split); ``device`` to the
    config's (``auto``: CUDA when available)."""
    cfg = PretrainConfig()
    apply_overrides(cfg, overrides, "overrides")
    cfg = resolve(cfg)
    dev = pick_device(device or cfg.train.device)
    prepare_device(dev)
    precision, line = resolve_precision(cfg.train.precision, dev)
    if line:
        print(line, file=sys.stderr)
    d = cfg.data
    if images is None:
        images = load_images(d.dataset, "pretrain", d.data_dir, d.limit, cfg.train.seed, d.image_size)
    check_run(cfg, distributed.DistContext(), dev, len(images), has_labels(images), precision)
    return build_training(cfg, images, dev, precision=precision)


def describe(training: Training) -> str:
    """The banner of a run: every value chosen for it, resolved."""
    cfg, world = training.cfg, training.world
    d, m, a, o, t = cfg.data, cfg.model, cfg.augment, cfg.optim, cfg.train
    assert d.image_size is not None and a.crop_scale is not None
    return (
        f"dataset {d.dataset} | image size {d.image_size} | {encoder_spec(cfg).describe()}"
        f"{' | input norm ' + m.input_norm if m.input_norm != 'none' else ''} | head {m.head}"
        f"{'-' + str(m.head_layers) if m.head == 'mlp' else ''} -> {m.proj_dim}\n"
        f"{method_class(cfg.model.method).describe(cfg)} | "
        f"colour strength {a.color_strength} | "
        + (f"crop area {a.crop_scale[0]:g}-{a.crop_scale[1]:g} {a.crop_interpolation} | " if a.crop else "crop off | ")
        + f"blur {'on' if a.blur else 'off'} | "
        + "".join(f"{name} off | " for name, p in (("flip", a.flip_p), ("colour jitter", a.color_p),
                                                   ("grayscale", a.grayscale_p)) if p == 0)
        + (f"order {' > '.join(a.order)} | " if tuple(a.order) != OPS else "")
        + ("first view unaugmented | " if a.identity_view else "")
        + f"augment on {a.on}\n"
        f"{o.optimizer} peak lr {training.peak_lr:.4g} ({'given' if o.lr else f'{o.base_lr} {o.lr_scaling} rule'}"
        f"{', the ViT recipe of MoCo v3' if wants_adamw(m.arch) and o.optimizer == 'adamw' else ''}) "
        f"| weight decay {o.weight_decay}{' (biases and BN too)' if o.decay_1d else ''} "
        f"| warm-up {o.warmup_epochs:.4g} epochs then cosine{' per epoch' if o.lr_schedule == 'epoch' else ''}\n"
        f"batch {t.batch_size} x {training.steps_per_epoch} steps/epoch x {t.epochs} epochs"
        + (f" ({t.max_steps} steps: time budget {t.time_budget:g} min)" if t.time_budget is not None else "")
        + (f" (stops at step {t.max_steps})"
           if t.time_budget is None and t.max_steps and t.max_steps < training.steps_per_epoch * t.epochs else "")
        + " | "
        f"{precision_text(training)}"
        + (f" | gradient in chunks of {t.chunk_size} images" if t.chunk_size else "")
        + (" | BN statistics per view" if t.bn_views == "per-view" else "")
        + (
            f"\n{world.world_size} ranks ({distributed.backend()}) x {t.batch_size // world.world_size}"
            f" images each | global BN {'on' if training.global_bn else 'off'} | negatives from the global batch"
            if world.enabled
            else ""
        )
    )


__all__ = [
    "Training", "build_network", "build_training", "check_run", "describe",
    "encoder_spec", "peak_lr_of", "run_precision", "schedule_of", "training_from",
]
