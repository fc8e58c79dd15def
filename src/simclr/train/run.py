"""A training run around any method: its checkpoint for ``--resume``, the callbacks every run has, the loop.

A method's run (``simclr.train.pretrain`` for SimCLR) resolves its config, builds its parts (a
``Training``: config, model, optimiser, scaler, loader, step) and calls ``fit_run``, which writes
``config.yaml``, restores the counters from the checkpoint when resuming, and runs the ``Trainer``
with, in order: the method's monitors (they add to the log record), metrics and progress, the
checkpoint policy, then the method's output files and the caller's callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO

import torch
import yaml
from torch import nn

from simclr import distributed
from simclr.models.weights import CHECKPOINT, CHECKPOINT_FORMAT
from simclr.train.callbacks import Callback, LoopView, MetricsCallback
from simclr.train.checkpoint import CheckpointCallback, read_checkpoint
from simclr.train.loop import Trainer
from simclr.train.state import TrainState, rng_state
from simclr.train.step import TrainStep


class RunParts(Protocol):
    """What ``fit_run`` needs of a built run (``simclr.train.setup.Training`` is one)."""

    cfg: Any  # a config with to_dict() and a ``train`` section (batch_size, epochs, max_steps, log_every, ...)
    device: torch.device
    world: distributed.DistContext
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    loader: Any
    step: TrainStep
    precision: str  # what the run computes in (``auto`` resolved); config.yaml keeps what was asked


def resume_checkpoint(out: Path, resume: bool) -> dict[str, Any] | None:
    """The run's checkpoint when resuming: rank 0 reads it and hands it to the others (their disks need
    not hold the run); refused (on every rank alike) unless it is a simclr checkpoint."""
    if not resume:
        return None
    return distributed.main_first(lambda: read_checkpoint(out / CHECKPOINT))


def checkpoint_payload(parts: RunParts) -> Callable[[LoopView], dict[str, Any]]:
    """The checkpoint's content at the moment it is written (``simclr.train.checkpoint``)."""

    def payload(trainer: LoopView) -> dict[str, Any]:
        state = trainer.state
        return {
            "format": CHECKPOINT_FORMAT,
            "version": 1,
            "config": parts.cfg.to_dict(),
            "model": parts.model.state_dict(),
            "optimizer": parts.optimizer.state_dict(),
            "scaler": parts.scaler.state_dict() if parts.scaler.is_enabled() else {},
            "step": state.step,
            "epoch": state.epoch,
            "batch_in_epoch": state.batch_in_epoch,
            "last_loss": state.last_loss,
            "train_seconds": state.train_seconds(),
            "rng": rng_state(parts.device),
            "callbacks": {cb.name: cb.state_dict() for cb in trainer.callbacks if cb.name and cb.state_dict()},
        }

    return payload


def fit_run(
    parts: RunParts,
    out: Path,
    log: TextIO,
    *,
    ckpt: dict[str, Any] | None = None,
    monitors: Sequence[Callback] = (),
    outputs: Sequence[Callback] = (),
) -> TrainState:
    """Train ``parts`` into the run directory ``out`` (prepared already) until the run's end or a stop.

    ``ckpt``: the checkpoint resumed from. ``monitors`` run first at every hook, ``outputs`` (the
    method's result files, then the caller's callbacks) last."""
    t, main = parts.cfg.train, parts.world.is_main
    if main:
        (out / "config.yaml").write_text(yaml.safe_dump(parts.cfg.to_dict(), sort_keys=False))
    state = TrainState.from_checkpoint(ckpt) if ckpt is not None else TrainState()
    if ckpt is not None:
        print(f"resuming from step {state.step} (epoch {state.epoch}, batch {state.batch_in_epoch})", file=log)
    callbacks = [
        *monitors,
        MetricsCallback(out, t.batch_size, log, resume=ckpt is not None, main=main,
                        constants={"precision": parts.precision}),
        CheckpointCallback(out / CHECKPOINT, checkpoint_payload(parts), log, every_steps=t.checkpoint_every_steps,
                           main=main),
        *outputs,
    ]
    trainer = Trainer(
        parts.step, parts.loader, state, callbacks, epochs=t.epochs, max_steps=t.max_steps, log_every=t.log_every,
        device=parts.device, callback_states=ckpt.get("callbacks", {}) if ckpt else {}, log=log,
    )
    parts.model.train()
    state = trainer.fit()
    distributed.barrier()  # no rank leaves before rank 0 has written the run
    return state


__all__ = ["RunParts", "checkpoint_payload", "fit_run", "resume_checkpoint"]
