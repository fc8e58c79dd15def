"""The margin triplet loss of the paper's Table 2, with every negative of the batch.

For 2N views (view k and k+N are the two augmentations of image k), with s the cosine similarity, anchor
i's positive p(i) (its other view) and its negatives N(i) (the 2(N-1) views of the other images):

    l(i) = 1/|N(i)| * sum_{k in N(i)} max(s(i, k) - s(i, p(i)) + m, 0)
    L = 1/(2N) * sum_i l(i)

``semi_hard``: only the semi-hard negatives count, those less similar to the anchor than its positive but
within the margin of it, s(i, p(i)) - m < s(i, k) < s(i, p(i)) (FaceNet's mining; the paper's "sh" rows of
Table 4); an anchor with none adds 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from simclr.losses.pairs import global_value, masked_mean, similarities


def margin_triplet(
    z1: torch.Tensor, z2: torch.Tensor, margin: float = 0.5, semi_hard: bool = False, gather: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, positive-pair accuracy) of two views (N, d); under torch.distributed (``gather`` not False)
    against the global batch, as ``simclr.losses.ntxent.nt_xent``."""
    s = similarities(z1, z2, gather, "the margin triplet loss")
    pos = s.positives()
    neg = s.negatives()
    if semi_hard:
        p = pos.unsqueeze(1).detach()
        neg = neg & (s.sim.detach() < p) & (s.sim.detach() > p - margin)
    per_anchor = masked_mean(F.relu(s.sim - pos.unsqueeze(1) + margin), neg)
    return global_value(per_anchor.mean(), s.accuracy(), s.glob)


class MarginTripletLoss(nn.Module):
    """The margin triplet loss as an ``nn.Module``: ``MarginTripletLoss(margin=0.5)(z1, z2) -> L``.

    Args:
        margin: m, in cosine similarity (between 0 and 2).
        semi_hard: only the negatives less similar than the positive by less than the margin.
        gather: under torch.distributed, contrast with every rank's embeddings (default).
    """

    def __init__(self, margin: float = 0.5, semi_hard: bool = False, gather: bool = True) -> None:
        super().__init__()
        if not margin > 0:
            raise ValueError(f"margin must be > 0, got {margin}")
        self.margin, self.semi_hard, self.gather = float(margin), semi_hard, gather
        self.last_accuracy: torch.Tensor | None = None

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        loss, self.last_accuracy = margin_triplet(z1, z2, self.margin, self.semi_hard, gather=self.gather)
        return loss

    def extra_repr(self) -> str:
        return f"margin={self.margin}, semi_hard={self.semi_hard}, gather={self.gather}"


__all__ = ["MarginTripletLoss", "margin_triplet"]
