"""``distill(cfg, out)``: SimCLRv2's distillation of a fine-tuned classifier into a student.

The student (the teacher's network, or a smaller one, trained from scratch) learns the teacher's
softened predictions on every train image, labels unused; ``label_weight`` alpha mixes in the
cross-entropy of the teacher's labelled subset. Crop + flip.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn

from simclr import distributed
from simclr.config import DistillConfig, check_common
from simclr.data.images import ArrayImages, Images
from simclr.data.sources import DATASETS
from simclr.data.subsets import SUBSET_FILE, read_subset
from simclr.errors import SimCLRError
from simclr.losses.distill import DistillLoss
from simclr.methods import StepTools
from simclr.methods.distill import Distill
from simclr.models.backbones import EncoderSpec, check_arch, resolve_stem
from simclr.models.classifier import CLASSIFIER, Classifier, classifier_from_payload, read_classifier
from simclr.train.callbacks import Callback
from simclr.train.classify import RESULTS, auto_schedule, banner, build_parts, fit_classifier, labelled_data
from simclr.train.engine import device_for, in_process_group
from simclr.train.rundir import RunDir


def distill(cfg: DistillConfig, out: str | os.PathLike, resume: bool = False, log: TextIO | None = None,
            callbacks: Sequence[Callback] = ()) -> dict[str, Any] | None:
    """Distil the fine-tuned classifier ``cfg.distill.teacher`` into a student (its network, or a
    smaller one) on every train image into ``out``; returns the test scores (``results.json``)."""
    return in_process_group(cfg, log, lambda world, lg: _distill(
        cfg, RunDir(out, resume=resume, main=world.is_main), lg, world, callbacks))


def _check_options(cfg: DistillConfig) -> None:
    ds = cfg.distill
    if not ds.teacher:
        raise SimCLRError("--teacher FT_DIR is needed: a `simclr finetune` directory")
    check_common(cfg)
    if not 0 <= ds.label_weight <= 1:
        raise SimCLRError(f"--label-weight must be in [0, 1], got {ds.label_weight}")
    if ds.student_arch is not None:
        try:
            check_arch(ds.student_arch)
        except SimCLRError as e:
            raise SimCLRError(str(e).replace("--arch", "--student-arch")) from None
    if ds.student_width is not None and not ds.student_width > 0:
        raise SimCLRError(f"--student-width must be > 0, got {ds.student_width}")
    if ds.temperature is not None and not ds.temperature > 0:
        raise SimCLRError(f"--temperature must be > 0, got {ds.temperature}")


def _teacher_labels(cfg: DistillConfig) -> Any:
    """What ``labelled_data`` picks: the teacher's subset when the label weight uses it, else nothing."""
    subset = Path(cfg.distill.teacher or "") / SUBSET_FILE

    def labelled(train: Images) -> list[int]:
        if cfg.distill.label_weight == 0:
            return []
        if not subset.is_file():
            raise SimCLRError(f"--label-weight needs the teacher's labels: {subset} does not exist")
        return read_subset(subset, train)

    return labelled


def _student(payload: dict[str, Any], arch: str, width: float, size: int, seed: int) -> Classifier:
    """A student from scratch with the teacher's stem, input normalisation and classes."""
    torch.manual_seed(seed)
    teacher = EncoderSpec.from_dict(payload)
    # the teacher's small-image stem where the student can take one, and its constructor arguments if the same model
    stem = teacher.stem if teacher.stem == "imagenet" or resolve_stem("auto", 8, arch) == "cifar" else "imagenet"
    kwargs = teacher.kwargs if arch == teacher.arch else {}
    encoder = EncoderSpec(arch, width, stem, teacher.input_norm, size, kwargs).build(zero_init_residual=True)
    student = Classifier(encoder, int(payload["num_classes"]))
    student.classes = list(payload.get("classes", []))
    return student


