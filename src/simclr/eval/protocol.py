"""The evaluation protocols on a trained run: what ``simclr linear-eval`` and ``simclr knn`` do.

``run_features`` loads a run's encoder (or the same architecture untrained: the baseline to beat),
the labelled train and test splits of a dataset (the run's by default), and extracts h for both
with the encoder frozen, checking that nothing changed it. ``evaluate_linear`` and ``evaluate_knn``
then fit and score; under torchrun every rank encodes a share and rank 0 alone fits and returns.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from simclr import distributed
from simclr.config import load_yaml
from simclr.data.images import Images
from simclr.data.sources import load_images
from simclr.data.subsets import balanced_subset, read_subset
from simclr.errors import SimCLRError
from simclr.eval.features import check_finite, extract_features
from simclr.eval.knn import knn_eval
from simclr.eval.linear import linear_eval
from simclr.models.backbones import spec_of
from simclr.models.weights import CHECKPOINT, ENCODER, load_encoder, load_head
from simclr.optim import run_length
from simclr.runtime import pick_device, resolve_precision


@dataclass
class FeatureSplits:
    """Frozen features of a run on a dataset's train and test splits."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    dataset: str
    source: str  # the run evaluated, or "random-init"
    layer: str = "h"  # h (the encoder's output) or z (after the projection head)
    split: str = "test"  # what test_x holds: the test split, or "val" (a hold-out of the train split)


def _run_data_config(run: str | os.PathLike) -> dict[str, Any]:
    run_dir = Path(run) if Path(run).is_dir() else Path(run).parent
    return load_yaml(run_dir / "config.yaml").get("data", {}) if (run_dir / "config.yaml").exists() else {}


def unfinished_run(run: str | os.PathLike) -> tuple[int, int | None] | None:
    """(the step reached, the run's planned steps or None when unknown) of a run directory that has no
    ``encoder.pt`` yet (training, or stopped) and whose checkpoint is what would be evaluated; None for a
    finished run or a file. Read from its small files (``metrics.jsonl``, ``config.yaml``), not the checkpoint."""
    p = Path(run)
    if not p.is_dir() or (p / ENCODER).exists() or not (p / CHECKPOINT).exists():
        return None
    lines = (p / "metrics.jsonl").read_text().splitlines() if (p / "metrics.jsonl").exists() else []
    last = json.loads(lines[-1]) if lines else {}
    step = int(last.get("step", 0))
    train = (load_yaml(p / "config.yaml").get("train", {}) if (p / "config.yaml").exists() else {})
    max_steps = int(train["max_steps"]) if train.get("max_steps") else None
    if not (step and last.get("epoch") and train.get("epochs")):
        return step, max_steps
    per_epoch = round(step / float(last["epoch"]))  # the records' epoch is fractional: steps / steps per epoch
    return step, run_length(per_epoch, int(train["epochs"]), max_steps)


def untrained_like(encoder: nn.Module, seed: int = 0) -> nn.Module:
    """The same architecture untrained, with a standard init (simclr's ResNet: BN gamma 1, not training's
    zero-gamma start): the fair baseline."""
    torch.manual_seed(seed)
    fresh = spec_of(encoder).build(zero_init_residual=False)
    fresh.image_size = encoder.image_size  # type: ignore[assignment]
    return fresh.eval()


LAYERS = ("h", "z")
SPLITS = ("test", "val")
VALIDATION_SEED = 0  # one hold-out for every run and --seed: candidates are compared on the same images


