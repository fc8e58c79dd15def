"""``finetune(cfg, out)`` and ``distill(cfg, out)``: the label-efficient half of SimCLR, run by the one loop.

Fine-tuning (SimCLR v1, section 6 / Table 7): the pretrained encoder (and, from head layer k, the
projection head's first k layers, SimCLRv2) plus a linear classifier, all trained with the
cross-entropy of a class-balanced labelled subset; crop + flip only, Nesterov SGD, lr 0.05 x B/256,
no weight decay, cosine decay. ``random_init``: the same network from scratch on the same labels.
Distillation (SimCLRv2): a student trained on every train image (labels unused, or weighted by
alpha on the teacher's subset) to match a fine-tuned teacher's softened predictions.

Both validate everything (the run, the subset, the head layer, the teacher) before the output
directory is made, so bad input leaves nothing behind; then they build a ``ClassifierTraining`` and
hand it to ``fit_run`` (progress, metrics, resume, checkpoints, signals, torchrun as ``pretrain``).
When training ends, ``classifier.pt`` is written and the classifier is scored on the test split:
``results.json`` holds top1 / top5 / train_top1 as ``linear-eval``'s JSON, and how it was trained.
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn

from simclr import distributed
from simclr.augment import AugmentConfig
from simclr.config import DistillConfig, FinetuneConfig, load_yaml
from simclr.config.files import suggest
from simclr.data.images import Images, has_labels
from simclr.data.loaders import PretrainLoader
from simclr.data.sources import DATASETS, load_images
from simclr.data.subsets import SUBSET_FILE, balanced_subset, read_subset, write_subset
from simclr.errors import SimCLRError
from simclr.eval.classifier import evaluate_classifier
from simclr.io import atomic_save, atomic_write_text
from simclr.losses.distill import DistillLoss
from simclr.methods.base import identity
from simclr.methods.distill import Distill
from simclr.methods.finetune import FineTune
from simclr.models.classifier import (
    CLASSIFIER,
    Classifier,
    classifier_from_payload,
    classifier_payload,
    read_classifier,
)
from simclr.models.encoder import ARCHS, ResNet
from simclr.models.heads import head_depth, hidden_layers
from simclr.models.norm import convert_global_bn
from simclr.models.weights import CHECKPOINT, load_encoder, load_head
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
from simclr.train.checkpoint import prepare_run_dir
from simclr.train.loop import Trainer
from simclr.train.run import fit_run, resume_checkpoint
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


@dataclass
class LabelledData:
    """The images a run trains on, the test split it is scored on, and where they came from."""

    dataset: str
    data_dir: str | None
    train: Images  # the whole train split
    indices: list[int]  # the labelled subset (indices into train)
    test: Images
    image_size: int


def _run_config(run: str | os.PathLike) -> dict[str, Any]:
    path = Path(run) / "config.yaml"
    return load_yaml(path) if path.is_file() else {}


def _check_train(cfg: FinetuneConfig | DistillConfig) -> None:
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


def _labelled_data(cfg: FinetuneConfig | DistillConfig, dataset: str, data_dir: str | None, image_size: int,
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


def _subset(cfg: FinetuneConfig, train: Images) -> list[int]:
    lab = cfg.labels
    if (lab.label_fraction is None) == (lab.subset_file is None):
        raise SimCLRError("give one of --label-fraction F (e.g. 0.01) or --subset-file FILE")
    if lab.subset_file is not None:
        return read_subset(lab.subset_file, train)
    return balanced_subset(train.labels, lab.label_fraction, cfg.train.seed, train.classes)  # type: ignore[arg-type]


def _device(cfg: FinetuneConfig | DistillConfig, world: distributed.DistContext) -> tuple[torch.device, str | None]:
    """The device, and the line of ``--precision auto``'s choice (rank 0's on every rank)."""
    device = pick_device(distributed.rank_device(cfg.train.device, world))
    cfg.train.precision, line = distributed.broadcast_object(resolve_precision(cfg.train.precision, device))
    check_precision(cfg.train.precision, device)
    prepare_device(device)
    return device, line


def _build_parts(cfg: FinetuneConfig | DistillConfig, model: Classifier, images: Images, device: torch.device,
                 world: distributed.DistContext, ckpt: dict[str, Any] | None, where: str,
                 method_of: Any) -> ClassifierTraining:
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
    aug = AugmentConfig(crop=True, crop_scale=tuple(a.crop_scale), flip_p=a.flip_p,  # type: ignore[arg-type]
                        color_p=0.0, grayscale_p=0.0, blur=False)
    loader = PretrainLoader(images, t.batch_size, aug, model.image_size or 224, t.seed, device, cfg.data.workers,
                            rank=world.rank, world_size=world.world_size, views=1)
    if len(loader) == 0:
        raise SimCLRError(f"--batch-size {t.batch_size} leaves no full batch of the {len(images)} images")
    peak_lr = o.lr if o.lr is not None else o.base_lr * t.batch_size / 256
    optimizer = torch.optim.SGD(param_groups(model, o.weight_decay), lr=peak_lr, momentum=o.momentum, nesterov=True)
    scaler = torch.amp.GradScaler(device.type, enabled=t.precision == "fp16")
    if ckpt is not None:
        restore_state(ckpt, model, optimizer, scaler, device, world)
    net: nn.Module = model
    if world.enabled:
        net = distributed.wrap_ddp(model, device, sync_buffers=not global_bn)
    method = method_of(model, net, to_channels_last if channels_last else identity,
                       functools.partial(autocast_context, t.precision, device))
    steps = len(loader)
    schedule = functools.partial(lr_at, peak_lr=peak_lr, warmup_steps=round(o.warmup_epochs * steps),
                                 total_steps=steps * t.epochs)
    last = float(ckpt["last_loss"]) if ckpt is not None else float("nan")
    step = TrainStep(method, optimizer, schedule, scaler, FiniteGuard(device, last, where))
    return ClassifierTraining(cfg, device, world, model, optimizer, scaler, loader, step, peak_lr)


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
        t = self.parts.cfg.train
        kw = dict(image_size=d.image_size, device=self.parts.device, batch_size=256,
                  workers=self.parts.cfg.data.workers, precision=t.precision)
        print(f"scoring on the {len(d.test)} test images ...", file=self.log)
        result = evaluate_classifier(model, d.test, **kw)  # type: ignore[arg-type]
        labelled = d.train.subset(d.indices)
        result["train_top1"] = evaluate_classifier(model, labelled, ks=(1,), **kw)["top1"]  # type: ignore[arg-type]
        result.update(self.info, steps=trainer.state.step, train_minutes=round(trainer.state.train_seconds() / 60, 2),
                      wall_minutes=round((time.perf_counter() - self.started) / 60, 2))
        atomic_write_text(self.out / RESULTS, json.dumps(result, indent=2) + "\n")
        self.result = result


def _fit(parts: ClassifierTraining, out: Path, data: LabelledData, info: dict[str, Any], log: TextIO,
         ckpt: dict[str, Any] | None, extra: Sequence[Callback]) -> dict[str, Any] | None:
    outputs = ClassifierOutputs(out, parts, data, info, log)
    state = fit_run(parts, out, log, ckpt=ckpt, outputs=[outputs, *extra])
    if state.interrupted:
        return None
    distributed.barrier()
    return outputs.result


def _in_process_group(cfg: FinetuneConfig | DistillConfig, log: TextIO | None, fn: Any) -> Any:
    world = distributed.init_from_env(cfg.train.device, cfg.train.dist_backend)
    with contextlib.ExitStack() as stack:
        if not world.is_main:
            log = stack.enter_context(open(os.devnull, "w"))  # noqa: SIM115
        return fn(world, log or sys.stderr)


def _banner(kind: str, model: Classifier, data: LabelledData, parts: ClassifierTraining) -> str:
    t, enc = parts.cfg.train, model.encoder
    return (f"{kind} | dataset {data.dataset} | {enc.arch} x{enc.width_multiplier} stem {enc.stem_type} | "
            f"image size {data.image_size} | "
            f"{'head layers ' + str(model.head_layers) + ' + ' if model.head_layers else ''}"
            f"linear -> {model.num_classes} classes\n"
            f"Nesterov SGD peak lr {parts.peak_lr:.4g} | weight decay {parts.cfg.optim.weight_decay} | cosine | "
            f"batch {t.batch_size} x {len(parts.loader)} steps/epoch x {t.epochs} epochs | crop + flip | "
            f"{t.precision} on {parts.device}")


# ------------------------------------------------------------------------------------------- fine-tuning


def finetune(cfg: FinetuneConfig, out: str | os.PathLike, resume: bool = False, log: TextIO | None = None,
             callbacks: Sequence[Callback] = ()) -> dict[str, Any] | None:
    """Fine-tune ``cfg.model.run`` (or, with ``random_init``, its network from scratch) on a labelled
    subset into ``out``; returns the test scores (``results.json``), None on ranks other than 0 or
    after a stop by signal."""
    return _in_process_group(cfg, log, lambda world, lg: _finetune(cfg, Path(out), resume, lg, world, callbacks))


def _head_layers(run: str, head: str, layers: int, k: int) -> None:
    deepest = head_depth(head, layers)
    if not 0 <= k <= deepest:
        what = f"a {layers}-layer mlp head" if head == "mlp" else f"a {head} head"
        raise SimCLRError(f"--from-head-layer {k}: the run {run} has {what}, so choose 0"
                          f"{'-' + str(deepest) if deepest else ''} (v2's 1 needs a --head-layers 3 run)")


def _finetune(cfg: FinetuneConfig, out: Path, resume: bool, log: TextIO, world: distributed.DistContext,
              extra: Sequence[Callback]) -> dict[str, Any] | None:
    m = cfg.model
    if not m.run:
        raise SimCLRError("--run RUN is needed: the pretraining run to fine-tune")
    if not Path(m.run).is_dir():
        raise SimCLRError(f"--run {m.run} is not a run directory")
    _check_train(cfg)
    ckpt = resume_checkpoint(out, resume)
    encoder = load_encoder(m.run)
    run_cfg = _run_config(m.run)
    model_cfg = run_cfg.get("model", {})
    _head_layers(m.run, model_cfg.get("head", "none"), int(model_cfg.get("head_layers", 2)), m.from_head_layer)
    if m.from_head_layer and not (Path(m.run) / CHECKPOINT).is_file():
        raise SimCLRError(f"--from-head-layer {m.from_head_layer} needs the head: {m.run} has no {CHECKPOINT}")
    dataset = cfg.data.dataset
    data_dir = cfg.data.data_dir or (run_cfg.get("data", {}).get("data_dir") if dataset == run_cfg.get(
        "data", {}).get("dataset") else None)
    size = cfg.data.image_size or int(encoder.image_size)  # type: ignore[arg-type]
    data = _labelled_data(cfg, dataset, data_dir, size, functools.partial(_subset, cfg))
    t = cfg.train
    t.epochs, t.batch_size = auto_schedule(len(data.indices), len(data.train), t.epochs, t.batch_size)
    if cfg.augment.crop_scale is None:
        cfg.augment.crop_scale = tuple(run_cfg.get("augment", {}).get("crop_scale") or DATASETS[dataset].crop_scale
                                       or (0.08, 1.0))  # type: ignore[assignment]
    cfg.data.dataset, cfg.data.data_dir, cfg.data.image_size = dataset, data_dir, size
    device, precision_line = _device(cfg, world)
    distributed.main_first(lambda: _prepare(out, resume, data, world))

    torch.manual_seed(t.seed)
    if m.random_init:
        fresh = ResNet(encoder.arch, encoder.width_multiplier, encoder.stem_type, zero_init_residual=True,
                       input_norm=encoder.input_norm)
        head = hidden_layers(fresh.feature_dim, m.from_head_layer, bool(model_cfg.get("head_bn", True)))
        encoder = fresh
    else:
        head = _kept_head(m.run, m.from_head_layer)
    encoder.image_size = size  # type: ignore[assignment]
    model = Classifier(encoder.train(), _num_classes(data), head, bool(model_cfg.get("head_bn", True)))
    model.classes = list(data.train.classes)
    method_of = functools.partial(_finetune_method)
    parts = _build_parts(cfg, model, data.train.subset(data.indices), device, world, ckpt, str(out / CHECKPOINT),
                         method_of)
    kind = "fine-tuning from scratch (supervised baseline)" if m.random_init else f"fine-tuning {m.run}"
    if precision_line:
        print(precision_line, file=log)
    print(_banner(kind + f" from head layer {m.from_head_layer}", model, data, parts), file=log)
    print(f"{len(data.indices)} labelled images of {len(data.train)} ({len(data.indices) / len(data.train):.2%}); "
          f"the subset is in {out / SUBSET_FILE}", file=log)
    info = {"dataset": dataset, "data_dir": data_dir, "random_init": m.random_init, "run": str(m.run),
            "method": "finetune",
            "from_head_layer": m.from_head_layer, "labels": len(data.indices),
            "label_fraction": round(len(data.indices) / len(data.train), 6), "epochs": t.epochs,
            "batch_size": t.batch_size, "subset_file": str(out / SUBSET_FILE)}
    result = _fit(parts, out, data, info, log, ckpt, extra)
    if result is not None:
        print(f"train top1 {result['train_top1']:.4f} on the labelled images; classifier saved to {out / CLASSIFIER}, "
              f"scores to {out / RESULTS}", file=log)
    return result


def _finetune_method(model: nn.Module, net: nn.Module, prepare: Any, autocast: Any) -> FineTune:
    return FineTune(model, net=net, prepare=prepare, autocast=autocast)


def _kept_head(run: str, k: int) -> nn.Sequential:
    """The first ``k`` hidden layers of the run's projection head, with their trained weights."""
    if k == 0:
        return nn.Sequential()
    head = load_head(run).train()
    kept: list[nn.Module] = []
    for module in head:  # type: ignore[union-attr]
        kept.append(module)
        if isinstance(module, nn.ReLU) and sum(isinstance(x, nn.ReLU) for x in kept) == k:
            break
    return nn.Sequential(*kept)


