"""The training loop: any method, steps and epochs, with callbacks for everything around them.

``Trainer(step, loader, state, callbacks, ...).fit()`` runs ``step`` (a ``TrainStep``) over the
loader's batches epoch by epoch from where ``state`` stands, until the epochs or ``max_steps`` are done
or a signal stops it. It owns only what every run shares: the step counters, which steps are log
steps (every ``log_every``, epoch ends, the last), the one device read of a log step (the loss, the
method's logs and the finiteness guard together, ``read``), and the stop signal (agreed by every rank
on log steps). Metrics, checkpoints, encoder snapshots and monitors are callbacks
(``simclr.train.callbacks``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import torch

from simclr import distributed
from simclr.errors import SimCLRError
from simclr.methods.base import StepOutput
from simclr.optim import run_length
from simclr.train.callbacks import Callback, StepEvent
from simclr.train.signals import StopFlag
from simclr.train.state import TrainState
from simclr.train.step import TrainStep


class Trainer:
    """Runs a ``TrainStep`` over a loader with callbacks (module docstring).

    Args:
        step: one optimiser step, ``step(batch, global_step) -> StepOutput``.
        loader: ``loader.batches(epoch, start)`` yields an epoch's batches from batch ``start``;
            ``len(loader)`` is the number of batches (steps) per epoch.
        state: the counters to start from (a fresh ``TrainState``, or a checkpoint's).
        callbacks: called in this order at every hook.
        epochs: epochs of the run; ``max_steps``: stop earlier, after this many steps in all.
        log_every: steps between log steps (epoch ends and the last step are log steps too).
        callback_states: checkpointed callback states to restore (by callback ``name``).
    """

    def __init__(
        self,
        step: TrainStep,
        loader: Any,
        state: TrainState,
        callbacks: Sequence[Callback],
        *,
        epochs: int,
        max_steps: int | None = None,
        log_every: int = 10,
        device: torch.device | None = None,
        callback_states: dict[str, Any] | None = None,
        log: TextIO | None = None,
    ) -> None:
        self.step_fn, self.loader, self.state = step, loader, state
        self.callbacks = list(callbacks)
        self.epochs, self.log_every = epochs, log_every
        self.steps_per_epoch = len(loader)
        self.stop_at = run_length(self.steps_per_epoch, epochs, max_steps)
        self.device = device or torch.device("cpu")
        self.callback_states = callback_states or {}
        self.log = log or sys.stderr
        self.world = distributed.context()
        self.stopping = False
        self.stop_name = "SIGTERM"
        self._flag: StopFlag | None = None

    def fit(self) -> TrainState:
        """Train until the run's end or a stop; returns the state reached."""
        try:
            # the stop signals are caught from the start: a SIGINT / SIGTERM while the callbacks start (the
            # run directory already exists, TensorBoard is still importing) stops at the first step, saved
            with StopFlag() as flag:
                self._flag = flag
                for cb in self.callbacks:
                    cb.on_fit_start(self)
                for cb in self.callbacks:
                    if cb.name and cb.name in self.callback_states:
                        cb.load_state_dict(self.callback_states[cb.name])
                while self.state.epoch < self.epochs and self.state.step < self.stop_at and not self.state.interrupted:
                    if not self._epoch():
                        break
            for cb in self.callbacks:
                cb.on_fit_end(self)
        finally:
            for cb in self.callbacks:
                cb.teardown(self)
        return self.state

    def _epoch(self) -> bool:
        """The rest of the current epoch; False when the run stopped inside it."""
        state = self.state
        for b, batch in enumerate(self.loader.batches(state.epoch, state.batch_in_epoch), start=state.batch_in_epoch):
            event = self._step(batch, b)
            if event.stopping:
                state.interrupted = True
            if (event.stopping or event.final) and not event.end_of_epoch:
                return False
        state.epoch += 1
        state.batch_in_epoch = 0
        for cb in self.callbacks:
            cb.on_epoch_end(self)
        return True

    def _step(self, batch: Any, b: int) -> StepEvent:
        state = self.state
        for cb in self.callbacks:
            cb.on_batch_start(self, batch)
        lr = self.step_fn.lr_at(state.step)
        out = self.step_fn(batch, state.step)
        state.step += 1
        state.batch_in_epoch = b + 1
        for cb in self.callbacks:
            cb.on_train_step(self, batch, out)
        final = state.step >= self.stop_at
        log = state.step % self.log_every == 0 or b + 1 == self.steps_per_epoch or final
        values: dict[str, float] = {}
        if log:
            extra: dict[str, torch.Tensor] = {}
            for cb in self.callbacks:
                extra.update(cb.log_tensors(self, out))
            values = self.read(out, extra)
        self.stopping = self._agree_on_stop(log)
        event = StepEvent(state.step, state.epoch, b, self.steps_per_epoch, lr, log, final, self.stopping,
                          batch, out, time.perf_counter(), values)
        for cb in self.callbacks:
            cb.on_step_end(self, event)
        return event

    def read(self, out: StepOutput, extra: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
        """The step's loss and logs (and the callbacks' ``extra`` scalars) as Python floats, with the
        finiteness guard: one device read. Raises the guard's message when a step since the last read was
        not finite."""
        guard = self.step_fn.guard
        extra = extra or {}
        names = ["loss", *out.logs, *extra]
        tensors = [out.loss, *out.logs.values(), *extra.values()]
        flat = torch.cat([guard.state, *(t.detach().to(guard.state).reshape(1) for t in tensors)]).tolist()
        n = guard.state.numel()
        self._raise_if_bad(flat[:n])
        return dict(zip(names, flat[n:], strict=True))

    def _raise_if_bad(self, guard_values: list[float]) -> None:
        guard = self.step_fn.guard
        message = guard.message(guard_values, guard.where)
        if message is not None:
            raise SimCLRError(message)
        self.state.last_loss = guard_values[-1]
        self.step_fn.report_overflows(guard_values)

    def check_finite(self) -> None:
        """Read the guard now (before a checkpoint is written); raise its message if a step was not finite."""
        self.state.last_loss = self.step_fn.guard.check()

    def _agree_on_stop(self, log: bool) -> bool:
        """Whether a stop signal arrived: in one process at every step; with several ranks every rank
        agrees on log steps (one all-reduce there, none on other steps), so all stop at the same step."""
        assert self._flag is not None
        requested = self._flag.signal is not None
        if requested:
            self.stop_name = self._flag.name
        if not self.world.enabled:
            return requested
        return distributed.any_rank(requested, self.device) if log else False


__all__ = ["Trainer"]
