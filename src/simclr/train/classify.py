"""What fine-tuning and distillation share: a classifier trained on one-view batches by the one loop.

``simclr.train.finetune`` and ``simclr.train.distill`` each validate their input (before any output
directory exists), then build their run with ``build_parts`` (a classifier's choices for the one run
builder, ``simclr.train.engine.build_run``: one crop + flip view per image, Nesterov SGD with a cosine
schedule, the method) and hand it to ``fit_classifier`` (``fit_run``: progress, metrics, resume,
checkpoints, signals, torchrun as ``pretrain``). ``ClassifierOutputs`` writes ``classifier.pt`` when
training ends and scores it on the test split into ``results.json`` (top1 / top5 / train_top1 as
``linear-eval``'s JSON, and how it was trained).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
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
from simclr.data.sources import DATASETS, load_images
from simclr.errors import SimCLRError
from simclr.eval.classifier import evaluate_classifier
from simclr.methods import Method, StepTools
from simclr.models.classifier import CLASSIFIER, Classifier, classifier_payload
from simclr.optim import build_optimizer, cosine_schedule
from simclr.train.callbacks import Callback
from simclr.train.engine import Training, build_run, precision_text
from simclr.train.loop import Trainer
from simclr.train.run import fit_run
from simclr.train.rundir import RunDir

RESULTS = "results.json"


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
                method_of: Callable[[nn.Module, StepTools], Method], precision: str,
                log: TextIO | None = None) -> Training:
    """A classifier's choices for the one run builder (``simclr.train.engine.build_run``): one crop + flip
    view per image (``classifier_augment``), Nesterov SGD at ``--lr`` or ``--base-lr`` x B/256, warm-up +
    cosine, the method ``method_of(model, tools)`` (fine-tuning's or distillation's)."""
    t, o = cfg.train, cfg.optim
    assert t.batch_size is not None and t.epochs is not None
    peak_lr = o.lr if o.lr is not None else o.base_lr * t.batch_size / 256
    return build_run(
        cfg, model, images, device, world=world, precision=precision,
        augment=classifier_augment(cfg.augment), image_size=model.image_size or 224, views=1,
        optimizer=lambda m: build_optimizer("sgd", m, peak_lr, o.weight_decay, o.momentum, nesterov=True),
        peak_lr=peak_lr, schedule=lambda spe: cosine_schedule(peak_lr, o.warmup_epochs, spe, spe * t.epochs),
        method=method_of, ckpt=ckpt, guard_where=where, log=log,
    )


class ClassifierOutputs(Callback):
    """At the end of training (not after a signal): ``classifier.pt``, then the test-split scores in
    ``results.json`` (rank 0; the other ranks wait)."""

    def __init__(self, run: RunDir, parts: Training, data: LabelledData, info: dict[str, Any],
                 log: TextIO) -> None:
        self.run, self.parts, self.data, self.info, self.log = run, parts, data, info, log
        self.result: dict[str, Any] | None = None
        self.started = time.perf_counter()

    def on_fit_end(self, trainer: Trainer) -> None:
        if trainer.state.interrupted or not self.parts.world.is_main:
            return
        trainer.check_finite()
        model, d = self.parts.model, self.data
        self.run.save(classifier_payload(model, d.image_size, self.info), CLASSIFIER)
        kw = dict(image_size=d.image_size, device=self.parts.device, batch_size=256,
                  workers=self.parts.cfg.data.workers, precision=self.parts.precision)
        print(f"scoring on the {len(d.test)} test images ...", file=self.log)
        result = evaluate_classifier(model, d.test, **kw)  # type: ignore[arg-type]
        labelled = d.train.subset(d.indices)
        result["train_top1"] = evaluate_classifier(model, labelled, ks=(1,), **kw)["top1"]  # type: ignore[arg-type]
        result.update(self.info, steps=trainer.state.step, train_minutes=round(trainer.state.train_seconds() / 60, 2),
                      wall_minutes=round((time.perf_counter() - self.started) / 60, 2))
        self.run.write_text(RESULTS, json.dumps(result, indent=2) + "\n")
        self.run.summary.update(result)  # the loggers' summary: the test scores
        self.result = result


def fit_classifier(parts: Training, run: RunDir, data: LabelledData, info: dict[str, Any], log: TextIO,
                   extra: Sequence[Callback]) -> dict[str, Any] | None:
    """Train ``parts`` into ``run`` (``fit_run``), then ``classifier.pt`` and ``results.json``; returns the
    scores (None on ranks other than 0, or after a stop by signal)."""
    outputs = ClassifierOutputs(run, parts, data, info, log)
    state = fit_run(parts, run, log, outputs=[outputs, *extra])
    return None if state.interrupted else outputs.result


def banner(kind: str, model: Classifier, data: LabelledData, parts: Training) -> str:
    t, enc = parts.cfg.train, model.encoder
    s = parts.cfg.augment.color_strength
    views = f"crop + flip + colour {s:g}" if s > 0 else "crop + flip"
    return (f"{kind} | dataset {data.dataset} | {enc.arch} x{enc.width_multiplier} stem {enc.stem_type} | "
            f"image size {data.image_size} | "
            f"{'head layers ' + str(model.head_layers) + ' + ' if model.head_layers else ''}"
            f"linear -> {model.num_classes} classes\n"
            f"Nesterov SGD peak lr {parts.peak_lr:.4g} | weight decay {parts.cfg.optim.weight_decay} | cosine | "
            f"batch {t.batch_size} x {len(parts.loader)} steps/epoch x {t.epochs} epochs | {views} | "
            f"{precision_text(parts)}")


__all__ = [
    "RESULTS", "ClassifierOutputs", "LabelledData", "auto_schedule", "banner", "build_parts",
    "classifier_augment", "fit_classifier", "labelled_data", "run_config",
]
