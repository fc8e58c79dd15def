"""Judging a representation: linear evaluation and kNN on frozen features h.

The encoder is frozen: BN in inference mode, features computed under ``torch.no_grad``
(no gradient can reach it), from un-augmented images. The linear classifier is a multinomial
logistic regression on standardised features, fitted to convergence with full-batch L-BFGS;
its L2 penalty is chosen on a 10% hold-out of the train features (a warm-started path from
strong to weak penalties, each fit run to convergence), as the one whose fit has the lowest
hold-out cross-entropy, then refitted on all of them, starting from the chosen fit (the
small-data protocol of the paper's transfer experiments).

Why cross-entropy and converged fits: hold-out accuracy moves in steps of 1/n and differs by
less than its standard error between neighbouring penalties, so its argmax is mostly noise; and a
fit stopped early is implicitly regularised, so a weak penalty judged on an unconverged fit looks
better on the hold-out than its converged refit does on the test set (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from simclr import distributed
from simclr.data.folder import FolderImages
from simclr.data.loaders import eval_batches
from simclr.data.sources import ArrayImages, Images
from simclr.errors import SimCLRError

L2_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)


@torch.no_grad()
def extract_features(
    encoder: nn.Module,
    images: Images,
    image_size: int,
    device: torch.device,
    batch_size: int = 256,
    workers: int = 0,
    precision: str = "fp32",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, D) float32 on the CPU, labels (N,)) of ``images`` through ``encoder``.

    Under torchrun with several ranks, each rank encodes a contiguous share of the images and
    every rank gets all N rows back, in order: the same result as one process.
    """
    n = len(images)
    start, stop = distributed.shard_range(n)
    if (start, stop) != (0, n):
        images = subset(images, start, stop)
    was_training = encoder.training
    encoder.eval()
    feats, labels = [], []
    try:
        for x, y in eval_batches(images, batch_size, image_size, device, workers):
            if precision == "bf16":
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                    h = encoder(x)
            else:
                h = encoder(x)
            feats.append(h.float().cpu())
            labels.append(torch.as_tensor(y))
    finally:
        encoder.train(was_training)
    h = torch.cat(feats) if feats else torch.zeros(0, 0)
    y = torch.cat(labels).long() if labels else torch.zeros(0, dtype=torch.long)
    if distributed.context().enabled:
        comm = device if distributed.backend() == "nccl" else torch.device("cpu")
        width = torch.tensor([h.shape[1] if h.numel() else 0], device=comm)
        torch.distributed.all_reduce(width, op=torch.distributed.ReduceOp.MAX)  # a rank may hold none
        h = distributed.gather_rows(h.reshape(-1, int(width.item())), n, comm)
        y = distributed.gather_rows(y, n, comm)
    return h, y


def subset(images: Images, start: int, stop: int) -> Images:
    """Images ``start`` to ``stop`` (exclusive) of an in-memory or folder dataset."""
    if isinstance(images, ArrayImages):
        return ArrayImages(images.images[start:stop], images.labels[start:stop], images.classes)
    assert isinstance(images, FolderImages)
    return images.subset(list(range(start, stop)))


