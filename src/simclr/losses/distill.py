"""The distillation loss of SimCLRv2: the student learns the teacher's softened class distribution.

    L_distill = -1/B * sum_x sum_y P_T(y | x; T) log P_S(y | x; T),   P(y | x; T) = softmax(logits / T)

with the teacher's logits held constant. v2's weighted form adds the labelled images' cross-entropy:
L = (1 - alpha) L_distill + alpha L_labels, ``alpha`` the label weight (0: labels unused).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def soft_cross_entropy(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """-mean_x sum_y softmax(teacher / T) log softmax(student / T); no gradient reaches the teacher."""
    target = F.softmax(teacher_logits.detach().float() / temperature, dim=1)
    return -(target * F.log_softmax(student_logits.float() / temperature, dim=1)).sum(1).mean()


class DistillLoss(nn.Module):
    """``DistillLoss(temperature, label_weight)(student_logits, teacher_logits, labels) -> L``.

    ``labels`` (B,): the true label of the batch's images in the labelled subset, -1 for the others;
    the labelled term is the mean cross-entropy over the images with a label (0 when the batch has
    none), weighted by ``label_weight``."""

    def __init__(self, temperature: float = 1.0, label_weight: float = 0.0) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0 <= label_weight <= 1:
            raise ValueError(f"label_weight must be in [0, 1], got {label_weight}")
        self.temperature, self.label_weight = float(temperature), float(label_weight)

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        loss = soft_cross_entropy(student_logits, teacher_logits, self.temperature)
        if self.label_weight == 0 or labels is None:
            return loss
        known = labels >= 0
        ce = F.cross_entropy(student_logits.float(), labels.clamp(min=0), reduction="none")
        labelled = (ce * known).sum() / known.sum().clamp(min=1)  # no host read: 0 when none is labelled
        return (1 - self.label_weight) * loss + self.label_weight * labelled

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, label_weight={self.label_weight}"


__all__ = ["DistillLoss", "soft_cross_entropy"]
