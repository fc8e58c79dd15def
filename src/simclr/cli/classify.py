"""``simclr finetune`` and ``simclr distill``: classifiers trained from a run with few labels."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simclr.cli.flags import Flag, add_config_flags, config_flags, given_overrides
from simclr.config import DistillConfig, FinetuneConfig, apply_overrides, load_yaml

FINETUNE_FLAGS = config_flags(FinetuneConfig)
DISTILL_FLAGS = config_flags(DistillConfig)


def add_commands(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    ft = sub.add_parser(
        "finetune", help="fine-tune a run's encoder with a linear classifier on a labelled subset",
        description="Fine-tune the whole network (encoder, the head's first --from-head-layer layers, a linear "
        "classifier) on a class-balanced labelled subset: SimCLR's semi-supervised protocol (v1 defaults: Nesterov "
        "SGD lr 0.05 x B/256, no weight decay, crop + flip). --random-init: the same network from scratch.",
    )
    ft.add_argument("--run", "--run-dir", dest="run", required=True, help="the pretraining run directory")
    _common(ft, FINETUNE_FLAGS, {"data.dataset": "the labelled dataset to fine-tune on (default: the run's own, "
                                 "from its config.yaml): synthetic, folder, cifar10, cifar100, stl10, mnist, "
                                 "fashion-mnist"})
    ds = sub.add_parser(
        "distill", help="distil a fine-tuned classifier into a student on every image (SimCLRv2)",
        description="SimCLRv2's distillation: a student (the teacher's network, or a smaller one) learns the "
        "teacher's softened predictions on every train image, labels unused (--label-weight mixes in the teacher's "
        "labelled subset). Crop + flip.",
    )
    ds.add_argument("--teacher", required=True, help="a `simclr finetune` (or distill) directory")
    _common(ds, DISTILL_FLAGS, {"data.dataset": "the dataset to distil on (default: the teacher's): synthetic, "
                                "folder, cifar10, cifar100, stl10, mnist, fashion-mnist"})
    return {"finetune": finetune_command, "distill": distill_command}


def _common(p: argparse.ArgumentParser, flags: list[Flag], helps: dict[str, str]) -> None:
    p.add_argument("--out", required=True, help="output directory (classifier.pt, results.json, checkpoint)")
    p.add_argument("--config", help="a YAML config, e.g. the config.yaml of an earlier run of this command")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    add_config_flags(p, flags, helps)


def _config(args: argparse.Namespace, cfg: Any, flags: list[Flag]) -> Any:
    config_path = args.config
    own = Path(args.out) / "config.yaml"
    if config_path is None and args.resume and own.exists():
        config_path = str(own)
    if config_path:
        saved = load_yaml(config_path)
        if args.resume and config_path == str(own):
            saved.get("train", {}).pop("max_steps", None)
        apply_overrides(cfg, saved, config_path)
    apply_overrides(cfg, given_overrides(args, flags), "command line")
    return cfg


def _given(args: argparse.Namespace, key: str) -> bool:
    return getattr(args, key.replace(".", "__"), None) is not None or bool(args.config or args.resume)


def finetune_command(args: argparse.Namespace) -> int:
    from simclr.train.finetune import finetune

    cfg = _config(args, FinetuneConfig(), FINETUNE_FLAGS)
    cfg.model.run = args.run
    if not _given(args, "data.dataset"):  # the run's own dataset
        run_data = _yaml(Path(args.run) / "config.yaml").get("data", {})
        cfg.data.dataset = run_data.get("dataset", cfg.data.dataset)
    result = finetune(cfg, args.out, resume=args.resume, log=sys.stderr)
    return _report(result, "finetune")


def distill_command(args: argparse.Namespace) -> int:
    from simclr.models.classifier import read_classifier
    from simclr.train.distill import distill

    cfg = _config(args, DistillConfig(), DISTILL_FLAGS)
    cfg.distill.teacher = args.teacher
    if not _given(args, "data.dataset"):  # the teacher's dataset
        cfg.data.dataset = read_classifier(args.teacher).get("info", {}).get("dataset", cfg.data.dataset)
    return _report(distill(cfg, args.out, resume=args.resume, log=sys.stderr), "distill")


def _yaml(path: Path) -> dict[str, Any]:
    return load_yaml(path) if path.is_file() else {}


def _report(result: dict[str, Any] | None, kind: str) -> int:
    if result is not None:  # None: another rank, or stopped by a signal (the log says so)
        print(f"{kind}: " + " ".join(f"{k} {v:.4f}" for k, v in result.items() if k in ("top1", "top5")))
    return 0