def _fit_logreg(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    l2: float,
    max_iter: int,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
    tolerance: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression, mean cross-entropy + l2/2 |W|^2, by full-batch L-BFGS.

    The gradient is written out (softmax minus one-hot) rather than taken by autograd: one
    forward GEMM and one (G^T X) GEMM per evaluation, the layout MKL runs fastest (X^T G is
    6x slower here). Stops when the largest gradient entry is below ``tolerance`` or the loss
    stops changing."""
    n = x.shape[0]
    w = torch.zeros(x.shape[1], num_classes, dtype=x.dtype) if init is None else init[0].clone()
    b = torch.zeros(num_classes, dtype=x.dtype) if init is None else init[1].clone()
    rows = torch.arange(n)
    opt = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=tolerance, tolerance_change=tolerance * 1e-3,
    )

    def closure() -> torch.Tensor:
        logits = torch.addmm(b, x, w)
        lse = logits.logsumexp(1)
        loss = (lse - logits[rows, y]).mean() + 0.5 * l2 * (w * w).sum()
        g = (logits - lse[:, None]).exp_()  # softmax
        g[rows, y] -= 1.0
        g /= n
        w.grad = ((g.t() @ x).t() + l2 * w).contiguous()
        b.grad = g.sum(0)
        return loss

    opt.step(closure)
    return w, b


def topk_accuracy(logits: torch.Tensor, y: torch.Tensor, ks: Iterable[int] = (1, 5)) -> dict[str, float]:
    out = {}
    for k in ks:
        k_eff = min(k, logits.shape[1])
        top = logits.topk(k_eff, dim=1).indices
        out[f"top{k}"] = float((top == y[:, None]).any(1).float().mean())
    return out


def _check_labels(y: torch.Tensor, what: str) -> None:
    if y.numel() == 0:
        raise SimCLRError(f"the {what} split is empty")
    if (y < 0).any():
        raise SimCLRError(
            f"the {what} images have no labels: evaluation needs class subfolders (DIR/CLASS/img.png)"
        )


def standardise(train_x: torch.Tensor, test_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both feature sets shifted and scaled by the train features' per-dimension mean and std."""
    mean, std = train_x.mean(0), train_x.std(0)
    # Features (nearly) constant on train, e.g. dead ReLUs of an untrained net, keep their scale:
    # dividing by a ~0 std would blow up their test values and swamp the classifier.
    std = torch.where(std > 1e-3 * std.median().clamp_min(1e-12), std, torch.ones_like(std))
    return (train_x - mean) / std, (test_x - mean) / std


def holdout_split(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(hold-out, fit) indices of n train features: a seeded 10% (at least one) held out."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, n // 10)
    return perm[:n_val], perm[n_val:]


def linear_eval(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    l2_grid: Iterable[float] = L2_GRID,
    max_iter: int = 1000,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Top-1 / top-5 of a logistic regression fitted on the train features, on the test ones."""
    _check_labels(train_y, "train")
    _check_labels(test_y, "test")
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    xtr, xte = standardise(train_x, test_x)
    grid = sorted(set(l2_grid), reverse=True)  # strongest penalty first: each fit warm-starts the next
    if not grid:
        raise SimCLRError("the L2 grid of the linear evaluation is empty")
    best_l2, init = grid[0], None
    if len(grid) > 1:
        val, fit = holdout_split(len(xtr), seed)
        best = float("inf")
        prev = None
        for l2 in grid:
            prev = _fit_logreg(xtr[fit], train_y[fit], num_classes, l2, max_iter, init=prev)
            logits = xtr[val] @ prev[0] + prev[1]
            loss = float(F.cross_entropy(logits, train_y[val]))
            if log:
                acc = topk_accuracy(logits, train_y[val], (1,))["top1"]
                log(f"  l2 {l2:g}: hold-out cross-entropy {loss:.4f} top1 {acc:.4f}")
            if loss < best:
                best, best_l2, init = loss, l2, prev
    if log:
        log(f"  refit on all {len(xtr)} train features with l2 {best_l2:g}")
    w, b = _fit_logreg(xtr, train_y, num_classes, best_l2, max_iter, init=init)
    result = topk_accuracy(xte @ w + b, test_y)
    result["train_top1"] = topk_accuracy(xtr @ w + b, train_y, (1,))["top1"]
    result["l2"] = best_l2
    return result


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
    _check_labels(train_y, "train")
    _check_labels(test_y, "test")
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
    result = topk_accuracy(torch.cat(scores), test_y, (1, 5) if num_classes >= 5 else (1,))
    result["k"] = k
    return result


def check_finite(x: torch.Tensor, what: str) -> None:
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(1).sum())
        raise SimCLRError(f"{bad} {what} feature vectors are not finite: the encoder is broken (NaN weights?)")


__all__ = ["extract_features", "knn_eval", "linear_eval", "topk_accuracy", "check_finite"]