def _num_classes(data: LabelledData) -> int:
    return max(len(data.train.classes), int(data.train.labels.max()) + 1, int(data.test.labels.max()) + 1)


def _prepare(out: Path, resume: bool, data: LabelledData, world: distributed.DistContext) -> None:
    prepare_run_dir(out, resume)
    if world.is_main:
        write_subset(out / SUBSET_FILE, data.train, data.indices)


# ------------------------------------------------------------------------------------------- distillation


def distill(cfg: DistillConfig, out: str | os.PathLike, resume: bool = False, log: TextIO | None = None,
            callbacks: Sequence[Callback] = ()) -> dict[str, Any] | None:
    """Distil the fine-tuned classifier ``cfg.distill.teacher`` into a student (its network, or a
    smaller one) on every train image into ``out``; returns the test scores (``results.json``)."""
    return _in_process_group(cfg, log, lambda world, lg: _distill(cfg, Path(out), resume, lg, world, callbacks))


def _distill(cfg: DistillConfig, out: Path, resume: bool, log: TextIO, world: distributed.DistContext,
             extra: Sequence[Callback]) -> dict[str, Any] | None:
    ds = cfg.distill
    if not ds.teacher:
        raise SimCLRError("--teacher FT_DIR is needed: a `simclr finetune` directory")
    payload = read_classifier(ds.teacher)
    _check_train(cfg)
    if not 0 <= ds.label_weight <= 1:
        raise SimCLRError(f"--label-weight must be in [0, 1], got {ds.label_weight}")
    if ds.student_arch is not None and ds.student_arch not in ARCHS:
        raise SimCLRError(f"--student-arch {ds.student_arch!r} is not valid{suggest(ds.student_arch, list(ARCHS))}: "
                          f"choose one of {', '.join(ARCHS)}")
    if ds.student_width is not None and not ds.student_width > 0:
        raise SimCLRError(f"--student-width must be > 0, got {ds.student_width}")
    if ds.temperature is not None and not ds.temperature > 0:
        raise SimCLRError(f"--temperature must be > 0, got {ds.temperature}")
    ckpt = resume_checkpoint(out, resume)
    teacher = classifier_from_payload(payload, ds.teacher)
    info_t = payload.get("info", {})
    dataset = cfg.data.dataset
    data_dir = cfg.data.data_dir or (info_t.get("data_dir") if dataset == info_t.get("dataset") else None)
    size = int(payload["image_size"])
    teacher_subset = Path(ds.teacher) / SUBSET_FILE

    def labelled(train: Images) -> list[int]:
        if ds.label_weight == 0:
            return []
        if not teacher_subset.is_file():
            raise SimCLRError(f"--label-weight needs the teacher's labels: {teacher_subset} does not exist")
        return read_subset(teacher_subset, train)

    data = _labelled_data(cfg, dataset, data_dir, size, labelled)
    arch = ds.student_arch or payload["arch"]
    width = ds.student_width if ds.student_width is not None else float(payload["width_multiplier"])
    same = arch == payload["arch"] and width == float(payload["width_multiplier"])
    if ds.temperature is None:
        # 1.0 for every student: v2's 0.1 for self-distillation left a from-scratch student at 59.9 / 46.3 /
        # 10.0 (chance) at 1% / 10% / 100% of Fashion-MNIST's labels where 1.0 gave 77.7 (BENCHMARKS.md)
        ds.temperature = 1.0
    t = cfg.train
    t.epochs, t.batch_size = auto_schedule(len(data.train), len(data.train), t.epochs, t.batch_size)
    if cfg.augment.crop_scale is None:
        cfg.augment.crop_scale = DATASETS[dataset].crop_scale or (0.08, 1.0)
    cfg.data.dataset, cfg.data.data_dir, cfg.data.image_size = dataset, data_dir, size
    device, precision_line = _device(cfg, world)
    distributed.main_first(lambda: prepare_run_dir(out, resume))

    # every train image, its label kept only where the label weight uses it (the teacher's subset)
    labels = torch.full_like(data.train.labels, -1)
    if data.indices:
        idx = torch.as_tensor(data.indices)
        labels[idx] = data.train.labels[idx]
    images = replace(data.train, labels=labels) if hasattr(data.train, "images") else _relabelled(data.train, labels)
    torch.manual_seed(t.seed)
    encoder = ResNet(arch, width, payload["stem"], zero_init_residual=True,
                     input_norm=payload.get("input_norm", "none"))
    encoder.image_size = size  # type: ignore[assignment]
    student = Classifier(encoder, int(payload["num_classes"]))
    student.classes = list(payload.get("classes", []))
    teacher = teacher.to(device)
    loss = DistillLoss(ds.temperature, ds.label_weight)

    def method_of(model: nn.Module, net: nn.Module, prepare: Any, autocast: Any) -> Distill:
        return Distill(model, teacher, loss, net=net, prepare=prepare, autocast=autocast)

    parts = _build_parts(cfg, student, images, device, world, ckpt, str(out / CHECKPOINT), method_of)
    kind = f"{'self-' if same else ''}distilling {ds.teacher} (T {ds.temperature:g}, label weight {ds.label_weight:g})"
    if precision_line:
        print(precision_line, file=log)
    print(_banner(kind, student, data, parts), file=log)
    print(f"{len(data.train)} train images, labels unused"
          + (f" but for the teacher's {len(data.indices)}" if data.indices else ""), file=log)
    data = replace(data, indices=data.indices or list(range(len(data.train))))
    info = {"dataset": dataset, "data_dir": data_dir, "random_init": False, "run": str(ds.teacher), "method": "distill",
            "teacher": str(ds.teacher), "teacher_top1": _teacher_top1(ds.teacher), "student_arch": arch,
            "student_width": width, "temperature": ds.temperature, "label_weight": ds.label_weight,
            "labels": len(data.indices) if ds.label_weight else 0, "epochs": t.epochs, "batch_size": t.batch_size}
    result = _fit(parts, out, data, info, log, ckpt, extra)
    if result is not None:
        teacher_top1 = info["teacher_top1"]
        print(f"teacher top1 {teacher_top1:.4f}; " if teacher_top1 is not None else "", end="", file=log)
        print(f"student classifier saved to {out / CLASSIFIER}, scores to {out / RESULTS}", file=log)
    return result


def _relabelled(images: Images, labels: torch.Tensor) -> Images:
    out = images.subset(list(range(len(images))))
    out.labels = labels
    return out


def _teacher_top1(teacher: str) -> float | None:
    path = Path(teacher) / RESULTS
    if not path.is_file():
        return None
    try:
        return float(json.loads(path.read_text())["top1"])
    except (ValueError, KeyError):
        return None


__all__ = ["RESULTS", "ClassifierOutputs", "ClassifierTraining", "LabelledData", "auto_schedule", "distill", "finetune"]
