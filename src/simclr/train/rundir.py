"""A run's directory, made once per command: ``RunDir``.

Every training command (pretrain, finetune, distill) makes one ``RunDir`` and hands it to everything
that reads or writes the run: ``read_checkpoint`` (``--resume``: rank 0 reads, every rank gets it),
``prepare`` (made, writable, no run overwritten, a crash's temporaries removed: rank 0, every rank
sees its refusal), ``write_config``, and the callbacks (metrics, the checkpoint, the encoder and
classifier files), which write through ``save`` / ``write_text`` on rank 0 only. The other ranks hold
the same object and write nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from simclr import distributed
from simclr.errors import SimCLRError
from simclr.io import atomic_save, atomic_write_text, safe_load
from simclr.models.weights import CHECKPOINT, CHECKPOINT_FORMAT

CONFIG = "config.yaml"
METRICS = "metrics.jsonl"


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


class RunDir:
    """The directory ``path`` of one run (``--out``), on every rank; ``main``: this rank writes it.

    ``resume``: the run continues the checkpoint there (``--resume``)."""

    def __init__(self, path: str | os.PathLike, *, resume: bool = False, main: bool | None = None) -> None:
        self.path = Path(path)
        self.resume = resume
        self.main = distributed.context().is_main if main is None else main
        self.summary: dict[str, Any] = {}  # what the run ended with, for the loggers (callbacks fill it)
        self._checkpoint: dict[str, Any] | None = None
        self._read = False

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r}, resume={self.resume})"

    def file(self, name: str) -> Path:
        """The path of the run's file ``name``."""
        return self.path / name

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT

    def read_checkpoint(self) -> dict[str, Any] | None:
        """The checkpoint to resume from (None unless resuming), read once by rank 0 and handed to every
        rank (their disks need not hold the run); refused on every rank alike unless a simclr checkpoint."""
        if self.resume and not self._read:
            self._checkpoint = distributed.main_first(lambda: read_checkpoint(self.checkpoint_path))
            self._read = True
        return self._checkpoint

    def prepare(self, then: Callable[[], None] | None = None) -> None:
        """Make the directory (``prepare_run_dir``) on rank 0, then ``then()`` there (a command's own first
        files, such as fine-tuning's subset); a refusal reaches every rank."""

        def make() -> None:
            prepare_run_dir(self.path, self.resume)
            if then is not None:
                then()

        distributed.main_first(make)

    def write_config(self, config: dict[str, Any]) -> None:
        """``config.yaml``: the run's whole configuration, resolved (rank 0)."""
        if self.main:
            self.file(CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))

    def save(self, obj: Any, name: str) -> None:
        """``torch.save`` into the run, whole or not at all (``simclr.io.atomic_save``; rank 0)."""
        if self.main:
            atomic_save(obj, self.file(name))

    def write_text(self, name: str, text: str) -> None:
        """A text file of the run, whole or not at all (rank 0)."""
        if self.main:
            atomic_write_text(self.file(name), text)


__all__ = ["CONFIG", "METRICS", "RunDir", "prepare_run_dir", "read_checkpoint"]
