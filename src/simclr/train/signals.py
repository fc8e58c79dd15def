"""SIGINT / SIGTERM during training: checkpoint and stop after the current step.

A first Ctrl-C (or a SIGTERM, as schedulers send before preemption) asks the loop to stop; the loop
writes the checkpoint and the run exits with status 0, to continue with ``--resume``. A second Ctrl-C
stops at once.
"""

from __future__ import annotations

import signal
from typing import Any


class StopFlag:
    """While entered, SIGINT / SIGTERM set ``signal`` instead of stopping the process."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signal = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signal or signal.SIGTERM).name

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


__all__ = ["StopFlag"]
