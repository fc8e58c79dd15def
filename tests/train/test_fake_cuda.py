"""Every training configuration built and run for ``cuda`` on a fake GPU (``tests/fake_cuda.py``).

No device mismatch (a CPU tensor meeting a CUDA tensor raises there, as on a GPU) and the host reads of
CUDA tensors per step: none on a step that does not log (one under fp16: torch's grad scaler reads its
overflow flag), one on a log step (the loss, the method's logs, the finiteness guard and the health
signals together), more only where a run ends or writes a checkpoint or a monitor evaluates.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fake_cuda import HostReads, fake_cuda
from helpers import records, tiny_config

from simclr import Callback, pretrain
from simclr.cli.main import main


class StepReads(Callback):
    """Host reads per step, counted from the start of the loop; epoch-end work (the checkpoint) belongs to
    the step that ended the epoch. Must be the last callback."""

    def __init__(self, reads: HostReads) -> None:
        self.reads = reads
        self.per_step: dict[int, list[str]] = {}
        self.log_steps: set[int] = set()
        self.ends: set[int] = set()
        self.last = 0

    def on_fit_start(self, trainer) -> None:  # noqa: ANN001
        self.reads.events.clear()

    def on_step_end(self, trainer, event) -> None:  # noqa: ANN001
        self.per_step[event.step] = list(self.reads.events)
        self.reads.events.clear()
        if event.log:
            self.log_steps.add(event.step)
        if event.end_of_epoch or event.final:
            self.ends.add(event.step)
        self.last = event.step

    def on_epoch_end(self, trainer) -> None:  # noqa: ANN001
        self.per_step[self.last] += self.reads.events
        self.reads.events.clear()


class ReadsTheLoss(Callback):
    def on_train_step(self, trainer, batch, output) -> None:  # noqa: ANN001
        output.loss.item()


CASES = {
    "fp32": {"train.precision": "fp32"},
    "bf16": {"train.precision": "bf16"},
    "fp16": {"train.precision": "fp16"},
    "auto on an H100": {"train.precision": "auto"},
    "chunked bf16": {"train.chunk_size": 8, "train.precision": "bf16"},
    "per-view BN": {"train.bn_views": "per-view", "train.precision": "bf16"},
    "sgd, no probe": {"optim.optimizer": "sgd", "monitor.online_probe": False},
    "lars, probe and kNN": {"optim.optimizer": "lars", "monitor.knn_every": 1},
    "supcon": {"loss.name": "supcon", "loss.temperature": 0.1},
}


def dry_run(tmp_path: Path, overrides: dict, card: tuple[str, tuple[int, int]] | None = None,
            extra: tuple[Callback, ...] = ()) -> tuple[StepReads, Path]:
    name, capability = card or ("NVIDIA H100 80GB HBM3 (fake)", (9, 0))
    out = tmp_path / "run"
    with fake_cuda(name, capability) as reads:
        steps = StepReads(reads)
        pretrain(tiny_config(**{"train.device": "cuda", "train.log_every": 2, **overrides}), out,
                 callbacks=[*extra, steps])
    return steps, out


@pytest.mark.parametrize("case", list(CASES))
def test_a_pretraining_run_on_a_gpu_reads_the_host_once_per_log_step(tmp_path: Path, case: str) -> None:
    steps, out = dry_run(tmp_path, CASES[case])
    fp16 = case == "fp16"
    scaler = ["Tensor.item"] if fp16 else []  # GradScaler.step reads its overflow flag: its design
    assert steps.log_steps == {2, 3, 4, 6} and steps.ends == {3, 6}
    for step, events in steps.per_step.items():
        if step not in steps.log_steps:
            assert events == scaler, (step, events)
        elif step not in steps.ends:
            assert events == [*scaler, "Tensor.tolist"], (step, events)
        else:  # the epoch's checkpoint (and the run's end: the probe's test score, the encoder file, kNN)
            assert events[: len(scaler) + 1] == [*scaler, "Tensor.tolist"], (step, events)
            assert "torch.save of CUDA tensors" in events
    rows = records(out)
    assert [r["step"] for r in rows] == [2, 3, 4, 6]
    want = "bf16" if case == "auto on an H100" else CASES[case].get("train.precision", "fp32")
    assert all(r["precision"] == want for r in rows)


def test_the_counter_catches_a_read_on_every_step(tmp_path: Path) -> None:
    steps, _ = dry_run(tmp_path, {}, extra=(ReadsTheLoss(),))
    assert steps.per_step[1] == ["Tensor.item"] and steps.per_step[5] == ["Tensor.item"]


@pytest.mark.parametrize("card, want", [
    (("Tesla T4 (fake)", (7, 5)), "fp16"),
    (("Tesla P100 (fake)", (6, 0)), "fp32"),
])
def test_auto_on_an_older_card_runs_what_its_capability_allows(tmp_path: Path, card: tuple, want: str,
                                                               capsys: pytest.CaptureFixture) -> None:
    steps, out = dry_run(tmp_path, {"train.precision": "auto", "monitor.online_probe": False}, card)
    assert f"precision auto: {want} ({card[0]} (compute capability" in capsys.readouterr().err
    assert all(r["precision"] == want for r in records(out))
    if want == "fp16":
        assert steps.per_step[1] == ["Tensor.item"]  # the grad scaler's one read: fp16 is running


def test_a_device_mismatch_is_caught(tmp_path: Path) -> None:
    """A tensor left on the CPU meets the model's CUDA activations: the dry run raises as a GPU would."""

    class CpuBias(Callback):
        def on_train_step(self, trainer, batch, output) -> None:  # noqa: ANN001
            output.features + torch.ones(output.features.shape[1])  # a CPU tensor with a CUDA one

    with pytest.raises(RuntimeError, match="cuda|device"):
        dry_run(tmp_path, {}, extra=(CpuBias(),))


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fake-cuda") / "run"
    pretrain(tiny_config(**{"model.head_layers": 3, "monitor.online_probe": False}), out)
    return out


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_finetune_distill_and_evaluation_on_a_gpu(cpu_run: Path, tmp_path: Path, precision: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Fine-tuning, then distilling it, then linear evaluation of the run, all for cuda: no mismatch, no
    read on a step that does not log (fp16: the grad scaler's one)."""
    import importlib

    common = ["--limit", "240", "--workers", "0", "--device", "cuda", "--precision", precision]
    counted: list[StepReads] = []
    with fake_cuda() as reads:
        for name in ("finetune", "distill"):  # the commands' loops, with the step counter as their last callback
            module = importlib.import_module(f"simclr.train.{name}")
            real_fit = module.fit_classifier

            def fit(parts, run, data, info, log, extra, real_fit=real_fit):  # noqa: ANN001, ANN202
                counted.append(StepReads(reads))
                return real_fit(parts, run, data, info, log, [*extra, counted[-1]])

            monkeypatch.setattr(module, "fit_classifier", fit)
        assert main(["finetune", "--run", str(cpu_run), "--out", str(tmp_path / "ft"), *common,
                     "--label-fraction", "0.5", "--epochs", "1", "--batch-size", "16", "--log-every", "3"]) == 0
        assert main(["distill", "--teacher", str(tmp_path / "ft"), "--out", str(tmp_path / "ds"), *common,
                     "--epochs", "1", "--batch-size", "32", "--log-every", "3"]) == 0
        assert main(["linear-eval", "--run", str(cpu_run), "--limit", "240", "--device", "cuda",
                     "--precision", "bf16"]) == 0
    scaler = ["Tensor.item"] if precision == "fp16" else []
    assert len(counted) == 2
    for steps in counted:
        quiet = [e for s, e in steps.per_step.items() if s not in steps.log_steps]
        assert quiet and all(e == scaler for e in quiet), steps.per_step
        ordinary = [e for s, e in steps.per_step.items() if s in steps.log_steps and s not in steps.ends]
        assert ordinary and all(e == [*scaler, "Tensor.tolist"] for e in ordinary), steps.per_step
    assert (tmp_path / "ds" / "results.json").exists()
