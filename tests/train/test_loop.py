"""The loop: hooks in order, no host read on non-log steps, resume with callback state, any method."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers import losses, records, tiny_config
from torch import nn

from simclr import Callback, pretrain
from simclr.io import safe_load
from simclr.methods.base import StepOutput
from simclr.optim import lr_at
from simclr.train.loop import Trainer
from simclr.train.state import TrainState
from simclr.train.step import FiniteGuard, TrainStep

READS = ("item", "__bool__", "__float__", "__int__", "tolist", "numpy")


class ReadCounter(Callback):
    """Counts host reads of tensors (the Tensor methods in READS, called from Python) per step.

    A step's window runs from the end of the previous step (its epoch end included) to the end of this
    one: the batch's making (augmentation), the step, and every callback. It must be the last callback."""

    def __init__(self) -> None:
        self.count = 0
        self.per_step: dict[int, int] = {}
        self.log_steps: set[int] = set()
        self.last = 0

    def hit(self) -> None:
        self.count += 1

    def on_fit_start(self, trainer) -> None:  # noqa: ANN001
        self.count = 0

    def on_step_end(self, trainer, event) -> None:  # noqa: ANN001
        self.per_step[event.step] = self.count
        if event.log:
            self.log_steps.add(event.step)
        self.count, self.last = 0, event.step

    def on_epoch_end(self, trainer) -> None:  # noqa: ANN001
        self.per_step[self.last] += self.count  # epoch-end work belongs to the step that ended it
        self.count = 0


