"""One run builder and one schema for every training command: pretrain, finetune and distill build
their parts through ``simclr.train.engine.build_run``, share the ``train`` fields they have in common
(``RunTrain``) and refuse a bad shared value with the same line."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from simclr import pretrain
from simclr.cli.flags import config_flags
from simclr.cli.main import main
from simclr.config import DistillConfig, FinetuneConfig, PretrainConfig, apply_overrides
from simclr.config.schema import ClassifierTrain, RunTrain, TrainConfig
from simclr.train import engine
from simclr.train.callbacks import Callback, LoopView
from simclr.train.distill import distill
from simclr.train.finetune import finetune
from tests.helpers import tiny_config


class Seen(Callback):
    """Keeps the step object the loop ran."""

    def __init__(self, into: list) -> None:
        self.into = into

    def on_fit_start(self, trainer: LoopView) -> None:
        self.into.append(trainer.step_fn)  # type: ignore[attr-defined]


def test_every_command_builds_its_run_with_the_one_builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list = []

    class CountedStep(engine.TrainStep):
        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(engine, "TrainStep", CountedStep)
    ran: list = []
    run, ft, st = tmp_path / "run", tmp_path / "ft", tmp_path / "st"
    pretrain(tiny_config(**{"model.head_layers": 3, "monitor.online_probe": False, "train.epochs": 1}), run,
             callbacks=[Seen(ran)])
    common = {"data.limit": 240, "data.workers": 0, "train.epochs": 1, "train.batch_size": 16, "train.device": "cpu",
              "train.precision": "fp32"}
    fcfg = FinetuneConfig()
    apply_overrides(fcfg, {**common, "model.run": str(run), "labels.label_fraction": 0.25}, "test")
    finetune(fcfg, ft, callbacks=[Seen(ran)])
    dcfg = DistillConfig()
    apply_overrides(dcfg, {**common, "distill.teacher": str(ft)}, "test")
    distill(dcfg, st, callbacks=[Seen(ran)])
    # one TrainStep per command, made by build_run, and it is the one each loop ran
    assert len(made) == 3 and all(a is b for a, b in zip(made, ran, strict=True))
    assert [type(s.method).__name__ for s in made] == ["SimCLR", "FineTune", "Distill"]


def test_the_shared_train_fields_are_declared_once() -> None:
    shared = {f.name: f for f in dataclasses.fields(RunTrain)}
    for section in (TrainConfig, ClassifierTrain):
        fields = {f.name: f for f in dataclasses.fields(section)}
        assert list(fields)[: len(shared)] == list(shared)  # the shared fields first, in one order
        for name, f in shared.items():
            if section is ClassifierTrain and name in ("epochs", "batch_size"):  # restated: auto from the labels
                assert fields[name].default is None
                continue
            assert fields[name].metadata == f.metadata and fields[name].default == f.default, (section, name)


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--log-every", "0", "--log-every must be >= 1, got 0"),
    ("--max-steps", "0", "--max-steps must be >= 1, got 0"),
    ("--precision", "fp8", "--precision 'fp8' is not valid"),
    ("--checkpoint-every-steps", "0", "--checkpoint-every-steps must be >= 1, got 0"),
    ("--momentum", "1.0", r"--momentum must be in \[0, 1\), got 1.0"),
    ("--workers", "-1", "--workers must be >= 0, got -1"),
])
def test_a_bad_shared_value_is_refused_alike_by_every_command(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                              flag: str, value: str, message: str) -> None:
    lines = []
    for argv in (["pretrain"], ["finetune", "--run", str(tmp_path)], ["distill", "--teacher", str(tmp_path)]):
        out = tmp_path / argv[0]
        assert main([*argv, "--dataset", "synthetic", "--out", str(out), flag, value]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and not out.exists(), err
        lines.append(err[0])
    assert all(re.search(message, line) for line in lines), lines
    assert len(set(lines)) == 1, lines


def test_fine_tuning_and_distillation_take_compile_as_pretraining_does() -> None:
    """A shared field reaches every command's flags (fine-tuning had no --compile before the shared schema)."""
    for config in (PretrainConfig, FinetuneConfig, DistillConfig):
        assert {"--compile", "--checkpoint-every-steps", "--global-bn", "--dist-backend"} <= {
            f.flag for f in config_flags(config)}
