"""A training run around any method: the callbacks every run has, the checkpoint's content, the loop.

Every command (pretrain, finetune, distill) resolves its config, makes its ``RunDir`` (the run
directory, once: its checkpoint read when resuming, then prepared), builds its parts with the one run
builder (``simclr.train.engine.Training``) and calls ``fit_run``, which writes ``config.yaml``, restores
the counters from the checkpoint when resuming, and runs the ``Trainer`` with, in order: the
command's monitors (they add to the log record), metrics and progress, the checkpoint policy, then
the command's output files and the caller's callbacks. Every callback that writes gets the ``RunDir``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TextIO

from simclr import distributed
from simclr.models.weights import CHECKPOINT_FORMAT
from simclr.runtime import machine_key
from simclr.train.callbacks import Callback, LoopView, MetricsCallback
from simclr.train.checkpoint import CheckpointCallback
from simclr.train.engine import Training
from simclr.train.loop import Trainer
from simclr.train.rundir import RunDir
from simclr.train.state import TrainState, rng_state


def checkpoint_payload(parts: Training) -> Callable[[LoopView], dict[str, Any]]:
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
            "precision": {"ran": parts.precision, "machine": machine_key(parts.device)},  # kept by a resume
            "callbacks": {cb.name: cb.state_dict() for cb in trainer.callbacks if cb.name and cb.state_dict()},
        }

    return payload


def fit_run(
    parts: Training,
    run: RunDir,
    log: TextIO,
    *,
    monitors: Sequence[Callback] = (),
    outputs: Sequence[Callback] = (),
) -> TrainState:
    """Train ``parts`` into ``run`` (prepared already; resumed from its checkpoint when ``run.resume``)
    until the run's end or a stop. ``monitors`` run first at every hook, ``outputs`` (the command's
    result files, then the caller's callbacks) last."""
    t = parts.cfg.train
    ckpt = run.read_checkpoint()
    run.write_config(parts.cfg.to_dict())
    state = TrainState.from_checkpoint(ckpt) if ckpt is not None else TrainState()
    if ckpt is not None:
        print(f"resuming from step {state.step} (epoch {state.epoch}, batch {state.batch_in_epoch})", file=log)
    callbacks = [
        *monitors,
        MetricsCallback(run, t.batch_size, log, constants={"precision": parts.precision}, logger=t.logger,
                        config=parts.cfg.to_dict()),
        CheckpointCallback(run, checkpoint_payload(parts), log, every_steps=t.checkpoint_every_steps),
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


__all__ = ["checkpoint_payload", "fit_run"]
