"""Linear evaluation and kNN: correctness against references, and a frozen encoder."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from simclr import build_encoder, extract_features, knn_eval, linear_eval
from simclr.data.sources import ArrayImages
from simclr.errors import SimCLRError
from simclr.evaluate import topk_accuracy


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


def test_topk_accuracy() -> None:
    logits = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [1.0, 3.0, 2.0]])
    y = torch.tensor([0, 1, 0])
    acc = topk_accuracy(logits, y, (1, 2))
    assert acc["top1"] == pytest.approx(1 / 3) and acc["top2"] == pytest.approx(2 / 3)


def test_linear_eval_separable_and_chance() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(5, 16, generator=g) * 4
    ytr, yte = torch.randint(0, 5, (500,), generator=g), torch.randint(0, 5, (200,), generator=g)
    xtr = centres[ytr] + torch.randn(500, 16, generator=g)
    xte = centres[yte] + torch.randn(200, 16, generator=g)
    res = linear_eval(xtr, ytr, xte, yte)
    assert res["top1"] > 0.97 and res["top5"] == 1.0
    noise = linear_eval(torch.randn(500, 16, generator=g), ytr, torch.randn(200, 16, generator=g), yte)
    assert noise["top1"] < 0.4  # chance is 0.2


def test_feature_extraction_leaves_the_encoder_bit_identical() -> None:
    encoder = build_encoder("resnet18", 0.25, "cifar")
    encoder.train()  # the caller's mode is restored afterwards; BN must still not update
    with torch.no_grad():  # make the BN statistics non-trivial first
        encoder(torch.rand(8, 3, 16, 16))
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    imgs = ArrayImages(torch.randint(0, 256, (40, 3, 16, 16), dtype=torch.uint8), torch.arange(40) % 4, [])
    feats, labels = extract_features(encoder, imgs, 16, torch.device("cpu"), batch_size=16)
    assert feats.shape == (40, encoder.feature_dim) and not feats.requires_grad
    assert labels.tolist() == (torch.arange(40) % 4).tolist()
    after = encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert encoder.training
    # inference-mode BN: a batch's features do not depend on the other images in it
    single, _ = extract_features(encoder, ArrayImages(imgs.images[:1], imgs.labels[:1], []), 16,
                                 torch.device("cpu"))
    torch.testing.assert_close(single[0], feats[0], rtol=1e-4, atol=1e-5)
    res = linear_eval(feats[:30], labels[:30], feats[30:], labels[30:], l2_grid=(1e-3,))
    assert 0.0 <= res["top1"] <= 1.0
    assert all(torch.equal(before[k], encoder.state_dict()[k]) for k in before)


def test_unlabelled_data_is_refused() -> None:
    x = torch.randn(10, 4)
    with pytest.raises(SimCLRError, match="label"):
        linear_eval(x, torch.full((10,), -1), x, torch.zeros(10, dtype=torch.long))
