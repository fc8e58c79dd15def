"""Linear evaluation: the logistic regression against its objective, the penalty choice, and refusals."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from simclr import linear_eval
from simclr.errors import SimCLRError
from simclr.eval.linear import topk_accuracy


def test_topk_accuracy() -> None:
    logits = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [1.0, 3.0, 2.0]])
    y = torch.tensor([0, 1, 0])
    acc = topk_accuracy(logits, y, (1, 2))
    assert acc["top1"] == pytest.approx(1 / 3) and acc["top2"] == pytest.approx(2 / 3)


def test_topk_is_left_out_where_it_cannot_fail() -> None:
    """With 4 classes top-5 is 1 for any model: it is not reported (top-3 of 4 still is)."""
    logits = torch.randn(6, 4)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    acc = topk_accuracy(logits, y, (1, 3, 5))
    assert set(acc) == {"top1", "top3"}
    assert set(topk_accuracy(torch.randn(6, 5), y, (1, 5))) == {"top1"}
    assert set(topk_accuracy(torch.randn(6, 6), y, (1, 5))) == {"top1", "top5"}


def test_linear_eval_separable_and_chance() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(5, 16, generator=g) * 4
    ytr, yte = torch.randint(0, 5, (500,), generator=g), torch.randint(0, 5, (200,), generator=g)
    xtr = centres[ytr] + torch.randn(500, 16, generator=g)
    xte = centres[yte] + torch.randn(200, 16, generator=g)
    res = linear_eval(xtr, ytr, xte, yte)
    assert res["top1"] > 0.97 and "top5" not in res  # 5 classes: top-5 is 1 for any model, not reported
    noise = linear_eval(torch.randn(500, 16, generator=g), ytr, torch.randn(200, 16, generator=g), yte)
    assert noise["top1"] < 0.4  # chance is 0.2


def test_unlabelled_data_is_refused() -> None:
    x = torch.randn(10, 4)
    with pytest.raises(SimCLRError, match="label"):
        linear_eval(x, torch.full((10,), -1), x, torch.zeros(10, dtype=torch.long))


@pytest.mark.parametrize("l2", [1e-2, 1e-4])
def test_logistic_regression_reaches_the_optimum_of_its_objective(l2: float) -> None:
    """The hand-written gradient must be the objective's: at the returned point, autograd's
    gradient of mean cross-entropy + l2/2 |W|^2 vanishes (a wrong gradient stops elsewhere)."""
    from simclr.eval.linear import fit_logreg

    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=g, dtype=torch.float64)
    y = (x[:, :3] + 0.8 * torch.randn(300, 3, generator=g, dtype=torch.float64)).argmax(1)
    w, b = fit_logreg(x, y, 3, l2, max_iter=500, tolerance=1e-10)
    w, b = w.clone().requires_grad_(), b.clone().requires_grad_()
    loss = F.cross_entropy(x @ w + b, y) + 0.5 * l2 * (w * w).sum()
    gw, gb = torch.autograd.grad(loss, (w, b))
    assert float(gw.abs().max()) < 1e-7 and float(gb.abs().max()) < 1e-7
    # and it is a real minimum, not the zero start
    assert float(w.detach().abs().max()) > 0.1


def test_linear_eval_warm_start_path_matches_a_cold_fit() -> None:
    """The l2 chosen on the hold-out is refitted from the path's solution; a cold fit at the same
    l2 reaches the same classifier (the warm start only saves iterations)."""
    from simclr.eval.linear import fit_logreg

    g = torch.Generator().manual_seed(1)
    x = torch.randn(400, 5, generator=g, dtype=torch.float64)
    y = (x[:, :4] + torch.randn(400, 4, generator=g, dtype=torch.float64)).argmax(1)
    warm = fit_logreg(x, y, 4, 1e-3, 500, init=fit_logreg(x, y, 4, 1e-1, 500), tolerance=1e-10)
    cold = fit_logreg(x, y, 4, 1e-3, 500, tolerance=1e-10)
    torch.testing.assert_close(warm[0], cold[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(warm[1], cold[1], atol=1e-6, rtol=0)


def test_linear_eval_chooses_the_penalty_of_least_hold_out_cross_entropy() -> None:
    """Reference: a cold, converged fit at every penalty on the same hold-out split, then the
    argmin of hold-out cross-entropy. The data are chosen so that hold-out accuracy would pick a
    different penalty: selecting by hold-out accuracy fails this test."""
    from simclr.eval.linear import L2_GRID, fit_logreg, holdout_split, standardise

    g = torch.Generator().manual_seed(5)
    x = torch.randn(300, 30, generator=g, dtype=torch.float64)
    y = (x[:, :3] + 1.5 * torch.randn(300, 3, generator=g, dtype=torch.float64)).argmax(1)
    xs, _ = standardise(x, x[:1])
    val, fit = holdout_split(len(x), seed=0)
    assert len(val) == 30 and sorted(torch.cat([val, fit]).tolist()) == list(range(300))
    losses, accs = {}, {}
    for l2 in L2_GRID:
        w, b = fit_logreg(xs[fit], y[fit], 3, l2, 1000, tolerance=1e-10)
        logits = xs[val] @ w + b
        losses[l2] = float(F.cross_entropy(logits, y[val]))
        accs[l2] = topk_accuracy(logits, y[val], (1,))["top1"]
    by_loss = min(losses, key=losses.get)
    assert max(accs, key=accs.get) != by_loss  # the two rules disagree on these data
    res = linear_eval(x, y, x[:50], y[:50], seed=0)
    assert res["l2"] == by_loss
