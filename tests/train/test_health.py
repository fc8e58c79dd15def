import math

import pytest
import torch

from simclr.train.health import alignment, batch_health, effective_rank, uniformity


def _unit(v: list[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _sqdist(a: list[float], b: list[float]) -> float:
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True))


def loop_alignment(z1: torch.Tensor, z2: torch.Tensor) -> float:
    pairs = [(_unit(a.tolist()), _unit(b.tolist())) for a, b in zip(z1, z2, strict=True)]
    return sum(_sqdist(a, b) for a, b in pairs) / len(pairs)


def loop_uniformity(z: torch.Tensor, t: float) -> float:
    u = [_unit(v.tolist()) for v in z]
    terms = [math.exp(-t * _sqdist(u[i], u[j])) for i in range(len(u)) for j in range(i + 1, len(u))]
    return math.log(sum(terms) / len(terms))


def loop_effective_rank(h: torch.Tensor) -> float:
    s = torch.linalg.svdvals(h.double()).tolist()
    p = [x / sum(s) for x in s]
    return math.exp(-sum(q * math.log(q) for q in p if q > 0))


@pytest.mark.parametrize(("n", "d"), [(2, 3), (7, 16), (32, 128)])
def test_alignment_and_uniformity_match_a_loop_transcription(n: int, d: int) -> None:
    g = torch.Generator().manual_seed(n * d)
    z1, z2 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g) * 3
    assert alignment(z1, z2) == pytest.approx(loop_alignment(z1, z2), rel=1e-5)
    z = torch.cat([z1, z2])
    for t in (0.5, 2.0):
        assert uniformity(z, t) == pytest.approx(loop_uniformity(z, t), rel=1e-9, abs=1e-9)


def test_alignment_closed_forms() -> None:
    z = torch.randn(5, 8)
    assert alignment(z, 2.5 * z) == pytest.approx(0.0, abs=1e-6)  # the same directions
    assert alignment(z, -z) == pytest.approx(4.0, rel=1e-6)  # antipodal


def test_uniformity_closed_forms() -> None:
    # every vector at one point (collapse): exp(0) = 1, log 1 = 0
    assert uniformity(torch.ones(6, 4)) == pytest.approx(0.0, abs=1e-12)
    # the 2d vectors +-e_k: distance^2 is 2 between non-opposite pairs and 4 between the d opposite
    d, t = 5, 2.0
    e = torch.eye(d)
    z = torch.cat([e, -e])
    pairs = 2 * d * (2 * d - 1) // 2
    expected = math.log(((pairs - d) * math.exp(-2 * t) + d * math.exp(-4 * t)) / pairs)
    assert uniformity(z, t) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        uniformity(torch.ones(1, 3))


def test_effective_rank_closed_forms_and_loop() -> None:
    # k equal singular values: rank exactly k; rank-1 matrix: 1
    q, _ = torch.linalg.qr(torch.randn(64, 64, dtype=torch.float64))
    assert effective_rank(q[:, :10] * 3.0) == pytest.approx(10.0, rel=1e-6)
    u, v = torch.randn(40, 1), torch.randn(1, 12)
    assert effective_rank(u @ v) == pytest.approx(1.0, abs=1e-4)
    assert effective_rank(torch.zeros(4, 4)) == 1.0
    h = torch.randn(50, 20) @ torch.diag(torch.linspace(0.1, 5, 20))
    assert effective_rank(h) == pytest.approx(loop_effective_rank(h), rel=1e-9)
    assert 1.0 < effective_rank(h) < 20.0


def test_batch_health_keys_and_collapse_is_visible() -> None:
    g = torch.Generator().manual_seed(0)
    h = torch.randn(64, 32, generator=g)
    z1, z2 = torch.randn(32, 8, generator=g), torch.randn(32, 8, generator=g)
    healthy = batch_health(h, z1, z2)
    assert set(healthy) == {"align", "uniform", "rank_h"}
    collapsed = batch_health(torch.ones(64, 32) + 1e-6 * h, torch.ones(32, 8), torch.ones(32, 8))
    assert collapsed["rank_h"] < 1.01 < healthy["rank_h"]
    assert collapsed["uniform"] > -1e-6 > healthy["uniform"]
    assert collapsed["align"] < 1e-6 < healthy["align"]
