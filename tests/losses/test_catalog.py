"""The loss catalogue: each loss's stated value at chance (every pair of views equally similar) is what
its module computes there, for several temperatures and margins, and the banner says that value."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from simclr.losses import LOSS_KINDS, LOSSES
from simclr.losses.catalog import LossKind

N, D = 8, 32


def _cfg(name: str, temperature: float = 0.5, margin: float = 0.5, semi_hard: bool = False) -> SimpleNamespace:
    return SimpleNamespace(name=name, temperature=temperature, margin=margin, semi_hard=semi_hard)


def _value(kind: LossKind, cfg: SimpleNamespace, z1: torch.Tensor, z2: torch.Tensor) -> float:
    loss = kind.build(cfg)
    if kind.needs_labels:
        return float(loss(z1, z2, torch.arange(z1.shape[0])))  # every image its own class: one positive each
    return float(loss(z1, z2))


CASES = [(name, tau, margin, sh) for name in LOSSES for tau in (0.1, 0.5, 1.0) for margin in (0.2, 1.0)
         for sh in ((False, True) if LOSS_KINDS[name].semi_hard else (False,))]


@pytest.mark.parametrize(("name", "tau", "margin", "semi_hard"), CASES)
def test_the_value_at_chance_is_the_modules(name: str, tau: float, margin: float, semi_hard: bool) -> None:
    kind, cfg = LOSS_KINDS[name], _cfg(name, tau, margin, semi_hard)
    if not semi_hard:  # (at cosine 1 rounding breaks the ties that semi-hard mining compares; at 0 they are exact)
        same = torch.randn(1, D, dtype=torch.float64).expand(N, D)  # every pair at cosine 1
        assert _value(kind, cfg, same, same) == pytest.approx(kind.at_equal(cfg, N, 1.0), rel=1e-6, abs=1e-9)
    eye = torch.eye(2 * N, D, dtype=torch.float64)  # 2N orthonormal views: every pair at cosine 0
    assert _value(kind, cfg, eye[:N], eye[N:]) == pytest.approx(kind.at_equal(cfg, N, 0.0), rel=1e-6, abs=1e-9)


def test_ntxent_at_chance_is_log_2n_minus_1_and_the_banner_says_so() -> None:
    kind = LOSS_KINDS["ntxent"]
    assert kind.at_equal(_cfg("ntxent", 0.1), 64, 1.0) == pytest.approx(math.log(127))
    assert "ln(2N-1) = 4.844" in kind.equal_text(_cfg("ntxent", 0.1), 64)
    text = LOSS_KINDS["ntlogistic"].equal_text(_cfg("ntlogistic", 0.2), 64)
    at_one = math.log1p(math.exp(5)) + math.log1p(math.exp(-5))  # softplus(1/tau) + softplus(-1/tau), tau 0.2
    assert f"{2 * math.log(2):.3f} (s = 0)" in text and f"{at_one:.3f} (s = 1" in text


def test_the_banner_names_each_loss_with_its_setting() -> None:
    assert LOSS_KINDS["triplet"].describe(_cfg("triplet", margin=0.3, semi_hard=True)) == (
        "margin triplet margin 0.3 semi-hard negatives")
    assert LOSS_KINDS["ntxent"].describe(_cfg("ntxent", 0.2)) == "NT-Xent temperature 0.2"
