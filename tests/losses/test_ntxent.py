"""NT-Xent against a literal transcription of the paper's formula, and closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from simclr import NTXentLoss, nt_xent


def literal_nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    """The paper's L, written as loops over the 2N views (float64)."""
    z = torch.cat([z1, z2]).double()
    n2 = z.shape[0]
    n = n2 // 2

    def sim(u: torch.Tensor, v: torch.Tensor) -> float:
        return float(u @ v / (u.norm() * v.norm()))

    def ell(i: int, j: int) -> float:
        num = math.exp(sim(z[i], z[j]) / tau)
        den = sum(math.exp(sim(z[i], z[k]) / tau) for k in range(n2) if k != i)
        return -math.log(num / den)

    total = 0.0
    for k in range(n):  # L = 1/2N sum_k [l(2k-1, 2k) + l(2k, 2k-1)]
        total += ell(k, k + n) + ell(k + n, k)
    return total / n2


@pytest.mark.parametrize("n,d", [(2, 3), (5, 8), (16, 128), (33, 7)])
@pytest.mark.parametrize("tau", [0.05, 0.1, 0.5, 1.0])
def test_matches_literal_loop(n: int, d: int, tau: float) -> None:
    g = torch.Generator().manual_seed(n * 1000 + d)
    z1 = torch.randn(n, d, generator=g)
    z2 = torch.randn(n, d, generator=g)
    loss, _ = nt_xent(z1, z2, tau)
    assert loss.item() == pytest.approx(literal_nt_xent(z1, z2, tau), rel=1e-5, abs=1e-6)


def test_computes_in_at_least_float32_and_keeps_float64() -> None:
    g = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    want = literal_nt_xent(z1, z2, 0.3)
    loss64, _ = nt_xent(z1, z2, 0.3)
    assert loss64.dtype == torch.float64 and abs(loss64.item() - want) < 1e-12  # float32 would be ~1e-7 off
    loss16, _ = nt_xent(z1.bfloat16(), z2.bfloat16(), 0.3)
    assert loss16.dtype == torch.float32 and abs(loss16.item() - want) < 0.05  # bf16 inputs, float32 logits


def test_closed_form_identical_orthogonal_views() -> None:
    # z1 = z2 = one-hot rows: sim(positive) = 1, sim(other) = 0 for all 2N-2 negatives.
    # l = -log(e^{1/t} / (e^{1/t} + (2N-2))) for every anchor.
    n, tau = 6, 0.5
    z = torch.eye(n, 10)
    loss, acc = nt_xent(z, z.clone(), tau)
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2 * n - 2))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert acc.item() == 1.0


def test_closed_form_all_equal_is_log_2n_minus_1() -> None:
    # every view identical: all 2N-1 candidates tie, L = log(2N - 1) for any tau
    n = 9
    z = torch.ones(n, 4)
    for tau in (0.1, 0.7):
        loss, _ = nt_xent(z, z, tau)
        assert loss.item() == pytest.approx(math.log(2 * n - 1), rel=1e-6)


def test_scale_invariant_and_symmetric() -> None:
    z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
    a = nt_xent(z1, z2, 0.2)[0]
    assert nt_xent(3.0 * z1, 0.5 * z2, 0.2)[0].item() == pytest.approx(a.item(), rel=1e-5)
    assert nt_xent(z2, z1, 0.2)[0].item() == pytest.approx(a.item(), rel=1e-5)


def test_module_reductions_and_gradient() -> None:
    z1 = torch.randn(8, 16, requires_grad=True)
    z2 = torch.randn(8, 16)
    mean = NTXentLoss(temperature=0.5)(z1, z2)
    twice = NTXentLoss(temperature=0.5, reduction="sum_of_means")(z1, z2)
    assert twice.item() == pytest.approx(2 * mean.item(), rel=1e-6)
    mean.backward()
    assert z1.grad is not None and torch.isfinite(z1.grad).all() and z1.grad.abs().sum() > 0


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        NTXentLoss(temperature=0)
    with pytest.raises(ValueError):
        NTXentLoss(reduction="sum")
    with pytest.raises(ValueError):
        nt_xent(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError):
        nt_xent(torch.randn(1, 3), torch.randn(1, 3))
