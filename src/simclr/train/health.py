"""Is it learning? Health signals of a contrastive batch, logged beside the loss.

The NT-Xent loss falls slowly and says little about what went wrong; these three say more:

- ``alignment`` (Wang & Isola 2020): mean squared distance between the two views' normalised
  projections, ||z1_i - z2_i||^2 averaged over the batch; in [0, 4], lower is better. It starts near
  its value for unrelated vectors and falls as the positives are pulled together.
- ``uniformity`` (Wang & Isola 2020, t = 2): log of the mean of exp(-t ||z_i - z_j||^2) over all
  pairs i < j of the 2N normalised projections; in [-4t, 0], lower is more uniform. Near 0 means
  every projection sits at one point: collapse.
- ``effective_rank`` (Roy & Vetterli 2007; RankMe, Garrido et al. 2023): exp of the entropy of the
  normalised singular values of the batch's representations h (2N, D); in [1, min(2N, D)]. It counts
  how many directions the representation really uses; a fall towards 1 is dimensional collapse.

All three are computed without gradient and in float64, on log steps only (BENCHMARKS.md has
their share of a step), without a device read of their own: ``HealthReading`` hands alignment and
uniformity to the loop's one read of the step and moves the Gram matrix of h to the host in the same
synchronisation, where the effective rank's eigenvalues are found.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from simclr.runtime import to_host_async


@torch.no_grad()
def alignment_tensor(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """``alignment`` as a 0-d tensor on z's device (nothing read back)."""
    a, b = F.normalize(z1.float(), dim=1), F.normalize(z2.float(), dim=1)
    return (a - b).pow(2).sum(1).mean()


@torch.no_grad()
def uniformity_tensor(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """``uniformity`` as a 0-d float64 tensor on z's device (nothing read back)."""
    if z.shape[0] < 2:
        raise ValueError("uniformity needs at least 2 vectors")
    n = z.shape[0]
    u = F.normalize(z.double(), dim=1)
    e = (u @ u.t()).mul_(2 * t).sub_(2 * t)  # -t ||u_i - u_j||^2 = -t (2 - 2 u_i.u_j)
    e.clamp_(max=0).fill_diagonal_(float("-inf"))
    # the matrix is symmetric: the mean over i < j is the mean over i != j
    return torch.logsumexp(e.flatten(), 0) - math.log(n * (n - 1))


@torch.no_grad()
def gram(h: torch.Tensor) -> torch.Tensor:
    """The smaller Gram matrix of ``h`` (h^T h or h h^T) in float64: its eigenvalues are the squared
    singular values of h (``effective_rank_of_gram``)."""
    x = h.double()
    return x.t() @ x if x.shape[0] >= x.shape[1] else x @ x.t()


@torch.no_grad()
def effective_rank_of_gram(g: torch.Tensor, eps: float = 1e-12) -> float:
    """``effective_rank`` from ``gram(h)`` (on the CPU in a run: eigen-solvers on CUDA read the device
    back to check their status, so the matrix travels with the log step's one read instead)."""
    s = torch.linalg.eigvalsh(g).clamp_(min=0).sqrt_()
    total = s.sum()
    if total <= 0:
        return 1.0
    p = s / total
    return float(torch.exp(-(p * torch.log(p + eps)).sum()))


def alignment(z1: torch.Tensor, z2: torch.Tensor) -> float:
    """Mean of ||z1_i/|z1_i| - z2_i/|z2_i|||^2 over the N pairs."""
    return float(alignment_tensor(z1, z2))


def uniformity(z: torch.Tensor, t: float = 2.0) -> float:
    """log mean_{i<j} exp(-t ||z_i/|z_i| - z_j/|z_j|||^2) over the rows of ``z`` (at least 2)."""
    return float(uniformity_tensor(z, t))


def effective_rank(h: torch.Tensor, eps: float = 1e-12) -> float:
    """exp(-sum_k p_k log p_k), p = singular values of ``h`` (rows are samples) over their sum.

    The singular values come from the eigenvalues of the smaller Gram matrix (h^T h or h h^T) in
    float64: 10-20x faster than an SVD, and exact enough for the entropy (the values it loses
    precision on are the ones too small to count)."""
    return effective_rank_of_gram(gram(h).cpu(), eps)


def batch_health(h: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> dict[str, float]:
    """The three signals of one batch: h (2N, D) of both views, z1 / z2 (N, d) their projections."""
    return {
        "align": alignment(z1, z2),
        "uniform": uniformity(torch.cat([z1, z2])),
        "rank_h": effective_rank(h),
    }


class HealthReading:
    """The signals of a log step's batch in two halves, around the loop's one device read:
    ``prepare`` queues the device work and returns the scalars for that read (alignment, uniformity),
    and starts the Gram matrix's copy to the host; ``finish`` (after the read, so the copy is done)
    adds the effective rank, computed on the host."""

    def __init__(self) -> None:
        self.host_gram: torch.Tensor | None = None

    def prepare(self, h: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> dict[str, torch.Tensor]:
        self.host_gram = to_host_async(gram(h))
        return {"align": alignment_tensor(z1, z2), "uniform": uniformity_tensor(torch.cat([z1, z2]))}

    def finish(self) -> dict[str, float]:
        if self.host_gram is None:
            return {}
        g, self.host_gram = self.host_gram, None
        return {"rank_h": effective_rank_of_gram(g)}


__all__ = [
    "HealthReading", "alignment", "alignment_tensor", "batch_health", "effective_rank", "effective_rank_of_gram",
    "gram", "uniformity", "uniformity_tensor",
]
