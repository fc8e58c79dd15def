"""``simclr pretrain``, ``simclr presets`` and ``simclr backbones``: a run from flags, a preset and/or a YAML
config, and what ``--preset`` and ``--arch`` take."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import yaml

from simclr.cli.flags import add_config_flags, config_flags, given_overrides
from simclr.config import PretrainConfig, apply_overrides, load_preset, load_yaml, preset_names

FLAGS = config_flags()


def add_commands(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    p = sub.add_parser(
        "pretrain",
        help="pretrain an encoder with SimCLR",
        description="Pretrain an encoder with SimCLR. Precedence: defaults < dataset defaults "
        "< --preset < --config < flags.",
    )
    p.add_argument("--out", required=True, help="run directory (config, metrics, checkpoints)")
    p.add_argument("--preset", help="a named recipe (see `simclr presets`)")
    p.add_argument("--config", help="a YAML config, e.g. a run's config.yaml")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    add_config_flags(p, FLAGS)
    sub.add_parser("presets", help="list the shipped presets and the figures the paper reports")
    b = sub.add_parser("backbones", help="list the backbone families --arch takes, or the names of one")
    b.add_argument("library", nargs="?", choices=("torchvision", "timm"), help="list this library's model names")
    b.add_argument("--filter", default="", help="only names containing this (e.g. vit, convnext)")
    return {"pretrain": pretrain_command, "presets": presets_command, "backbones": backbones_command}


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    """The run's config: defaults < --preset < --config (a resumed run's own config.yaml) < flags."""
    cfg = PretrainConfig()
    if args.preset:
        apply_overrides(cfg, load_preset(args.preset), f"preset {args.preset}")
    config_path = args.config
    if config_path is None and args.resume and (Path(args.out) / "config.yaml").exists():
        config_path = str(Path(args.out) / "config.yaml")  # resume the run as it was configured
    if config_path:
        saved = load_yaml(config_path)
        if args.resume and config_path == str(Path(args.out) / "config.yaml"):
            # a run stopped by --max-steps continues to its end unless --max-steps is given again
            saved.get("train", {}).pop("max_steps", None)
        apply_overrides(cfg, saved, config_path)
    apply_overrides(cfg, given_overrides(args, FLAGS), "command line")
    return cfg


def pretrain_command(args: argparse.Namespace) -> int:
    from simclr.train import pretrain

    pretrain(config_from_args(args), args.out, resume=args.resume, log=sys.stderr)
    # a stop asked for by SIGTERM / Ctrl-C is a clean exit once the checkpoint is saved (schedulers
    # that preempt with SIGTERM then do not count the job as failed); the log line says so
    return 0


def presets_command(args: argparse.Namespace) -> int:  # noqa: ARG001
    for name in preset_names():
        data = yaml.safe_load((resources.files("simclr") / "presets" / f"{name}.yaml").read_text())
        print(f"{name}: {data.get('reported', '')}")
        if data.get("notes"):
            print(f"    {data['notes']}")
    return 0


def backbones_command(args: argparse.Namespace) -> int:
    from simclr.models.backbones import backbone_rows, library_names

    if args.library is None:
        for fam, example, what in backbone_rows():
            print(f"{fam:12s} --arch {example:28s} {what}")
        print("names of a library: simclr backbones torchvision|timm [--filter vit]")
        return 0
    names = [n for n in library_names(args.library) if args.filter in n]
    print("\n".join(f"{args.library}/{n}" for n in names))
    return 0
