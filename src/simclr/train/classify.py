"""What fine-tuning and distillation share: a classifier trained on one-view batches by the one loop.

``simclr.train.finetune`` and ``simclr.train.distill`` each validate their input (before any output
directory exists), then build a ``ClassifierTraining`` here (``build_parts``: one crop + flip view per
image, Nesterov SGD with a cosine schedule, the method's ``TrainStep``) and hand it to
``fit_classifier`` (``fit_run``: progress, metrics, resume, checkpoints, signals, torchrun as
``pretrain``). ``ClassifierOutputs`` writes ``classifier.pt`` when training ends and scores it on the
test split into ``results.json`` (top1 / top5 / train_top1 as ``linear-eval``'s JSON, and how it was
trained).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn

from simclr import distributed
from simclr.augment import AugmentConfig
from simclr.config import DistillConfig, FinetuneConfig, load_yaml
from simclr.config.files import suggest
from simclr.config.schema import ClassifierAugment
from simclr.data.images import Images, has_labels
from simclr.data.loaders import PretrainLoader
from simclr.data.sources import DATASETS, load_images
from simclr.errors import SimCLRError
from simclr.eval.classifier import evaluate_classifier
from simclr.io import atomic_save, atomic_write_text
from simclr.methods.base import identity
from simclr.models.classifier import CLASSIFIER, Classifier, classifier_payload
from simclr.models.norm import convert_global_bn
from simclr.optim import lr_at, param_groups
from simclr.runtime import (
    PRECISION_CHOICES,
    autocast_context,
    check_precision,
    pick_device,
    prepare_device,
    resolve_precision,
    to_channels_last,
)
from simclr.train.callbacks import Callback
from simclr.train.loop import Trainer
from simclr.train.run import fit_run
from simclr.train.setup import restore_state
from simclr.train.step import FiniteGuard, TrainStep

RESULTS = "results.json"


@dataclass
class ClassifierTraining:
    """The parts of a fine-tuning or distillation run (what ``fit_run`` needs)."""

    cfg: FinetuneConfig | DistillConfig
    device: torch.device
    world: distributed.DistContext
    model: Classifier
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    loader: PretrainLoader
    step: TrainStep
    peak_lr: float
    precision: str  # what runs (``auto`` resolved); config.yaml keeps what was asked


@dataclass
class LabelledData:
    """The images a run trains on, the test split it is scored on, and where they came from."""

    dataset: str
    data_dir: str | None
    train: Images  # the whole train split
    indices: list[int]  # the labelled subset (indices into train)
    test: Images
    image_size: int


def run_config(run: str | os.PathLike) -> dict[str, Any]:
    path = Path(run) / "config.yaml"
    return load_yaml(path) if path.is_file() else {}


def check_train(cfg: FinetuneConfig | DistillConfig) -> None:
    t, o = cfg.train, cfg.optim
    if t.precision not in PRECISION_CHOICES:
        raise SimCLRError(f"--precision {t.precision!r} is not valid{suggest(t.precision, list(PRECISION_CHOICES))}: "
                          f"choose one of {', '.join(PRECISION_CHOICES)}")
    checks = [
        (t.epochs is None or t.epochs >= 1, f"--epochs must be >= 1, got {t.epochs}"),
        (t.batch_size is None or t.batch_size >= 1, f"--batch-size must be >= 1, got {t.batch_size}"),
        (t.max_steps is None or t.max_steps >= 1, f"--max-steps must be >= 1, got {t.max_steps}"),
        (t.log_every >= 1, f"--log-every must be >= 1, got {t.log_every}"),
        (o.lr is None or (o.lr > 0 and math.isfinite(o.lr)), f"--lr must be > 0, got {o.lr}"),
        (o.base_lr > 0, f"--base-lr must be > 0, got {o.base_lr}"),
        (o.weight_decay >= 0, f"--weight-decay must be >= 0, got {o.weight_decay}"),
        (0 <= o.momentum < 1, f"--momentum must be in [0, 1), got {o.momentum}"),
        (o.warmup_epochs >= 0, f"--warmup-epochs must be >= 0, got {o.warmup_epochs}"),
        (cfg.data.workers >= 0, f"--workers must be >= 0, got {cfg.data.workers}"),
    ]
    for ok, message in checks:
        if not ok:
            raise SimCLRError(message)


def auto_schedule(n_labelled: int, n_train: int, epochs: int | None, batch_size: int | None) -> tuple[int, int]:
    """(epochs, batch size) of a fine-tuning run on ``n_labelled`` of ``n_train`` images: the paper's 60
    epochs at 1% and 30 at 10% of the labels (15 above 20%); batch 64 for small sets (<= 2000 images:
    at least ~10 steps an epoch), else 256. A batch larger than the labelled set is refused."""
    fraction = n_labelled / max(1, n_train)
    if epochs is None:
        epochs = 60 if fraction <= 0.02 else 30 if fraction <= 0.2 else 15
    if batch_size is None:
        batch_size = 64 if n_labelled <= 2000 else 256
        batch_size = min(batch_size, n_labelled)
    if batch_size > n_labelled:
        raise SimCLRError(f"--batch-size {batch_size} is larger than the labelled set ({n_labelled} images): "
                          "lower --batch-size or use more labels")
    return epochs, batch_size


def labelled_data(cfg: FinetuneConfig | DistillConfig, dataset: str, data_dir: str | None, image_size: int,
                   indices_of: Any) -> LabelledData:
    """The train and test splits of ``dataset``, and the subset ``indices_of(train)`` picks."""
    if dataset not in DATASETS:
        raise SimCLRError(f"--dataset {dataset!r} is not valid{suggest(dataset, list(DATASETS))}: "
                          f"choose one of {', '.join(DATASETS)}")
    seed, limit = cfg.train.seed, cfg.data.limit
    train = load_images(dataset, "train", data_dir, limit, seed, image_size)
    if not has_labels(train):
        raise SimCLRError(f"the {dataset} images have no labels: fine-tuning and distillation need class "
                          "subfolders (DIR/CLASS/img.png)")
    test = load_images(dataset, "test", data_dir, None if limit is None else max(1, limit // 5), seed, image_size)
    if len(test) == 0 or not has_labels(test):
        raise SimCLRError(f"the {dataset} test split has no labelled images to score the classifier on")
    return LabelledData(dataset, data_dir, train, indices_of(train), test, image_size)




def device_for(cfg: FinetuneConfig | DistillConfig,
               world: distributed.DistContext) -> tuple[torch.device, str, str | None]:
    """The device, the precision that runs there (``auto`` resolved: rank 0's choice on every rank) and
    the line that says the choice (None unless auto)."""
    device = pick_device(distributed.rank_device(cfg.train.device, world))
    precision, line = distributed.broadcast_object(resolve_precision(cfg.train.precision, device))
    check_precision(precision, device)
    prepare_device(device)
    return device, precision, line


def classifier_augment(a: ClassifierAugment) -> AugmentConfig:
    """The one training view of a classifier: crop + flip, plus SimCLR's colour distortion (jitter with
    p 0.8, grayscale with p 0.2) at ``a.color_strength`` when it is > 0; never blur."""
    assert a.crop_scale is not None
    colour = a.color_strength > 0
    return AugmentConfig(crop=True, crop_scale=tuple(a.crop_scale), flip_p=a.flip_p,  # type: ignore[arg-type]
                         color_strength=a.color_strength, color_p=0.8 if colour else 0.0,
                         grayscale_p=0.2 if colour else 0.0, blur=False)


def build_parts(cfg: FinetuneConfig | DistillConfig, model: Classifier, images: Images, device: torch.device,
                 world: distributed.DistContext, ckpt: dict[str, Any] | None, where: str,
                 method_of: Any, precision: str) -> ClassifierTraining:
    """Loader (one crop + flip view per image), Nesterov SGD, cosine schedule, the method and its step."""
    t, o, a = cfg.train, cfg.optim, cfg.augment
    assert t.batch_size is not None and t.epochs is not None and a.crop_scale is not None
    global_bn = world.enabled and (t.global_bn if t.global_bn is not None else True)
    if global_bn:
        model = convert_global_bn(model, distributed.backend())  # type: ignore[assignment]
    channels_last = t.channels_last if t.channels_last is not None else True
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    aug = classifier_augment(a)
    loader = PretrainLoader(images, t.batch_size, aug, model.image_size or 224, t.seed, device, cfg.data.workers,
                            rank=world.rank, world_size=world.world_size, views=1)
    if len(loader) == 0:
        raise SimCLRError(f"--batch-size {t.batch_size} leaves no full batch of the {len(images)} images")
    peak_lr = o.lr if o.lr is not None else o.base_lr * t.batch_size / 256
    optimizer = torch.optim.SGD(param_groups(model, o.weight_decay), lr=peak_lr, momentum=o.momentum, nesterov=True)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    if ckpt is not None:
        restore_state(ckpt, model, optimizer, scaler, device, world)
    net: nn.Module = model
    if world.enabled:
        net = distributed.wrap_ddp(model, device, sync_buffers=not global_bn)
    method = method_of(model, net, to_channels_last if channels_last else identity,
                       functools.partial(autocast_context, precision, device))
    steps = len(loader)
    schedule = functools.partial(lr_at, peak_lr=peak_lr, warmup_steps=round(o.warmup_epochs * steps),
                                 total_steps=steps * t.epochs)
    last = float(ckpt["last_loss"]) if ckpt is not None else float("nan")
    step = TrainStep(method, optimizer, schedule, scaler, FiniteGuard(device, last, where))
    return ClassifierTraining(cfg, device, world, model, optimizer, scaler, loader, step, peak_lr, precision)


class ClassifierOutputs(Callback):
    """At the end of training (not after a signal): ``classifier.pt``, then the test-split scores in
    ``results.json`` (rank 0; the other ranks wait)."""

    def __init__(self, out: Path, parts: ClassifierTraining, data: LabelledData, info: dict[str, Any],
                 log: TextIO) -> None:
        self.out, self.parts, self.data, self.info, self.log = out, parts, data, info, log
        self.result: dict[str, Any] | None = None
        self.started = time.perf_counter()

    def on_fit_end(self, trainer: Trainer) -> None:
        if trainer.state.interrupted or not self.parts.world.is_main:
            return
        trainer.check_finite()
        model, d = self.parts.model, self.data
        atomic_save(classifier_payload(model, d.image_size, self.info), self.out / CLASSIFIER)
        kw = dict(image_size=d.image_size, device=self.parts.device, batch_size=256,
                  workers=self.parts.cfg.data.workers, precision=self.parts.precision)
        print(f"scoring on the {len(d.test)} test images ...", file=self.log)
        result = evaluate_classifier(model, d.test, **kw)  # type: ignore[arg-type]
        labelled = d.train.subset(d.indices)
        result["train_top1"] = evaluate_classifier(model, labelled, ks=(1,), **kw)["top1"]  # type: ignore[arg-type]
        result.update(self.info, steps=trainer.state.step, train_minutes=round(trainer.state.train_seconds() / 60, 2),
                      wall_minutes=round((time.perf_counter() - self.started) / 60, 2))
        atomic_write_text(self.out / RESULTS, json.dumps(result, indent=2) + "\n")
        self.result = result


def fit_classifier(parts: ClassifierTraining, out: Path, data: LabelledData, info: dict[str, Any], log: TextIO,
         ckpt: dict[str, Any] | None, extra: Sequence[Callback]) -> dict[str, Any] | None:
    outputs = ClassifierOutputs(out, parts, data, info, log)
    state = fit_run(parts, out, log, ckpt=ckpt, outputs=[outputs, *extra])
    return None if state.interrupted else outputs.result


def in_process_group(cfg: FinetuneConfig | DistillConfig, log: TextIO | None, fn: Any) -> Any:
    world = distributed.init_from_env(cfg.train.device, cfg.train.dist_backend)
    with contextlib.ExitStack() as stack:
        if not world.is_main:
            log = stack.enter_context(open(os.devnull, "w"))  # noqa: SIM115
        return fn(world, log or sys.stderr)


def banner(kind: str, model: Classifier, data: LabelledData, parts: ClassifierTraining) -> str:
    t, enc = parts.cfg.train, model.encoder
    s = parts.cfg.augment.color_strength
    views = f"crop + flip + colour {s:g}" if s > 0 else "crop + flip"
    return (f"{kind} | dataset {data.dataset} | {enc.arch} x{enc.width_multiplier} stem {enc.stem_type} | "
            f"image size {data.image_size} | "
            f"{'head layers ' + str(model.head_layers) + ' + ' if model.head_layers else ''}"
            f"linear -> {model.num_classes} classes\n"
            f"Nesterov SGD peak lr {parts.peak_lr:.4g} | weight decay {parts.cfg.optim.weight_decay} | cosine | "
            f"batch {t.batch_size} x {len(parts.loader)} steps/epoch x {t.epochs} epochs | {views} | "
            f"{parts.precision}{' (auto)' if t.precision == 'auto' else ''} on {parts.device}")


__all__ = [
    "RESULTS", "ClassifierOutputs", "ClassifierTraining", "LabelledData", "auto_schedule", "banner", "build_parts",
    "check_train", "classifier_augment", "device_for", "fit_classifier", "in_process_group", "labelled_data",
    "run_config",
]
