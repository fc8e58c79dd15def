"""NT-Logistic and the margin triplet loss (the paper's Table 2) against literal loop transcriptions of
their formulas, value and gradient, with and without semi-hard negatives; 2 ranks equal one process."""

from __future__ import annotations

import math

import pytest
import torch

from simclr.losses import MarginTripletLoss, NTLogisticLoss


def _pairs(z1: torch.Tensor, z2: torch.Tensor):  # noqa: ANN202
    """Cosine similarity of views a, b (view k and k+N are the two of image k), and the positive of i."""
    z = torch.nn.functional.normalize(torch.cat([z1, z2]).double(), dim=1).tolist()
    n = len(z) // 2

    def s(a: int, b: int) -> float:
        return sum(x * y for x, y in zip(z[a], z[b], strict=True))

    return s, n, lambda i: (i + n) % (2 * n)


def logistic_loop(z1: torch.Tensor, z2: torch.Tensor, tau: float, semi_hard: bool = False) -> float:
    s, n, pos = _pairs(z1, z2)

    def log_sigmoid(x: float) -> float:
        return -math.log1p(math.exp(-x))

    total = 0.0
    for i in range(2 * n):
        negs = [k for k in range(2 * n) if k not in (i, pos(i))]
        if semi_hard:
            negs = [k for k in negs if s(i, k) < s(i, pos(i))]
        neg = sum(log_sigmoid(-s(i, k) / tau) for k in negs) / len(negs) if negs else 0.0
        total += -log_sigmoid(s(i, pos(i)) / tau) - neg
    return total / (2 * n)


def triplet_loop(z1: torch.Tensor, z2: torch.Tensor, m: float, semi_hard: bool = False) -> float:
    s, n, pos = _pairs(z1, z2)
    total = 0.0
    for i in range(2 * n):
        p = s(i, pos(i))
        negs = [k for k in range(2 * n) if k not in (i, pos(i))]
        if semi_hard:
            negs = [k for k in negs if p - m < s(i, k) < p]
        total += sum(max(s(i, k) - p + m, 0.0) for k in negs) / len(negs) if negs else 0.0
    return total / (2 * n)


CASES = [(2, 3, 0.5), (5, 8, 0.1), (8, 4, 1.0), (7, 16, 0.2)]


