"""What the loop tells the rest of a run: the ``Callback`` hooks, and the callbacks every run has.

The loop (``simclr.train.loop.Trainer``) calls, in the order of its callback list:

- ``on_fit_start(trainer)``: before the first step (a resumed run: its state is loaded just after);
- ``on_batch_start(trainer, batch)``: before each step, with the batch on the device;
- ``on_train_step(trainer, batch, output)``: right after the optimiser step, before anything is read
  from the device: work that queues on the device (the online probe) and may add logged tensors;
- ``log_tensors(trainer, output)``: on log steps only, just before the step's one device read: scalars
  (0-d tensors, on the device) to read with it; they arrive in ``event.values``;
- ``on_step_end(trainer, event)``: with the ``StepEvent``; on log steps ``event.values`` holds what was
  read (the loss, the method's logs), and monitors may add to ``event.extras`` for the record;
- ``on_epoch_end(trainer)``: after the epoch's last step;
- ``on_fit_end(trainer)``: when the loop ends without an error (``trainer.state.interrupted`` after a
  signal); ``teardown(trainer)``: always, last (files closed).

A callback with a ``name`` and a ``state_dict`` has its state kept in the checkpoint and restored on
``--resume``. Here: ``MetricsCallback`` (metrics.jsonl, TensorBoard, the progress line, the health
signals) and ``EncoderSnapshots`` (``encoder.pt`` at the end, ``encoder-epochE.pt`` with
``--save-every-epoch``); the checkpoint policy is ``simclr.train.checkpoint.CheckpointCallback``, the
online monitors are in ``simclr.train.monitors``. The callbacks that write get the run's ``RunDir``
(``simclr.train.rundir``) and write through it: rank 0 only, whole files or none.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

import torch
from torch import nn

from simclr.methods.base import StepOutput
from simclr.models.weights import ENCODER, encoder_payload
from simclr.train.health import HealthReading
from simclr.train.loggers import make_loggers, start_all
from simclr.train.metrics import MetricsLog, Progress
from simclr.train.rundir import RunDir
from simclr.train.state import TrainState
from simclr.train.step import TrainStep


@dataclass
class StepEvent:
    """One finished step, as the callbacks see it."""

    step: int  # global steps done, this one included
    epoch: int  # epochs done before this step
    batch: int  # this batch's index in its epoch
    steps_per_epoch: int
    lr: float
    log: bool  # a log step: ``values`` were read from the device
    final: bool  # the run's last step (its step budget reached)
    stopping: bool  # a stop signal is agreed: the loop stops after this step
    data: Any  # the batch
    output: StepOutput
    time: float  # time.perf_counter() when the step was done (on log steps: after the device read)
    values: dict[str, float] = field(default_factory=dict)  # read on log steps: loss and the method's logs
    extras: dict[str, float] = field(default_factory=dict)  # monitors' additions to the log record

    @property
    def end_of_epoch(self) -> bool:
        return self.batch + 1 == self.steps_per_epoch

    @property
    def epoch_progress(self) -> float:
        """Epochs done after this step, fractional."""
        return self.epoch + (self.batch + 1) / self.steps_per_epoch


class LoopView(Protocol):
    """What a callback sees of the loop that calls it (``simclr.train.loop.Trainer`` is one): the
    callbacks depend on this, not on the loop, so the loop can import them without a cycle."""

    state: TrainState  # the counters: step, epoch, batch in epoch, last loss, interrupted
    callbacks: Sequence[Callback]
    step_fn: TrainStep
    stop_at: int  # the step the run ends at
    epochs: int  # the epochs the run ends within
    stopping: bool  # a stop signal is agreed
    stop_name: str  # which signal
    log: TextIO

    def check_finite(self) -> None: ...


class Callback:
    """Base class: every hook does nothing. ``name``: the key of its checkpointed state, if any."""

    name: str = ""

    def on_fit_start(self, trainer: LoopView) -> None: ...

    def on_batch_start(self, trainer: LoopView, batch: Any) -> None: ...

    def on_train_step(self, trainer: LoopView, batch: Any, output: StepOutput) -> None: ...

    def log_tensors(self, trainer: LoopView, output: StepOutput) -> dict[str, torch.Tensor]:
        return {}

    def on_step_end(self, trainer: LoopView, event: StepEvent) -> None: ...

    def on_epoch_end(self, trainer: LoopView) -> None: ...

    def on_fit_end(self, trainer: LoopView) -> None: ...

    def teardown(self, trainer: LoopView) -> None: ...

    def state_dict(self) -> dict[str, Any] | None:
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class MetricsCallback(Callback):
    """One record per log step to ``metrics.jsonl`` and TensorBoard (rank 0, when there is a run
    directory), and the progress line (a bar on a terminal, plain lines otherwise). A record: step,
    epoch, the values read (loss, pos_acc, ...), lr, images_per_s, time_s, the health signals of the
    batch (rank 0: align, uniform, rank_h), what the monitors added (kNN, probe), and ``constants`` (the
    precision the run computes in, which may differ from config.yaml's ``auto``)."""

    def __init__(self, run: RunDir | None, batch_size: int, log: TextIO, *,
                 constants: dict[str, Any] | None = None, logger: str = "auto",
                 config: dict[str, Any] | None = None) -> None:
        self.run, self.batch_size, self.stream = run, batch_size, log
        self.logger, self.config = logger, dict(config or {})
        self.last: dict[str, Any] = {}
        self.ended = False
        self.main = run is None or run.main  # rank 0 (or no run directory): reads the health signals
        self.constants = dict(constants or {})
        self.metrics: MetricsLog | None = None
        self.progress: Progress | None = None
        self.health = HealthReading()

    def on_fit_start(self, trainer: LoopView) -> None:
        step = trainer.state.step
        if self.run is not None and self.run.main:
            resume_step = step if self.run.resume else None
            loggers = start_all(make_loggers(self.logger), self.run.path, self.config, resume_step,
                                auto=self.logger.strip() == "auto")
            self.metrics = MetricsLog(self.run.path, resume_step=resume_step, loggers=loggers)
        self.progress = Progress(trainer.stop_at, step, self.stream)
        self.tick, self.tick_step = time.perf_counter(), step

    def log_tensors(self, trainer: LoopView, output: StepOutput) -> dict[str, torch.Tensor]:
        """The batch's health signals (rank 0), read with the step's loss: alignment, uniformity; the
        effective rank's Gram matrix travels to the host in the same read (``HealthReading``)."""
        if self.main and output.features is not None and output.projections is not None:
            return self.health.prepare(output.features, *output.projections)
        return {}

    def on_step_end(self, trainer: LoopView, event: StepEvent) -> None:
        record = None
        if event.log:
            # images/s of training since the last record: up to this step's read, leaving out the
            # monitors' evaluations of the last log step (they ran before this callback)
            seconds = max(event.time - self.tick, 1e-9)
            record = {"step": event.step, "epoch": event.epoch_progress, **event.values, "lr": event.lr,
                      "images_per_s": (event.step - self.tick_step) * self.batch_size / seconds,
                      "time_s": trainer.state.train_seconds()}
            record.update(self.health.finish())
            record.update(event.extras)
            record.update(self.constants)
            if self.metrics is not None:
                self.metrics.write(record)
            self.last = record
            self.tick, self.tick_step = time.perf_counter(), event.step
        assert self.progress is not None
        if self.progress.total != trainer.stop_at:
            self.progress.set_total(trainer.stop_at)
        self.progress.update(event.step, record)

    def on_fit_end(self, trainer: LoopView) -> None:
        """The run's summary begins with its last record and where it ended (the outputs add their scores)."""
        if self.run is not None and not trainer.state.interrupted:
            self.run.summary.update({k: v for k, v in self.last.items() if isinstance(v, (int, float))})
            self.run.summary.update(step=trainer.state.step, last_loss=trainer.state.last_loss)
            self.ended = True

    def teardown(self, trainer: LoopView) -> None:
        if self.progress is not None:
            self.progress.close()
        if self.metrics is not None:
            if self.ended and self.run is not None:
                self.metrics.summary(self.run.summary)
            self.metrics.close()


class EncoderSnapshots(Callback):
    """The encoder f on disk: ``encoder.pt`` when the run ends (not after a signal: it goes on with
    ``--resume``), and with ``every_epoch`` also ``encoder-epochE.pt`` at every epoch end (rank 0)."""

    def __init__(self, run: RunDir, encoder: nn.Module, image_size: int, *, every_epoch: bool = False) -> None:
        self.run, self.encoder, self.image_size = run, encoder, image_size
        self.every_epoch = every_epoch

    def on_epoch_end(self, trainer: LoopView) -> None:
        if self.every_epoch and self.run.main:
            name = f"encoder-epoch{trainer.state.epoch}.pt"
            self.run.save(encoder_payload(self.encoder, self.image_size), name)  # type: ignore[arg-type]

    def on_fit_end(self, trainer: LoopView) -> None:
        if not trainer.state.interrupted:
            trainer.check_finite()
            self.run.save(encoder_payload(self.encoder, self.image_size), ENCODER)  # type: ignore[arg-type]


__all__ = ["Callback", "EncoderSnapshots", "LoopView", "MetricsCallback", "StepEvent"]
