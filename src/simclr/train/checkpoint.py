"""The training checkpoint: what it holds and when it is written (the run directory: ``simclr.train.rundir``).

``checkpoint.pt`` holds the config, the model, the optimiser, the grad scaler, the step counters, the
training time, the random-number state and the checkpointed callbacks' states (the online probe):
tensors and plain containers only, so it loads with ``weights_only=True``. It is replaced only by a
complete new one (``simclr.io.atomic_save``).

``CheckpointCallback`` is the one place that decides when: at every epoch end; mid-epoch every
``every_steps`` steps, when a stop signal is agreed, and when the step budget (``--max-steps``) ends
the run. Before each write it reads the finiteness guard, so a checkpoint never holds weights that a
non-finite step touched: the run stops with its message and the previous checkpoint stays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from simclr.train.callbacks import Callback, LoopView, StepEvent
from simclr.train.rundir import RunDir


class CheckpointCallback(Callback):
    """Writes the run's ``checkpoint.pt`` (rank 0) by the policy of the module docstring;
    ``payload(trainer)`` is the checkpoint's content at that moment. Every rank reads the guard, so all
    stop together."""

    def __init__(self, run: RunDir, payload: Callable[[LoopView], dict[str, Any]], log: TextIO, *,
                 every_steps: int | None = None) -> None:
        self.run, self.payload, self.stream = run, payload, log
        self.every_steps = every_steps

    def save(self, trainer: LoopView) -> None:
        trainer.check_finite()
        if self.run.main:
            self.run.save(self.payload(trainer), self.run.checkpoint_path.name)

    def _report_stop(self, trainer: LoopView) -> None:
        print(f"\n{trainer.stop_name}: checkpoint saved at step {trainer.state.step}; continue with --resume",
              file=self.stream)

    def on_step_end(self, trainer: LoopView, event: StepEvent) -> None:
        if event.end_of_epoch:
            return  # the epoch end writes it
        every = self.every_steps is not None and event.step % self.every_steps == 0
        if event.stopping or event.final or every:
            self.save(trainer)
            if event.stopping:
                self._report_stop(trainer)

    def on_epoch_end(self, trainer: LoopView) -> None:
        self.save(trainer)
        if trainer.stopping:
            self._report_stop(trainer)


__all__ = ["CheckpointCallback"]
