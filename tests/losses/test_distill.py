"""The distillation loss against its formula written out with loops."""

from __future__ import annotations

import math

import pytest
import torch

from simclr import DistillLoss
from simclr.losses.distill import soft_cross_entropy


def soft_ce_loop(student: torch.Tensor, teacher: torch.Tensor, t: float) -> float:
    total = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist(), strict=True):
        zt = sum(math.exp(v / t) for v in t_row)
        zs = sum(math.exp(v / t) for v in s_row)
        total += -sum(math.exp(tv / t) / zt * math.log(math.exp(sv / t) / zs) for sv, tv in zip(s_row, t_row,
                                                                                               strict=True))
    return total / len(student)


@pytest.mark.parametrize("t", [0.1, 1.0, 2.0])
def test_soft_cross_entropy_equals_the_loop(t: float) -> None:
    g = torch.Generator().manual_seed(3)
    s, te = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    assert soft_cross_entropy(s, te, t).item() == pytest.approx(soft_ce_loop(s, te, t), rel=1e-5)


def test_label_weight_mixes_in_the_labelled_cross_entropy_of_labelled_images_only() -> None:
    g = torch.Generator().manual_seed(4)
    s, te = torch.randn(6, 3, generator=g, requires_grad=True), torch.randn(6, 3, generator=g, requires_grad=True)
    labels = torch.tensor([2, -1, 0, -1, -1, 1])
    got = DistillLoss(1.0, 0.25)(s, te, labels)
    known = labels >= 0
    ce = torch.nn.functional.cross_entropy(s[known], labels[known])
    want = 0.75 * soft_ce_loop(s.detach(), te.detach(), 1.0) + 0.25 * ce.item()
    assert got.item() == pytest.approx(want, rel=1e-5)
    got.backward()
    assert te.grad is None  # the teacher is a constant
    # with no labelled image in the batch the labelled term is 0, not NaN
    none = DistillLoss(1.0, 0.25)(s, te, torch.full((6,), -1))
    assert none.item() == pytest.approx(0.75 * soft_ce_loop(s.detach(), te.detach(), 1.0), rel=1e-5)


def test_the_minimum_is_the_teachers_distribution() -> None:
    te = torch.tensor([[2.0, 0.0, -1.0]])
    at_teacher = soft_cross_entropy(te.clone(), te, 0.5)
    assert at_teacher < soft_cross_entropy(te + torch.tensor([[0.0, 0.5, 0.0]]), te, 0.5)
    assert at_teacher < soft_cross_entropy(te * 2, te, 0.5)
