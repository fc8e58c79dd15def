"""``finetune(cfg, out)``: SimCLR's semi-supervised protocol (v1, section 6 / Table 7) and v2's variant.

The pretrained encoder (and, from head layer k, the projection head's first k layers, SimCLRv2) plus a
linear classifier, all trained with the cross-entropy of a class-balanced labelled subset: crop +
flip only, Nesterov SGD, lr 0.05 x B/256, no weight decay, cosine decay. ``random_init``: the same
network from scratch on the same labels, the supervised baseline. Everything is checked before the
output directory exists; the subset is written to ``OUT/subset.txt`` for every baseline to reuse.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn

from simclr import distributed
from simclr.config import FinetuneConfig, check_common
from simclr.data.images import Images
from simclr.data.sources import DATASETS
from simclr.data.subsets import SUBSET_FILE, balanced_subset, read_subset, write_subset
from simclr.errors import SimCLRError
from simclr.methods import StepTools
from simclr.methods.finetune import FineTune
from simclr.models.backbones import spec_of
from simclr.models.classifier import CLASSIFIER, Classifier
from simclr.models.heads import head_depth, hidden_layers
from simclr.models.weights import CHECKPOINT, load_encoder, load_head
from simclr.train.callbacks import Callback
from simclr.train.classify import (
    RESULTS,
    LabelledData,
    auto_schedule,
    banner,
    build_parts,
    fit_classifier,
    labelled_data,
    run_config,
)
from simclr.train.engine import device_for, in_process_group
from simclr.train.rundir import RunDir


def _subset(cfg: FinetuneConfig, train: Images) -> list[int]:
    lab = cfg.labels
    if (lab.label_fraction is None) == (lab.subset_file is None):
        raise SimCLRError("give one of --label-fraction F (e.g. 0.01) or --subset-file FILE")
    if lab.subset_file is not None:
        return read_subset(lab.subset_file, train)
    return balanced_subset(train.labels, lab.label_fraction, cfg.train.seed, train.classes)  # type: ignore[arg-type]


def finetune(cfg: FinetuneConfig, out: str | os.PathLike, resume: bool = False, log: TextIO | None = None,
             callbacks: Sequence[Callback] = ()) -> dict[str, Any] | None:
    """Fine-tune ``cfg.model.run`` (or, with ``random_init``, its network from scratch) on a labelled
    subset into ``out``; returns the test scores (``results.json``), None on ranks other than 0 or
    after a stop by signal."""
    return in_process_group(cfg, log, lambda world, lg: _finetune(
        cfg, RunDir(out, resume=resume, main=world.is_main), lg, world, callbacks))


def _head_layers(run: str, head: str, layers: int, k: int) -> None:
    deepest = head_depth(head, layers)
    if not 0 <= k <= deepest:
        what = f"a {layers}-layer mlp head" if head == "mlp" else f"a {head} head"
        raise SimCLRError(f"--from-head-layer {k}: the run {run} has {what}, so choose 0"
                          f"{'-' + str(deepest) if deepest else ''} (v2's 1 needs a --head-layers 3 run)")


def _finetune(cfg: FinetuneConfig, run: RunDir, log: TextIO, world: distributed.DistContext,
              extra: Sequence[Callback]) -> dict[str, Any] | None:
    m = cfg.model
    if not m.run:
        raise SimCLRError("--run RUN is needed: the pretraining run to fine-tune")
    if not Path(m.run).is_dir():
        raise SimCLRError(f"--run {m.run} is not a run directory")
    check_common(cfg)
    ckpt = run.read_checkpoint()
    encoder = load_encoder(m.run)
    run_cfg = run_config(m.run)
    model_cfg = run_cfg.get("model", {})
    _head_layers(m.run, model_cfg.get("head", "none"), int(model_cfg.get("head_layers", 2)), m.from_head_layer)
    if m.from_head_layer and not (Path(m.run) / CHECKPOINT).is_file():
        raise SimCLRError(f"--from-head-layer {m.from_head_layer} needs the head: {m.run} has no {CHECKPOINT}")
    dataset = cfg.data.dataset
    data_dir = cfg.data.data_dir or (run_cfg.get("data", {}).get("data_dir") if dataset == run_cfg.get(
        "data", {}).get("dataset") else None)
    size = cfg.data.image_size or int(encoder.image_size)  # type: ignore[arg-type]
    data = labelled_data(cfg, dataset, data_dir, size, functools.partial(_subset, cfg))
    t = cfg.train
    t.epochs, t.batch_size = auto_schedule(len(data.indices), len(data.train), t.epochs, t.batch_size)
    if cfg.augment.crop_scale is None:
        cfg.augment.crop_scale = tuple(run_cfg.get("augment", {}).get("crop_scale") or DATASETS[dataset].crop_scale
                                       or (0.08, 1.0))  # type: ignore[assignment]
    cfg.data.dataset, cfg.data.data_dir, cfg.data.image_size = dataset, data_dir, size
    device, precision, precision_line = device_for(cfg, world, ckpt)
    run.prepare(lambda: write_subset(run.file(SUBSET_FILE), data.train, data.indices))

    torch.manual_seed(t.seed)
    if m.random_init:
        fresh = spec_of(encoder).build(zero_init_residual=True)
        head = hidden_layers(fresh.feature_dim, m.from_head_layer, bool(model_cfg.get("head_bn", True)))
        encoder = fresh
    else:
        head = _kept_head(m.run, m.from_head_layer)
    encoder.image_size = size  # type: ignore[assignment]
    model = Classifier(encoder.train(), _num_classes(data), head, bool(model_cfg.get("head_bn", True)))
    model.classes = list(data.train.classes)
    parts = build_parts(cfg, model, data.train.subset(data.indices), device, world, ckpt, str(run.checkpoint_path),
                        _finetune_method, precision, log)
    kind = "fine-tuning from scratch (supervised baseline)" if m.random_init else f"fine-tuning {m.run}"
    if precision_line:
        print(precision_line, file=log)
    print(banner(kind + f" from head layer {m.from_head_layer}", model, data, parts), file=log)
    print(f"{len(data.indices)} labelled images of {len(data.train)} ({len(data.indices) / len(data.train):.2%}); "
          f"the subset is in {run.file(SUBSET_FILE)}", file=log)
    info = {"dataset": dataset, "data_dir": data_dir, "random_init": m.random_init, "run": str(m.run),
            "method": "finetune",
            "from_head_layer": m.from_head_layer, "labels": len(data.indices),
            "label_fraction": round(len(data.indices) / len(data.train), 6), "epochs": t.epochs,
            "batch_size": t.batch_size, "subset_file": str(run.file(SUBSET_FILE))}
    result = fit_classifier(parts, run, data, info, log, extra)
    if result is not None:
        print(f"train top1 {result['train_top1']:.4f} on the labelled images; classifier saved to "
              f"{run.file(CLASSIFIER)}, scores to {run.file(RESULTS)}", file=log)
    return result


def _finetune_method(model: nn.Module, tools: StepTools) -> FineTune:
    return FineTune(model, net=tools.net, prepare=tools.prepare, autocast=tools.autocast)


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


__all__ = ["finetune"]
