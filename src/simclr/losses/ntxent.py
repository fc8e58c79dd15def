"""NT-Xent, the normalised temperature-scaled cross-entropy loss of SimCLR.

For 2N views z_1..z_2N (view k and k+N are the two augmentations of image k):

    l(i, j) = -log( exp(sim(z_i, z_j)/tau) / sum_{k != i} exp(sim(z_i, z_k)/tau) )
    L = 1/(2N) * sum over the 2N anchors i of l(i, positive(i))

with sim the cosine similarity. Each anchor has one positive and 2(N-1) negatives.
The official TensorFlow code returns CE_a + CE_b, which is 2L; ``reduction="sum_of_means"``
gives that value.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from simclr import distributed


def at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32, or as it is when it is already float64: the similarities need at least fp32
    (logits / tau overflow fp16), and float64 runs (the exactness tests) keep their precision."""
    return t if t.dtype == torch.float64 else t.float()


def nt_xent(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5, gather: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (L, positive-pair accuracy) for two views ``z1``, ``z2`` of shape (N, d).

    The accuracy is the fraction of the 2N anchors whose most similar other view is their
    positive: a cheap "is it learning" signal (chance is 1/(2N-1)).

    Under ``torch.distributed`` with more than one rank (and ``gather`` not False), ``z1`` and
    ``z2`` are this rank's share of the global batch: the embeddings of every rank are gathered
    (gradients flow back to their rank), so each anchor is contrasted with all 2N views of the
    global batch. Each rank computes the loss of its own anchors; the value returned is the
    global L (the same on every rank), and its gradient is scaled so that
    DistributedDataParallel's average over ranks is exactly the gradient of the global L.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z1 and z2 must both be (N, d); got {tuple(z1.shape)} and {tuple(z2.shape)}")
    ctx = distributed.context()
    if gather is None:
        gather = ctx.enabled
    if gather and ctx.enabled:
        return _nt_xent_global(z1, z2, temperature, ctx.rank, ctx.world_size)
    n = z1.shape[0]
    if n < 2:
        raise ValueError("NT-Xent needs at least 2 images per batch (one positive, >= 1 negative)")
    # The similarity matrix is computed in fp32 even under autocast: logits / tau overflow fp16.
    z = F.normalize(at_least_fp32(torch.cat([z1, z2], dim=0)), dim=1)  # (2N, d)
    logits = z @ z.t() / temperature  # (2N, 2N)
    eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, float("-inf"))  # k != i
    idx = torch.arange(2 * n, device=z.device)
    targets = (idx + n) % (2 * n)  # the positive of anchor i is its other view
    loss = F.cross_entropy(logits, targets)  # mean over the 2N anchors
    with torch.no_grad():
        acc = (logits.argmax(dim=1) == targets).float().mean()
    return loss, acc


def _nt_xent_global(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float, rank: int, world: int
) -> tuple[torch.Tensor, torch.Tensor]:
    n = z1.shape[0]
    big_n = n * world
    if big_n < 2:
        raise ValueError("NT-Xent needs at least 2 images per global batch")
    a1, a2 = F.normalize(at_least_fp32(z1), dim=1), F.normalize(at_least_fp32(z2), dim=1)
    keys = torch.cat([distributed.gather_with_grad(a1), distributed.gather_with_grad(a2)])  # (2N, d)
    anchors = torch.cat([a1, a2])  # this rank's 2n anchors
    logits = anchors @ keys.t() / temperature  # (2n, 2N)
    local = torch.arange(n, device=z1.device) + rank * n  # global image index of local rows
    self_idx = torch.cat([local, local + big_n])  # each anchor's own column
    targets = torch.cat([local + big_n, local])  # its other view
    rows = torch.arange(2 * n, device=z1.device)
    # the fill in the logits' own dtype: float64 logits (the exactness tests) stay float64
    logits = logits.index_put((rows, self_idx), logits.new_full((), float("-inf")))
    local_loss = F.cross_entropy(logits, targets)  # mean over this rank's anchors = W x its share of L
    with torch.no_grad():
        acc = (logits.argmax(dim=1) == targets).float().mean()
        both = distributed.all_reduce_mean(torch.stack([local_loss.detach(), acc]))
    # value: the global L on every rank; gradient: that of the local mean (see docstring)
    return local_loss + (both[0] - local_loss.detach()), both[1]


class NTXentLoss(nn.Module):
    """NT-Xent as an ``nn.Module``: ``NTXentLoss(temperature=0.5)(z1, z2) -> L``.

    Args:
        temperature: tau. The paper uses 0.1 on ImageNet and 0.5 on CIFAR-10 (Table 5:
            tau too high or too low costs several points).
        reduction: ``"mean"`` (the paper's L, the default) or ``"sum_of_means"`` (the
            official code's CE_a + CE_b = 2L).
        gather: under torch.distributed with several ranks, contrast with the embeddings of
            every rank (the global batch's negatives; default). ``False`` keeps each rank's
            loss to its own batch. Ignored in a single process.
    """

    def __init__(self, temperature: float = 0.5, reduction: str = "mean", gather: bool = True) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if reduction not in ("mean", "sum_of_means"):
            raise ValueError(f"reduction must be 'mean' or 'sum_of_means', got {reduction!r}")
        self.temperature = float(temperature)
        self.reduction = reduction
        self.gather = gather
        self.last_accuracy: torch.Tensor | None = None

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        loss, acc = nt_xent(z1, z2, self.temperature, gather=self.gather)
        self.last_accuracy = acc
        return loss * 2 if self.reduction == "sum_of_means" else loss

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, reduction={self.reduction!r}, gather={self.gather}"