def _distill(cfg: DistillConfig, run: RunDir, log: TextIO, world: distributed.DistContext,
             extra: Sequence[Callback]) -> dict[str, Any] | None:
    ds, t = cfg.distill, cfg.train
    _check_options(cfg)
    payload = read_classifier(ds.teacher)  # type: ignore[arg-type]
    ckpt = run.read_checkpoint()
    info_t = payload.get("info", {})
    dataset = cfg.data.dataset
    data_dir = cfg.data.data_dir or (info_t.get("data_dir") if dataset == info_t.get("dataset") else None)
    size = int(payload["image_size"])
    data = labelled_data(cfg, dataset, data_dir, size, _teacher_labels(cfg))
    arch = ds.student_arch or payload["arch"]
    width = ds.student_width if ds.student_width is not None else float(payload["width_multiplier"])
    if ds.temperature is None:
        # 1.0 for every student: v2's 0.1 for self-distillation left a from-scratch student at 59.9 / 46.3 /
        # 10.0 (chance) at 1% / 10% / 100% of Fashion-MNIST's labels where 1.0 gave 77.7 (BENCHMARKS.md)
        ds.temperature = 1.0
    t.epochs, t.batch_size = auto_schedule(len(data.train), len(data.train), t.epochs, t.batch_size)
    if cfg.augment.crop_scale is None:
        cfg.augment.crop_scale = DATASETS[dataset].crop_scale or (0.08, 1.0)
    cfg.data.dataset, cfg.data.data_dir, cfg.data.image_size = dataset, data_dir, size
    device, precision, precision_line = device_for(cfg, world, ckpt)
    run.prepare()

    student = _student(payload, arch, width, size, t.seed)
    teacher = classifier_from_payload(payload, ds.teacher).to(device)  # type: ignore[arg-type]
    loss = DistillLoss(ds.temperature, ds.label_weight)

    def method_of(model: nn.Module, tools: StepTools) -> Distill:
        return Distill(model, teacher, loss, net=tools.net, prepare=tools.prepare, autocast=tools.autocast)

    parts = build_parts(cfg, student, _relabelled(data.train, data.indices), device, world, ckpt,
                        str(run.checkpoint_path), method_of, precision, log)
    same = arch == payload["arch"] and width == float(payload["width_multiplier"])
    kind = f"{'self-' if same else ''}distilling {ds.teacher} (T {ds.temperature:g}, label weight {ds.label_weight:g})"
    if precision_line:
        print(precision_line, file=log)
    print(banner(kind, student, data, parts), file=log)
    print(f"{len(data.train)} train images, labels unused"
          + (f" but for the teacher's {len(data.indices)}" if data.indices else ""), file=log)
    info = {"dataset": dataset, "data_dir": data_dir, "random_init": False, "run": str(ds.teacher), "method": "distill",
            "teacher": str(ds.teacher), "teacher_top1": _teacher_top1(ds.teacher), "student_arch": arch,  # type: ignore[arg-type]
            "student_width": width, "temperature": ds.temperature, "label_weight": ds.label_weight,
            "labels": len(data.indices), "epochs": t.epochs, "batch_size": t.batch_size}
    # train_top1 of the results: on every train image (the student saw them all)
    result = fit_classifier(parts, run, replace(data, indices=data.indices or list(range(len(data.train)))), info,
                            log, extra)
    if result is not None:
        teacher_top1 = info["teacher_top1"]
        print(f"teacher top1 {teacher_top1:.4f}; " if teacher_top1 is not None else "", end="", file=log)
        print(f"student classifier saved to {run.file(CLASSIFIER)}, scores to {run.file(RESULTS)}", file=log)
    return result


def _relabelled(images: Images, keep: list[int]) -> Images:
    """``images`` with every label -1 but those at ``keep`` (the labels the label weight uses)."""
    labels = torch.full_like(images.labels, -1)
    if keep:
        idx = torch.as_tensor(keep)
        labels[idx] = images.labels[idx]
    if isinstance(images, ArrayImages):
        return replace(images, labels=labels)  # the same image tensor, no copy
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


__all__ = ["distill"]
