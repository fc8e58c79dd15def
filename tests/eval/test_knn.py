"""kNN evaluation against a loop transcription of the weighted vote."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from simclr import knn_eval


def literal_knn(train_x, train_y, test_x, k, t, num_classes):  # noqa: ANN001, ANN201
    """Loop transcription of the weighted kNN vote (Wu et al. 2018)."""
    preds = []
    for q in test_x:
        sims = [(float(F.cosine_similarity(q, x, dim=0)), int(y)) for x, y in zip(train_x, train_y, strict=False)]
        sims.sort(key=lambda s: -s[0])
        votes = [0.0] * num_classes
        for s, y in sims[:k]:
            votes[y] += float(torch.exp(torch.tensor(s / t)))
        preds.append(max(range(num_classes), key=lambda c: votes[c]))
    return torch.tensor(preds)


@pytest.mark.parametrize("k", [1, 5, 20])
def test_knn_matches_literal_loop(k: int) -> None:
    g = torch.Generator().manual_seed(k)
    xtr, ytr = torch.randn(60, 8, generator=g), torch.randint(0, 4, (60,), generator=g)
    xte, yte = torch.randn(25, 8, generator=g), torch.randint(0, 4, (25,), generator=g)
    expected = (literal_knn(xtr, ytr, xte, k, 0.1, 4) == yte).float().mean().item()
    assert knn_eval(xtr, ytr, xte, yte, k=k, temperature=0.1, chunk=7)["top1"] == pytest.approx(expected)


