"""Where a run stands: the step counters, the training time, the random-number state.

``TrainState`` is what the loop advances and a checkpoint records beside the weights: a resumed run
starts from the step, epoch and batch it holds (the learning rate is a pure function of the step, and
the data order and augmentation of a pure function of (seed, epoch, batch), so nothing else is needed).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class TrainState:
    step: int = 0  # optimiser steps done
    epoch: int = 0  # epochs done
    batch_in_epoch: int = 0  # batches of the current epoch done
    last_loss: float = math.nan  # the last finite loss read from the device
    seconds_before: float = 0.0  # training seconds of earlier sessions (resumed runs)
    started: float = field(default_factory=time.perf_counter)
    interrupted: bool = False  # stopped by a signal (the run continues with --resume)

    def train_seconds(self) -> float:
        """Training seconds so far, across resumes."""
        return self.seconds_before + time.perf_counter() - self.started

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> TrainState:
        return cls(
            step=int(ckpt["step"]), epoch=int(ckpt["epoch"]), batch_in_epoch=int(ckpt["batch_in_epoch"]),
            last_loss=float(ckpt["last_loss"]), seconds_before=float(ckpt.get("train_seconds", 0.0)),
        )


def rng_state(device: torch.device) -> dict[str, Any]:
    """The CPU generator's state, and on CUDA the training device's own (not every visible GPU's: a
    run resumed where fewer GPUs are visible still finds it)."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def restore_rng(saved: dict[str, Any], device: torch.device) -> None:
    """Put back ``rng_state``'s generators; a CUDA state is restored on the training device. (Older
    checkpoints saved a list with one state per visible GPU: the training device's entry is used, when
    there is one.)"""
    torch.set_rng_state(saved["torch"])
    cuda = saved.get("cuda")
    if device.type != "cuda" or cuda is None:
        return
    if isinstance(cuda, (list, tuple)):
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= len(cuda):
            return
        cuda = cuda[index]
    torch.cuda.set_rng_state(cuda, device)


__all__ = ["TrainState", "restore_rng", "rng_state"]
