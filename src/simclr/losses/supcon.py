"""SupCon, the supervised contrastive loss of Khosla et al. 2020 (their L_out).

For 2N views z_1..z_2N (normalised; view k and k+N are the two augmentations of image k) with labels
y (the image's label for both of its views), anchor i has the positives P(i) = {p != i : y_p = y_i}
and the contrast set A(i) = {a != i}:

    L = 1/(2N) * sum_i  -1/|P(i)| * sum_{p in P(i)} log( exp(z_i.z_p/tau) / sum_{a in A(i)} exp(z_i.z_a/tau) )

An unknown label (-1) is distinct from every other, so such an image's only positive is its other
view; with every label distinct, L is NT-Xent's. Under torch.distributed the embeddings are gathered
with their gradients and the labels with them, as ``simclr.losses.ntxent`` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from simclr import distributed
from simclr.losses.ntxent import at_least_fp32


def _distinct_unknown(labels: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """Labels with every -1 replaced by an id of its own (negative: never a real label's)."""
    ids = -(torch.arange(labels.numel(), device=labels.device) + offset + 1)
    return torch.where(labels < 0, ids, labels)


def _gather_labels(labels: torch.Tensor) -> torch.Tensor:
    world = torch.distributed.get_world_size()
    comm = labels if distributed.backend() == "nccl" else labels.cpu()
    parts = [torch.empty_like(comm) for _ in range(world)]
    torch.distributed.all_gather(parts, comm.contiguous())
    return torch.cat(parts).to(labels.device)


def supcon(
    z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1, gather: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_out, accuracy) of two views (N, d) of N images with ``labels`` (N,). The accuracy is the
    fraction of the anchors whose most similar other view is a positive. Under torch.distributed
    (``gather`` not False) the value is the global L on every rank, its gradient scaled so that
    DistributedDataParallel's average over ranks is the gradient of the global L."""
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z1 and z2 must both be (N, d); got {tuple(z1.shape)} and {tuple(z2.shape)}")
    labels = torch.as_tensor(labels, device=z1.device).long().flatten()
    if labels.numel() != z1.shape[0]:
        raise ValueError(f"{labels.numel()} labels for {z1.shape[0]} images")
    ctx = distributed.context()
    glob = (ctx.enabled if gather is None else gather) and ctx.enabled
    n = z1.shape[0]
    a1, a2 = F.normalize(at_least_fp32(z1), dim=1), F.normalize(at_least_fp32(z2), dim=1)
    if glob:
        rank, big_n = ctx.rank, n * ctx.world_size
        keys = torch.cat([distributed.gather_with_grad(a1), distributed.gather_with_grad(a2)])
        key_labels = _distinct_unknown(_gather_labels(labels))
        local = torch.arange(n, device=z1.device) + rank * n
        own = torch.cat([local, local + big_n])
    else:
        big_n = n
        keys = torch.cat([a1, a2])
        key_labels = _distinct_unknown(labels)
        own = torch.arange(2 * n, device=z1.device)
    if big_n < 2:
        raise ValueError("SupCon needs at least 2 images per batch")
    key_labels = torch.cat([key_labels, key_labels])  # (2N,): both views of an image share its label
    anchors = torch.cat([a1, a2])  # this rank's 2n anchors
    logits = anchors @ keys.t() / temperature  # (2n, 2N)
    rows = torch.arange(2 * n, device=z1.device)
    self_mask = torch.zeros_like(logits, dtype=torch.bool)
    self_mask[rows, own] = True
    logits = logits.masked_fill(self_mask, float("-inf"))  # A(i): every view but i
    positives = (key_labels[own].unsqueeze(1) == key_labels.unsqueeze(0)) & ~self_mask
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    per_anchor = -log_prob.masked_fill(~positives, 0).sum(1) / positives.sum(1)
    loss = per_anchor.mean()
    with torch.no_grad():
        acc = positives[rows, logits.argmax(dim=1)].float().mean()
    if not glob:
        return loss, acc
    with torch.no_grad():
        both = distributed.all_reduce_mean(torch.stack([loss.detach(), acc]))
    return loss + (both[0] - loss.detach()), both[1]


class SupConLoss(nn.Module):
    """SupCon (L_out) as an ``nn.Module``: ``SupConLoss(temperature=0.1)(z1, z2, labels) -> L``.

    Args:
        temperature: tau (Khosla et al. use 0.1).
        gather: under torch.distributed with several ranks, contrast with every rank's embeddings
            (labels gathered with them; default). Ignored in a single process.
    """

    uses_labels = True

    def __init__(self, temperature: float = 0.1, gather: bool = True) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.gather = gather
        self.last_accuracy: torch.Tensor | None = None

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss, acc = supcon(z1, z2, labels, self.temperature, gather=self.gather)
        self.last_accuracy = acc
        return loss

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, gather={self.gather}"


__all__ = ["SupConLoss", "supcon"]
