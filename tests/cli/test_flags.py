"""The pretrain flags come from the config dataclasses: one per command-line field, with its help, and
every flag of earlier versions still there and landing in its field."""

from __future__ import annotations

import dataclasses

import pytest

from simclr.cli.flags import config_flags
from simclr.cli.main import build_parser
from simclr.cli.pretrain import config_from_args
from simclr.config import sections

# every flag `simclr pretrain` had before the flags were derived (the hand-kept table), and its key
EARLIER = {
    "--dataset": "data.dataset", "--data-dir": "data.data_dir", "--image-size": "data.image_size",
    "--limit": "data.limit", "--workers": "data.workers", "--arch": "model.arch",
    "--width-multiplier": "model.width_multiplier", "--stem": "model.stem", "--head": "model.head",
    "--head-layers": "model.head_layers", "--head-bn": "model.head_bn", "--head-out-bn": "model.head_out_bn",
    "--zero-init-residual": "model.zero_init_residual", "--proj-dim": "model.proj_dim",
    "--input-norm": "model.input_norm", "--color-strength": "augment.color_strength", "--blur": "augment.blur",
    "--crop-interpolation": "augment.crop_interpolation", "--augment-on": "augment.on",
    "--temperature": "loss.temperature", "--optimizer": "optim.optimizer", "--lr": "optim.lr",
    "--base-lr": "optim.base_lr", "--lr-scaling": "optim.lr_scaling", "--weight-decay": "optim.weight_decay",
    "--decay-1d": "optim.decay_1d", "--momentum": "optim.momentum", "--warmup-epochs": "optim.warmup_epochs",
    "--lr-schedule": "optim.lr_schedule", "--epochs": "train.epochs", "--batch-size": "train.batch_size",
    "--max-steps": "train.max_steps", "--precision": "train.precision", "--channels-last": "train.channels_last",
    "--seed": "train.seed", "--device": "train.device", "--log-every": "train.log_every",
    "--chunk-size": "train.chunk_size", "--bn-views": "train.bn_views", "--global-bn": "train.global_bn",
    "--checkpoint-every-steps": "train.checkpoint_every_steps", "--compile": "train.compile",
    "--save-every-epoch": "train.save_every_epoch", "--dist-backend": "train.dist_backend",
}


def test_every_command_line_field_has_one_flag_with_its_help() -> None:
    flags = {f.flag: f for f in config_flags()}
    fields = {f"{name}.{fl.name}": fl for name, sec in sections().items() for fl in dataclasses.fields(sec)}
    cli_fields = {k for k, f in fields.items() if f.metadata.get("cli", True) and "tuple" not in str(f.type)}
    assert {f.key for f in flags.values()} == cli_fields
    for f in flags.values():
        assert f.help == fields[f.key].metadata["help"] and len(f.help) > 10, f.flag
    assert {"--online-probe", "--knn-every"} <= set(flags)
    assert "--crop-scale" not in flags and "--flip-p" not in flags  # YAML keys only


def test_earlier_flags_all_remain_and_reach_their_field() -> None:
    flags = {f.flag: f.key for f in config_flags()}
    assert {flag: flags.get(flag) for flag in EARLIER} == EARLIER


@pytest.mark.parametrize(("argv", "key", "value"), [
    (["--width-multiplier", "0.5"], "model.width_multiplier", 0.5),
    (["--no-head-bn"], "model.head_bn", False),
    (["--augment-on", "workers"], "augment.on", "workers"),
    (["--knn-every", "2"], "monitor.knn_every", 2),
    (["--no-online-probe"], "monitor.online_probe", False),
    (["--max-steps", "7"], "train.max_steps", 7),
])
def test_a_flag_sets_its_field_and_nothing_else(argv: list[str], key: str, value: object) -> None:
    parser, _ = build_parser()
    cfg = config_from_args(parser.parse_args(["pretrain", "--out", "unused", *argv]))
    section, name = key.split(".")
    assert getattr(getattr(cfg, section), name) == value
    default = config_from_args(parser.parse_args(["pretrain", "--out", "unused"])).to_dict()
    changed = {f"{s}.{k}" for s, sec in cfg.to_dict().items() for k, v in sec.items() if default[s][k] != v}
    assert changed == {key}
