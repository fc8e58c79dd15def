"""Distillation as a method (SimCLRv2): a student learns a frozen teacher's softened predictions.

Teacher and student see the same augmented view (crop + flip); the teacher runs in eval mode (BN
with its running statistics) without gradients; the loss is ``DistillLoss`` (soft cross-entropy at
temperature T, plus the labelled cross-entropy with weight alpha where the batch has labels).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from simclr.data.loaders import LabelledBatch
from simclr.losses.distill import DistillLoss
from simclr.methods.base import MethodBase, StepOutput, identity


class Distill(MethodBase):
    """``training_step(LabelledBatch) -> StepOutput``; logs ``agree``, the fraction of the batch where
    the student's top class is the teacher's.

    Args:
        model: the plain student ``Classifier`` (what is saved); ``net``: what its forward calls.
        teacher: the frozen teacher (eval mode, no gradients).
        loss: ``DistillLoss``.
    """

    def __init__(self, model: nn.Module, teacher: nn.Module, loss: DistillLoss, *, net: nn.Module | None = None,
                 prepare: Callable[[torch.Tensor], torch.Tensor] = identity,
                 autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> None:
        self.model, self.net = model, net if net is not None else model
        self.teacher, self.loss = teacher.eval().requires_grad_(False), loss
        self.prepare, self.autocast = prepare, autocast

    def training_step(self, batch: LabelledBatch) -> StepOutput:
        x = self.prepare(batch.images)
        with torch.no_grad(), self.autocast():
            teacher_logits = self.teacher(x)
        with self.autocast():
            logits = self.net(x)
        loss = self.loss(logits, teacher_logits, batch.labels)
        with torch.no_grad():
            agree = (logits.argmax(1) == teacher_logits.argmax(1)).float().mean()
        return StepOutput(loss, {"agree": agree})


__all__ = ["Distill"]
