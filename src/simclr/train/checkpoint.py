"""The training checkpoint: what it holds, the run directory it lives in, and when it is written.

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
from pathlib import Path
from typing import Any, TextIO

from simclr.errors import SimCLRError
from simclr.io import atomic_save, safe_load
from simclr.models.weights import CHECKPOINT, CHECKPOINT_FORMAT
from simclr.train.callbacks import Callback, LoopView, StepEvent


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A run's checkpoint for ``--resume`` (refused unless it is a simclr checkpoint, loaded safely)."""
    if not path.exists():
        raise SimCLRError(f"--resume: {path} does not exist; start without --resume")
    state = safe_load(path)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise SimCLRError(f"--resume: {path} is not a simclr checkpoint")
    return state


def prepare_run_dir(out: Path, resume: bool) -> None:
    """Make ``out`` (writable), refuse to start over a run unless resuming, and remove the temporary
    files of writes a crash cut short."""
    if out.exists() and not out.is_dir():
        raise SimCLRError(f"--out {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise SimCLRError(f"--out {out} is not writable: {e.strerror}") from e
    if not resume and (out / CHECKPOINT).exists():
        raise SimCLRError(f"{out} already holds a run: pass --resume to continue it, or choose a new --out")
    for stale in out.glob(".*.pt.*.tmp"):  # a write cut short by a crash (atomic_save's temporary)
        stale.unlink(missing_ok=True)


class CheckpointCallback(Callback):
    """Writes ``path`` (rank 0) by the policy of the module docstring; ``payload(trainer)`` is the
    checkpoint's content at that moment. Every rank reads the guard, so all stop together."""

    def __init__(self, path: Path, payload: Callable[[LoopView], dict[str, Any]], log: TextIO, *,
                 every_steps: int | None = None, main: bool = True) -> None:
        self.path, self.payload, self.stream = path, payload, log
        self.every_steps, self.main = every_steps, main

    def save(self, trainer: LoopView) -> None:
        trainer.check_finite()
        if self.main:
            atomic_save(self.payload(trainer), self.path)

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


__all__ = ["CheckpointCallback", "prepare_run_dir", "read_checkpoint"]
