"""What a training method is to the loop: an object with ``training_step(batch) -> StepOutput``.

A method owns its objective: how a batch becomes a loss (and, for methods that run their own
backward, its gradients). The loop (``simclr.train.loop``) owns everything else: the learning rate of
the step, zeroing and applying gradients, the loss scaler, finiteness checks, logging, checkpoints,
signals. A new method is one module here plus one command in ``simclr.cli``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn


def identity(x: torch.Tensor) -> torch.Tensor:
    """The default ``prepare`` of a method: the batch as it is."""
    return x


@dataclass
class StepOutput:
    """What one training step produced, all on the training device; nothing here has been read back.

    ``loss``: the scalar the optimiser minimises (with its graph, unless ``backward_done``: a method that
    ran its own backward, as the chunked step does). ``logs``: scalars for the metrics, read on log steps
    only (e.g. ``pos_acc``). ``features``: h of the batch's views (2N, D), detached, rows in the order
    [view 1 of every image; view 2 of every image]; ``projections``: z of the two views (N, d) each,
    detached. Monitors and health signals read them; methods without them leave them None.
    """

    loss: torch.Tensor
    logs: dict[str, torch.Tensor] = field(default_factory=dict)
    features: torch.Tensor | None = None
    projections: tuple[torch.Tensor, torch.Tensor] | None = None
    backward_done: bool = False


class Method(Protocol):
    """An objective the loop can train. ``model`` is the plain module the optimiser updates and the
    checkpoint saves (never a DistributedDataParallel or compiled wrapper)."""

    model: nn.Module

    def training_step(self, batch: Any) -> StepOutput: ...


__all__ = ["Method", "StepOutput", "identity"]
