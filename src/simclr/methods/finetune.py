"""Fine-tuning as a method: the whole classifier (encoder, kept head layers, linear layer) trained with
the cross-entropy of labelled single-view batches (crop + flip), as SimCLR's semi-supervised protocol
and the supervised baseline from scratch do."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from simclr.data.loaders import LabelledBatch
from simclr.methods.base import MethodBase, StepOutput, identity


class FineTune(MethodBase):
    """``training_step(LabelledBatch) -> StepOutput``: cross-entropy of ``model``'s logits; logs the
    batch's accuracy as ``train_acc``.

    Args:
        model: the plain ``Classifier`` (what is saved); ``net``: what the forward calls (DDP, compile).
        prepare: applied to every input batch (channels_last); ``autocast``: a fresh context per forward.
    """

    def __init__(self, model: nn.Module, *, net: nn.Module | None = None,
                 prepare: Callable[[torch.Tensor], torch.Tensor] = identity,
                 autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> None:
        self.model, self.net = model, net if net is not None else model
        self.prepare, self.autocast = prepare, autocast

    def training_step(self, batch: LabelledBatch) -> StepOutput:
        with self.autocast():
            logits = self.net(self.prepare(batch.images))
        loss = F.cross_entropy(logits.float(), batch.labels)
        with torch.no_grad():
            acc = (logits.argmax(1) == batch.labels).float().mean()
        return StepOutput(loss, {"train_acc": acc})


__all__ = ["FineTune"]
