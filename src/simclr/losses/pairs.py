"""What the pairwise contrastive losses share: the cosine similarities of every anchor with every view of
the batch (the global batch under torch.distributed), where each anchor's positive and itself are, and
the global value of a loss whose gradient is its rank's share.

For 2N views z_1..z_2N (view k and k+N are the two augmentations of image k), anchor i's positive is its
other view and its negatives are the 2(N-1) views of the other images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from simclr import distributed
from simclr.losses.ntxent import at_least_fp32


@dataclass
class Similarities:
    """``sim`` (2n, 2N): this rank's 2n anchors (z1 then z2) against every view of the global batch;
    ``positive`` / ``own`` (2n,): the column of each anchor's positive and of itself; ``glob``: gathered
    over ranks."""

    sim: torch.Tensor
    positive: torch.Tensor
    own: torch.Tensor
    glob: bool

    def positives(self) -> torch.Tensor:
        """Each anchor's similarity with its positive (2n,)."""
        return self.sim.gather(1, self.positive.unsqueeze(1)).squeeze(1)

    def negatives(self) -> torch.Tensor:
        """(2n, 2N) bool: the columns that are negatives of each anchor (neither itself nor its positive)."""
        rows = torch.arange(self.sim.shape[0], device=self.sim.device)
        mask = torch.ones_like(self.sim, dtype=torch.bool)
        mask[rows, self.own] = False
        mask[rows, self.positive] = False
        return mask

    def accuracy(self) -> torch.Tensor:
        """The fraction of anchors whose most similar other view is their positive."""
        rows = torch.arange(self.sim.shape[0], device=self.sim.device)
        with torch.no_grad():
            others = self.sim.index_put((rows, self.own), self.sim.new_full((), float("-inf")))
            return (others.argmax(dim=1) == self.positive).float().mean()


def similarities(z1: torch.Tensor, z2: torch.Tensor, gather: bool | None, what: str) -> Similarities:
    """The cosine similarities of two views (N, d), in at least fp32; under torch.distributed (``gather``
    not False) against every rank's views, gathered with their gradients. ``what`` names the loss in errors."""
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z1 and z2 must both be (N, d); got {tuple(z1.shape)} and {tuple(z2.shape)}")
    ctx = distributed.context()
    glob = (ctx.enabled if gather is None else gather) and ctx.enabled
    n = z1.shape[0]
    a1, a2 = F.normalize(at_least_fp32(z1), dim=1), F.normalize(at_least_fp32(z2), dim=1)
    if glob:
        big_n = n * ctx.world_size
        keys = torch.cat([distributed.gather_with_grad(a1), distributed.gather_with_grad(a2)])
        local = torch.arange(n, device=z1.device) + ctx.rank * n
    else:
        big_n = n
        keys = torch.cat([a1, a2])
        local = torch.arange(n, device=z1.device)
    if big_n < 2:
        raise ValueError(f"{what} needs at least 2 images per batch (one positive, >= 1 negative)")
    return Similarities(torch.cat([a1, a2]) @ keys.t(), torch.cat([local + big_n, local]),
                        torch.cat([local, local + big_n]), glob)


def global_value(local_loss: torch.Tensor, acc: torch.Tensor, glob: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, accuracy) of the whole batch. ``local_loss`` is the mean over this rank's anchors; gathered
    (``glob``), the value returned is the global mean on every rank and its gradient the local one's, so
    that DistributedDataParallel's average over ranks is the gradient of the global loss."""
    if not glob:
        return local_loss, acc
    with torch.no_grad():
        both = distributed.all_reduce_mean(torch.stack([local_loss.detach(), acc]))
    return local_loss + (both[0] - local_loss.detach()), both[1]


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` over ``mask`` along each row (0 for a row with nothing masked in)."""
    return (values * mask).sum(1) / mask.sum(1).clamp(min=1)


__all__ = ["Similarities", "global_value", "masked_mean", "similarities"]