def validation_split(n: int) -> tuple[list[int], list[int]]:
    """(held-out, rest) indices of a train split of n images: a sixth of them (10,000 of 60,000), drawn
    with a fixed seed, each list sorted. The validation set of ``--split val``."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(VALIDATION_SEED))
    n_val = max(1, n // 6)
    return sorted(perm[:n_val].tolist()), sorted(perm[n_val:].tolist())


def untrained_head_like(head: nn.Module, seed: int = 0) -> nn.Module:
    """The same projection head with fresh weights (every layer's own ``reset_parameters``)."""
    torch.manual_seed(seed)
    fresh = copy.deepcopy(head)
    for m in fresh.modules():
        if m is not fresh and hasattr(m, "reset_parameters"):
            m.reset_parameters()  # type: ignore[operator]
    return fresh.eval()


def labelled_splits(dataset: str, data_dir: str | None, limit: int | None, seed: int, size: int, split: str = "test",
                    label_fraction: float | None = None, subset_file: str | None = None) -> tuple[Images, Images]:
    """(train, test) images of an evaluation: ``limit`` keeps the first N train and N/5 test images; ``split``
    ``val`` makes test a fixed sixth of the train split (``validation_split``) and train the rest; then the
    labelled subset of ``label_fraction`` / ``subset_file``, if any. Unlabelled images are refused."""
    train = load_images(dataset, "train", data_dir, limit, seed, size)
    if split == "val":
        held, rest = validation_split(len(train))
        train, test = train.subset(rest), train.subset(held)
    else:
        test = load_images(dataset, "test", data_dir, None if limit is None else max(1, limit // 5), seed, size)
    if bool((torch.as_tensor(train.labels) < 0).any()):
        raise SimCLRError(
            f"the {dataset} images have no labels: evaluation needs class subfolders (DIR/CLASS/img.png)"
        )
    if label_fraction is not None and subset_file is not None:
        raise SimCLRError("give one of --label-fraction and --subset-file, not both")
    if label_fraction is not None:
        train = train.subset(balanced_subset(train.labels, label_fraction, seed, train.classes))
    elif subset_file is not None:
        train = train.subset(read_subset(subset_file, train))
    return train, test


def run_features(
    run: str | os.PathLike,
    dataset: str | None = None,
    data_dir: str | None = None,
    limit: int | None = None,
    image_size: int | None = None,
    random_init: bool = False,
    batch_size: int = 256,
    workers: int = 2,
    device: str = "auto",
    precision: str = "auto",
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    label_fraction: float | None = None,
    subset_file: str | None = None,
    layer: str = "h",
    split: str = "test",
) -> FeatureSplits | None:
    """h of the train and test splits through the run's frozen encoder (``None`` on ranks other than 0
    under torchrun: rank 0 fits the classifiers). ``limit`` keeps the first N train and N/5 test images.
    ``label_fraction`` / ``subset_file``: only that labelled subset of the train split (the subsets of
    ``simclr finetune``: the same seed draws the same images). ``layer``: ``h`` (the representation,
    default) or ``z`` (after the projection head g, which only a run directory's checkpoint holds).
    ``split``: ``test`` (default) scores on the test split; ``val`` on a fixed hold-out of the train split
    (``validation_split``), the rest of the train split fitted: tune on it and keep the test split for the
    end."""
    if layer not in LAYERS:
        raise SimCLRError(f"unknown --layer {layer!r}: choose h (the encoder's output) or z (after the head)")
    if split not in SPLITS:
        raise SimCLRError(f"unknown --split {split!r}: choose test or val (a hold-out of the train split)")
    encoder = load_encoder(run)
    head = load_head(run) if layer == "z" else None
    run_cfg = _run_data_config(run)
    if random_init:
        encoder = untrained_like(encoder, seed)
        head = untrained_head_like(head, seed) if head is not None else None
    dataset = dataset or run_cfg.get("dataset")
    if not dataset:
        raise SimCLRError("pass --dataset (the run has no config.yaml to take it from)")
    data_dir = data_dir or (run_cfg.get("data_dir") if dataset == run_cfg.get("dataset") else None)
    size = image_size or int(encoder.image_size)  # type: ignore[arg-type]
    world = distributed.init_from_env(device)  # under torchrun: each rank encodes a share
    dev = pick_device(distributed.rank_device(device, world))
    net: nn.Module = encoder if head is None else nn.Sequential(encoder, head)
    net = net.to(dev)
    train, test = labelled_splits(dataset, data_dir, limit, seed, size, split, label_fraction, subset_file)
    precision, line = distributed.broadcast_object(resolve_precision(precision, dev))  # rank 0's on every rank
    if log and line and world.is_main:
        log(line)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    xtr, ytr = extract_features(net, train, size, dev, batch_size, workers, precision)
    xte, yte = extract_features(net, test, size, dev, batch_size, workers, precision)
    after = net.state_dict()
    changed = torch.stack([(after[k] != v).any() for k, v in before.items()]).tolist()  # one read, not one a tensor
    for k, bad in zip(before, changed, strict=True):
        if bad:
            raise RuntimeError(f"evaluation changed the encoder's {k}: this is a bug")
    check_finite(xtr, "train")
    check_finite(xte, "test")
    if not world.is_main:
        return None
    source = "random-init" if random_init else str(run)
    if log:
        log(f"{source}: {len(xtr)} train / {len(xte)} test images of {dataset}, {layer} dim {xtr.shape[1]}")
    return FeatureSplits(xtr, ytr, xte, yte, dataset, source, layer, split)


def _with_provenance(result: dict[str, Any], splits: FeatureSplits, run: str | os.PathLike,
                     random_init: bool, log: Callable[[str], None] | None) -> dict[str, Any]:
    result.update(dataset=splits.dataset, layer=splits.layer, random_init=random_init, run=str(run),
                  scored_on="test" if splits.split == "test" else "validation (a held-out sixth of the train split)")
    progress = None if random_init else unfinished_run(run)
    if progress is not None:  # an unfinished run is scored as such, and says so
        step, total = progress
        result.update(run_finished=False, run_step=step, run_steps=total)
        if log:
            log(f"note: {run} is unfinished: run at step {step} of {total if total else '?'} (no {ENCODER} yet: "
                f"its {CHECKPOINT} is evaluated)")
    return result


def evaluate_linear(run: str | os.PathLike, *, seed: int = 0, log: Callable[[str], None] | None = None,
                    **kwargs: Any) -> dict[str, Any] | None:
    """``run_features`` then ``linear_eval``: top1, top5, train_top1, l2, dataset, random_init, run."""
    splits = run_features(run, seed=seed, log=log, **kwargs)
    if splits is None:
        return None
    result = linear_eval(splits.train_x, splits.train_y, splits.test_x, splits.test_y, seed=seed, log=log)
    return _with_provenance(result, splits, run, kwargs.get("random_init", False), log)


def evaluate_knn(run: str | os.PathLike, *, k: int = 200, temperature: float = 0.1,
                 log: Callable[[str], None] | None = None, **kwargs: Any) -> dict[str, Any] | None:
    """``run_features`` then ``knn_eval``: top1 (top5 with >= 5 classes), k, dataset, random_init, run."""
    splits = run_features(run, log=log, **kwargs)
    if splits is None:
        return None
    result = knn_eval(splits.train_x, splits.train_y, splits.test_x, splits.test_y, k=k, temperature=temperature)
    return _with_provenance(result, splits, run, kwargs.get("random_init", False), log)


__all__ = ["LAYERS", "SPLITS", "FeatureSplits", "evaluate_knn", "evaluate_linear", "labelled_splits", "run_features",
           "unfinished_run", "untrained_head_like", "untrained_like", "validation_split"]