def _views(n: int, d: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(n * 100 + d)
    z1 = torch.randn(n, d, generator=g, dtype=dtype)
    return z1, z1 + 0.7 * torch.randn(n, d, generator=g, dtype=dtype)  # positives a little closer than chance


@pytest.mark.parametrize("semi_hard", [False, True])
@pytest.mark.parametrize(("n", "d", "tau"), CASES)
def test_nt_logistic_equals_the_loop(n: int, d: int, tau: float, semi_hard: bool) -> None:
    z1, z2 = _views(n, d)
    got = NTLogisticLoss(tau, semi_hard=semi_hard)(z1, z2)
    assert got.item() == pytest.approx(logistic_loop(z1, z2, tau, semi_hard), rel=1e-5)


@pytest.mark.parametrize("semi_hard", [False, True])
@pytest.mark.parametrize(("n", "d", "m"), [(2, 3, 0.5), (5, 8, 0.2), (8, 4, 1.0), (7, 16, 1.5)])
def test_margin_triplet_equals_the_loop(n: int, d: int, m: float, semi_hard: bool) -> None:
    z1, z2 = _views(n, d)
    got = MarginTripletLoss(m, semi_hard=semi_hard)(z1, z2)
    assert got.item() == pytest.approx(triplet_loop(z1, z2, m, semi_hard), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("semi_hard", [False, True])
def test_gradients_match_the_loops_in_float64(semi_hard: bool) -> None:
    z1, z2 = _views(6, 5, torch.float64)
    for loss, loop in ((NTLogisticLoss(0.3, semi_hard=semi_hard), lambda a, b: logistic_loop(a, b, 0.3, semi_hard)),
                       (MarginTripletLoss(0.8, semi_hard=semi_hard), lambda a, b: triplet_loop(a, b, 0.8, semi_hard))):
        a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
        loss(a, b).backward()
        assert a.grad.abs().max() > 1e-3 and b.grad.abs().max() > 1e-3  # a gradient to check
        eps = 1e-6
        for t, grad in ((z1, a.grad), (z2, b.grad)):
            for idx in [(0, 0), (2, 3), (5, 4)]:
                up, down = t.clone(), t.clone()
                up[idx] += eps
                down[idx] -= eps
                args_up = (up, z2) if t is z1 else (z1, up)
                args_down = (down, z2) if t is z1 else (z1, down)
                numeric = (loop(*args_up) - loop(*args_down)) / (2 * eps)
                assert grad[idx].item() == pytest.approx(numeric, rel=1e-4, abs=1e-8)


def test_closed_forms_and_accuracy() -> None:
    """Identical views, orthogonal images: every positive similarity 1, every negative 0."""
    z = torch.eye(4)
    tau = 0.5
    want = -math.log(1 / (1 + math.exp(-1 / tau))) - math.log(0.5)  # -log s(1/tau) - log s(0)
    assert NTLogisticLoss(tau)(z, z).item() == pytest.approx(want, rel=1e-6)
    assert MarginTripletLoss(0.5)(z, z).item() == pytest.approx(0.0, abs=1e-7)  # 0 - 1 + 0.5 < 0
    assert MarginTripletLoss(1.5)(z, z).item() == pytest.approx(0.5, rel=1e-6)  # 0 - 1 + 1.5
    loss = NTLogisticLoss(tau)
    loss(z, z)
    assert loss.last_accuracy.item() == 1.0
    loss(z, z.roll(1, 0))  # every image's second view is another image's: no anchor finds its positive
    assert loss.last_accuracy.item() == 0.0


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="temperature"):
        NTLogisticLoss(0.0)
    with pytest.raises(ValueError, match="margin"):
        MarginTripletLoss(-1.0)
    with pytest.raises(ValueError, match="at least 2 images"):
        MarginTripletLoss()(torch.randn(1, 3), torch.randn(1, 3))
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        NTLogisticLoss()(torch.randn(4, 3), torch.randn(3, 3))


def _rank_worker(rank: int, world: int, store: str, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        z1, z2 = _views(8, 6, torch.float64)
        n = z1.shape[0] // world
        local = slice(rank * n, (rank + 1) * n)
        out = {}
        for name, loss in (("logistic", NTLogisticLoss(0.2, semi_hard=True)), ("triplet", MarginTripletLoss(0.6))):
            a, b = z1[local].clone().requires_grad_(), z2[local].clone().requires_grad_()
            value = loss(a, b)
            value.backward()
            out[name] = {"loss": value.detach(), "g1": a.grad, "g2": b.grad}
        torch.save(out, f"{out_dir}/pairwise_{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_ranks_equal_one_process(tmp_path) -> None:  # noqa: ANN001
    import torch.multiprocessing as mp

    z1, z2 = _views(8, 6, torch.float64)
    want = {}
    for name, loss in (("logistic", NTLogisticLoss(0.2, semi_hard=True)), ("triplet", MarginTripletLoss(0.6))):
        a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
        value = loss(a, b)
        value.backward()
        want[name] = (value.item(), a.grad, b.grad)
    mp.spawn(_rank_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    for r in range(2):
        out = torch.load(tmp_path / f"pairwise_{r}.pt")
        rows = slice(r * 4, (r + 1) * 4)
        for name, (value, g1, g2) in want.items():
            assert out[name]["loss"].item() == pytest.approx(value, rel=1e-12)  # the global L on every rank
            # W x the global gradient on each rank's rows, which DDP's average over ranks brings back
            assert torch.allclose(out[name]["g1"] / 2, g1[rows], rtol=1e-10, atol=1e-14)
            assert torch.allclose(out[name]["g2"] / 2, g2[rows], rtol=1e-10, atol=1e-14)