@contextlib.contextmanager
def counting(counter: ReadCounter) -> Iterator[None]:
    originals = {name: getattr(torch.Tensor, name) for name in READS}

    def wrap(name: str):  # noqa: ANN202
        real = originals[name]

        def read(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            counter.hit()
            return real(self, *args, **kwargs)

        return read

    try:
        for name in READS:
            setattr(torch.Tensor, name, wrap(name))
        yield
    finally:
        for name, real in originals.items():
            setattr(torch.Tensor, name, real)


class ReadsTheLoss(Callback):
    """What the loop must never do: read the loss on every step."""

    def on_train_step(self, trainer, batch, output) -> None:  # noqa: ANN001
        output.loss.item()


CASES = {
    "joint": {},
    "per-view bf16": {"train.bn_views": "per-view", "train.precision": "bf16"},
    "chunked": {"train.chunk_size": 8},
    "lars, probe and knn": {"optim.optimizer": "lars", "monitor.knn_every": 1},
}


@pytest.mark.parametrize("case", list(CASES))
def test_no_host_read_on_non_log_steps(tmp_path: Path, case: str) -> None:
    counter = ReadCounter()
    cfg = tiny_config(**{"train.log_every": 4, "train.epochs": 3, "optim.optimizer": "sgd", **CASES[case]})
    with counting(counter):
        pretrain(cfg, tmp_path / "run", callbacks=[counter])
    assert counter.log_steps == {3, 4, 6, 8, 9}  # every 4th step, the epoch ends, the last
    quiet = {s: n for s, n in counter.per_step.items() if s not in counter.log_steps}
    assert set(quiet) == {1, 2, 5, 7} and all(n == 0 for n in quiet.values()), quiet
    assert all(counter.per_step[s] > 0 for s in counter.log_steps)  # the log steps do read (the counter works)


def test_the_read_counter_catches_a_per_step_read(tmp_path: Path) -> None:
    counter = ReadCounter()
    with counting(counter):
        pretrain(tiny_config(**{"train.log_every": 4}), tmp_path / "run", callbacks=[ReadsTheLoss(), counter])
    assert counter.per_step[1] == 1 and counter.per_step[2] == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: torch.cuda.set_sync_debug_mode")
def test_no_cuda_synchronisation_on_non_log_steps(tmp_path: Path) -> None:
    class SyncMode(Callback):
        def on_step_end(self, trainer, event) -> None:  # noqa: ANN001
            # the next step is a log step when it ends an epoch, is a multiple of log_every or the last
            nxt = event.step + 1
            log = nxt % 4 == 0 or nxt % event.steps_per_epoch == 0 or nxt >= trainer.stop_at
            torch.cuda.set_sync_debug_mode("default" if log else "error")

    cfg = tiny_config(**{"train.log_every": 4, "train.epochs": 3, "train.device": "cuda"})
    try:
        torch.cuda.set_sync_debug_mode("error")
        pretrain(cfg, tmp_path / "run", callbacks=[SyncMode()])
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(records(tmp_path / "run")) == 5


class Hooks(Callback):
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.events: list = []

    def on_fit_start(self, trainer) -> None:  # noqa: ANN001
        self.calls.append("fit_start")

    def on_batch_start(self, trainer, batch) -> None:  # noqa: ANN001
        self.calls.append(f"batch_start {trainer.state.step}")

    def on_train_step(self, trainer, batch, output) -> None:  # noqa: ANN001
        self.calls.append(f"train_step {trainer.state.step}")

    def on_step_end(self, trainer, event) -> None:  # noqa: ANN001
        self.calls.append(f"step_end {event.step}")
        self.events.append(event)

    def on_epoch_end(self, trainer) -> None:  # noqa: ANN001
        self.calls.append(f"epoch_end {trainer.state.epoch}")

    def on_fit_end(self, trainer) -> None:  # noqa: ANN001
        self.calls.append("fit_end")

    def teardown(self, trainer) -> None:  # noqa: ANN001
        self.calls.append("teardown")


def test_hooks_come_in_order_with_the_step_events(tmp_path: Path) -> None:
    hooks = Hooks()
    pretrain(tiny_config(**{"train.log_every": 2}), tmp_path / "run", callbacks=[hooks])
    expected = ["fit_start"]
    for step in range(1, 7):
        expected += [f"batch_start {step - 1}", f"train_step {step}", f"step_end {step}"]
        if step % 3 == 0:
            expected.append(f"epoch_end {step // 3}")
    assert hooks.calls == [*expected, "fit_end", "teardown"]
    ev = hooks.events
    assert [e.log for e in ev] == [False, True, True, True, False, True]
    assert [e.final for e in ev] == [False] * 5 + [True]
    assert [e.end_of_epoch for e in ev] == [False, False, True] * 2
    assert [e.epoch_progress for e in ev] == pytest.approx([1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2])
    peak = 0.3 * 32 / 256  # lars, the linear rule; warm-up 0.5 epoch = 2 steps (rounded), then cosine
    assert [e.lr for e in ev] == pytest.approx([lr_at(s, peak, 2, 6) for s in range(6)])
    # the health signals (alignment, uniformity) are read with the loss, in the step's one device read
    assert set(ev[1].values) == {"loss", "pos_acc", "probe_loss", "probe_acc", "align", "uniform"}
    assert ev[0].values == {}
    assert [r["loss"] for r in records(tmp_path / "run")] == [e.values["loss"] for e in ev if e.log]


def test_resume_restores_the_online_probe(tmp_path: Path) -> None:
    pretrain(tiny_config(), tmp_path / "full")
    pretrain(tiny_config(**{"train.max_steps": 4}), tmp_path / "part")  # stops inside epoch 2
    saved = safe_load(tmp_path / "part" / "checkpoint.pt")["callbacks"]["online_probe"]
    assert saved["optimizer"]["state"]  # momentum buffers: the probe had trained
    pretrain(tiny_config(), tmp_path / "part", resume=True)
    full, part = (safe_load(tmp_path / r / "checkpoint.pt")["callbacks"]["online_probe"] for r in ("full", "part"))
    for k, v in full["probe"].items():
        torch.testing.assert_close(part["probe"][k], v, rtol=1e-4, atol=1e-5)
    a, b = records(tmp_path / "full"), records(tmp_path / "part")
    assert [r["step"] for r in b] == [r["step"] for r in a]
    assert b[-1]["probe_test_top1"] == pytest.approx(a[-1]["probe_test_top1"], abs=1e-9)
    for ra, rb in zip(a, b, strict=True):
        assert rb["probe_loss"] == pytest.approx(ra["probe_loss"], rel=1e-4)


def test_the_monitors_leave_the_run_unchanged(tmp_path: Path) -> None:
    pretrain(tiny_config(**{"monitor.online_probe": False}), tmp_path / "plain")
    pretrain(tiny_config(**{"monitor.online_probe": True, "monitor.knn_every": 1}), tmp_path / "monitored")
    assert losses(tmp_path / "plain") == losses(tmp_path / "monitored")  # bit for bit
    plain, monitored = (safe_load(tmp_path / r / "encoder.pt")["state_dict"] for r in ("plain", "monitored"))
    assert all(torch.equal(plain[k], monitored[k]) for k in plain)
    rows = records(tmp_path / "monitored")
    assert "probe_acc" in rows[0] and "probe_loss" not in records(tmp_path / "plain")[0]
    assert [r.get("knn_top1") is not None for r in rows] == [False, False, True] * 2


class Regression:
    """A method that is not SimCLR: least squares on (x, y) batches, through the same loop."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = nn.Linear(3, 1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> StepOutput:
        x, y = batch
        loss = (self.model(x).squeeze(1) - y).pow(2).mean()
        return StepOutput(loss, {"abs_err": (self.model(x).squeeze(1) - y).abs().mean().detach()})


class Batches:
    def __init__(self, x: torch.Tensor, y: torch.Tensor, size: int) -> None:
        self.x, self.y, self.size = x, y, size

    def __len__(self) -> int:
        return len(self.x) // self.size

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:  # noqa: ARG002
        for b in range(start, len(self)):
            yield self.x[b * self.size : (b + 1) * self.size], self.y[b * self.size : (b + 1) * self.size]


def test_the_loop_trains_any_method_as_a_plain_loop_would() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    method = Regression()
    reference = nn.Linear(3, 1)
    reference.load_state_dict(method.model.state_dict())
    opt = torch.optim.SGD(method.model.parameters(), lr=0.1)
    step = TrainStep(method, opt, lambda s: 0.1 * (1 - s / 20), torch.amp.GradScaler("cpu", enabled=False),
                     FiniteGuard(torch.device("cpu")))
    state = Trainer(step, Batches(x, y, 8), TrainState(), [], epochs=4, log_every=5).fit()
    assert (state.step, state.epoch) == (20, 4) and math.isfinite(state.last_loss)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    for s in range(20):
        b = s % 5
        for group in ref_opt.param_groups:
            group["lr"] = 0.1 * (1 - s / 20)
        ref_opt.zero_grad()
        (reference(x[b * 8 : (b + 1) * 8]).squeeze(1) - y[b * 8 : (b + 1) * 8]).pow(2).mean().backward()
        ref_opt.step()
    for a, b in zip(method.model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


class SignalAtStart(Callback):
    """Sends this process a SIGINT while the callbacks start (as a Ctrl-C during a slow start does)."""

    def on_fit_start(self, trainer) -> None:  # noqa: ANN001
        import os
        import signal

        os.kill(os.getpid(), signal.SIGINT)


def test_a_signal_while_the_run_starts_stops_it_saved(tmp_path: Path) -> None:
    try:
        state = pretrain(tiny_config(), tmp_path / "run", callbacks=[SignalAtStart()])
    except KeyboardInterrupt:
        pytest.fail("a SIGINT during on_fit_start escaped as KeyboardInterrupt: the stop signals were not caught yet")
    assert state.interrupted and state.step <= 1
    assert (tmp_path / "run" / "checkpoint.pt").exists() and not (tmp_path / "run" / "encoder.pt").exists()
