"""kNN evaluation on frozen features h: the cheap monitor of later work (not in the papers)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from simclr.errors import SimCLRError
from simclr.eval.linear import check_labels, topk_accuracy


def knn_eval(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    k: int = 200,
    temperature: float = 0.1,
    chunk: int = 1024,
) -> dict[str, float]:
    """Weighted kNN (Wu et al. 2018): the k most cosine-similar train features vote with
    weight exp(sim / temperature); returns top-1 (and top-5 when there are >= 5 classes)."""
    check_labels(train_y, "train")
    check_labels(test_y, "test")
    if k < 1:
        raise SimCLRError(f"--k must be >= 1, got {k}")
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    k = min(k, len(train_x))
    tr = F.normalize(train_x.float(), dim=1)
    scores = []
    for i in range(0, len(test_x), chunk):
        q = F.normalize(test_x[i : i + chunk].float(), dim=1)
        sim, idx = (q @ tr.t()).topk(k, dim=1)  # (c, k)
        weights = (sim / temperature).exp()
        votes = torch.zeros(len(q), num_classes)
        votes.scatter_add_(1, train_y[idx], weights)
        scores.append(votes)
    result = topk_accuracy(torch.cat(scores), test_y)
    result["k"] = k
    return result


__all__ = ["knn_eval"]
