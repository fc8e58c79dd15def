"""NT-Logistic, the normalised temperature-scaled logistic loss of the paper's Table 2.

For 2N views (view k and k+N are the two augmentations of image k), with s the cosine similarity, anchor
i's positive p(i) (its other view) and its negatives N(i) (the 2(N-1) views of the other images):

    l(i) = -log sigmoid(s(i, p(i)) / tau) - 1/|N(i)| * sum_{k in N(i)} log sigmoid(-s(i, k) / tau)
    L = 1/(2N) * sum_i l(i)

The negatives' term is their mean, so that the one positive and the 2(N-1) negatives weigh the same (a
sum lets the negatives swamp the positive as the batch grows). ``semi_hard``: only the negatives less
similar to the anchor than its positive count (the paper's "sh" rows of Table 4); an anchor with none has
the positive's term alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from simclr.losses.pairs import global_value, masked_mean, similarities


def nt_logistic(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5, semi_hard: bool = False, gather: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, positive-pair accuracy) of two views (N, d); under torch.distributed (``gather`` not False)
    against the global batch, as ``simclr.losses.ntxent.nt_xent``."""
    s = similarities(z1, z2, gather, "NT-Logistic")
    pos = s.positives()
    neg = s.negatives()
    if semi_hard:
        neg = neg & (s.sim.detach() < pos.unsqueeze(1).detach())
    per_anchor = -F.logsigmoid(pos / temperature) - masked_mean(F.logsigmoid(-s.sim / temperature), neg)
    return global_value(per_anchor.mean(), s.accuracy(), s.glob)


class NTLogisticLoss(nn.Module):
    """NT-Logistic as an ``nn.Module``: ``NTLogisticLoss(temperature=0.5)(z1, z2) -> L``.

    Args:
        temperature: tau.
        semi_hard: only the negatives less similar than the positive (semi-hard negative mining).
        gather: under torch.distributed, contrast with every rank's embeddings (default).
    """

    def __init__(self, temperature: float = 0.5, semi_hard: bool = False, gather: bool = True) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature, self.semi_hard, self.gather = float(temperature), semi_hard, gather
        self.last_accuracy: torch.Tensor | None = None

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        loss, self.last_accuracy = nt_logistic(z1, z2, self.temperature, self.semi_hard, gather=self.gather)
        return loss

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, semi_hard={self.semi_hard}, gather={self.gather}"


__all__ = ["NTLogisticLoss", "nt_logistic"]
