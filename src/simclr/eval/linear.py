"""Linear evaluation: a logistic regression on frozen features h.

The features come from ``simclr.eval.features`` (encoder frozen: BN in inference mode, under
``torch.no_grad``, un-augmented images). The linear classifier is a multinomial
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

from simclr.errors import SimCLRError

L2_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)


def fit_logreg(
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
    """``top{k}`` for each k of ``ks`` below the number of classes (top-k of k >= C classes is 1 whatever
    the model: it is left out, as top-5 is with 4 classes); ``top1`` always."""
    out = {}
    for k in ks:
        if k > 1 and k >= logits.shape[1]:
            continue
        top = logits.topk(k, dim=1).indices
        out[f"top{k}"] = float((top == y[:, None]).any(1).float().mean())
    return out


def check_labels(y: torch.Tensor, what: str) -> None:
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
    check_labels(train_y, "train")
    check_labels(test_y, "test")
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
            prev = fit_logreg(xtr[fit], train_y[fit], num_classes, l2, max_iter, init=prev)
            logits = xtr[val] @ prev[0] + prev[1]
            loss = float(F.cross_entropy(logits, train_y[val]))
            if log:
                acc = topk_accuracy(logits, train_y[val], (1,))["top1"]
                log(f"  l2 {l2:g}: hold-out cross-entropy {loss:.4f} top1 {acc:.4f}")
            if loss < best:
                best, best_l2, init = loss, l2, prev
    if log:
        log(f"  refit on all {len(xtr)} train features with l2 {best_l2:g}")
    w, b = fit_logreg(xtr, train_y, num_classes, best_l2, max_iter, init=init)
    result = topk_accuracy(xte @ w + b, test_y)
    result["train_top1"] = topk_accuracy(xtr @ w + b, train_y, (1,))["top1"]
    result["l2"] = best_l2
    return result


__all__ = ["L2_GRID", "check_labels", "fit_logreg", "holdout_split", "linear_eval", "standardise", "topk_accuracy"]
