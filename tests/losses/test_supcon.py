"""SupCon (L_out) against a literal loop transcription of Khosla et al.'s formula, and its relation to NT-Xent."""

from __future__ import annotations

import math

import pytest
import torch

from simclr import NTXentLoss, SupConLoss


def supcon_loop(z1: torch.Tensor, z2: torch.Tensor, labels: list[int], tau: float) -> float:
    """L_out, term by term: for every anchor i of the 2N views, P(i) = other views with i's label
    (an unknown label -1 matches only the image's own other view), A(i) = every view but i."""
    z = torch.nn.functional.normalize(torch.cat([z1, z2]).double(), dim=1).tolist()
    n = len(labels)
    view_label = [(labels[k % n], k % n) for k in range(2 * n)]  # (label, image): -1 labels stay distinct

    def same(i: int, p: int) -> bool:
        (li, ii), (lp, ip) = view_label[i], view_label[p]
        return ii == ip if li < 0 or lp < 0 else li == lp

    def dot(a: int, b: int) -> float:
        return sum(x * y for x, y in zip(z[a], z[b], strict=True))

    total = 0.0
    for i in range(2 * n):
        denom = sum(math.exp(dot(i, a) / tau) for a in range(2 * n) if a != i)
        pos = [p for p in range(2 * n) if p != i and same(i, p)]
        total += -sum(math.log(math.exp(dot(i, p) / tau) / denom) for p in pos) / len(pos)
    return total / (2 * n)


PATTERNS = {
    "all distinct": lambda n: list(range(n)),
    "two classes": lambda n: [k % 2 for k in range(n)],
    "one class": lambda n: [0] * n,
    "some unknown": lambda n: [-1 if k % 3 == 0 else k % 2 for k in range(n)],
    "random": lambda n: torch.randint(0, 3, (n,), generator=torch.Generator().manual_seed(n)).tolist(),
}


@pytest.mark.parametrize("pattern", list(PATTERNS))
@pytest.mark.parametrize(("n", "d", "tau"), [(2, 3, 0.5), (5, 8, 0.1), (8, 4, 1.0), (7, 16, 0.07)])
def test_supcon_equals_the_loop_transcription(pattern: str, n: int, d: int, tau: float) -> None:
    g = torch.Generator().manual_seed(n * 100 + d)
    z1, z2 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    labels = PATTERNS[pattern](n)
    got = SupConLoss(tau)(z1, z2, torch.tensor(labels))
    assert got.item() == pytest.approx(supcon_loop(z1, z2, labels, tau), rel=1e-5)


def test_supcon_gradient_matches_the_loop_in_float64() -> None:
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 0, -1, 1, 2])
    SupConLoss(0.3)(z1, z2, labels).backward()
    eps = 1e-6
    for t in (z1, z2):
        for idx in [(0, 0), (3, 2), (5, 4)]:
            with torch.no_grad():
                t[idx] += eps
                up = supcon_loop(z1.detach(), z2.detach(), labels.tolist(), 0.3)
                t[idx] -= 2 * eps
                down = supcon_loop(z1.detach(), z2.detach(), labels.tolist(), 0.3)
                t[idx] += eps
            assert t.grad[idx].item() == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("n", [2, 9, 32])
def test_supcon_equals_ntxent_when_every_label_is_distinct(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    z1, z2 = torch.randn(n, 12, generator=g), torch.randn(n, 12, generator=g)
    nt = NTXentLoss(0.2)(z1, z2)
    assert SupConLoss(0.2)(z1, z2, torch.arange(n)).item() == pytest.approx(nt.item(), rel=1e-6)
    # unknown labels are distinct too: the same value
    assert SupConLoss(0.2)(z1, z2, torch.full((n,), -1)).item() == pytest.approx(nt.item(), rel=1e-6)


def test_shared_labels_change_the_loss_and_the_accuracy_counts_any_positive() -> None:
    z = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 1]), 4).float()
    z1 = z + 0.01 * torch.randn(4, 4, generator=torch.Generator().manual_seed(1))
    z2 = z + 0.01 * torch.randn(4, 4, generator=torch.Generator().manual_seed(2))
    loss = SupConLoss(0.1)
    same = loss(z1, z2, torch.tensor([0, 0, 1, 1]))
    assert loss.last_accuracy.item() == 1.0  # the nearest other view always shares the label
    distinct = loss(z1, z2, torch.arange(4))
    assert same.item() < distinct.item()  # images 0, 1 (and 2, 3) are near each other: positives now
    assert loss.last_accuracy.item() < 1.0  # and as distinct images they confuse the nearest-view test


def test_supcon_refuses_bad_shapes() -> None:
    with pytest.raises(ValueError, match="labels"):
        SupConLoss()(torch.randn(4, 3), torch.randn(4, 3), torch.arange(3))
    with pytest.raises(ValueError, match="temperature"):
        SupConLoss(0.0)


def _rank_worker(rank: int, world: int, store: str, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        z1, z2, labels = _batch()
        n = z1.shape[0] // world
        local = slice(rank * n, (rank + 1) * n)
        a, b = z1[local].clone().requires_grad_(), z2[local].clone().requires_grad_()
        loss = SupConLoss(0.2)(a, b, labels[local])
        loss.backward()
        torch.save({"loss": loss.detach(), "g1": a.grad, "g2": b.grad}, f"{out_dir}/supcon_{rank}.pt")
    finally:
        dist.destroy_process_group()


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return (torch.randn(8, 6, generator=g, dtype=torch.float64), torch.randn(8, 6, generator=g, dtype=torch.float64),
            torch.tensor([0, 1, 0, 2, -1, 1, 2, 0]))


def test_two_ranks_gather_labels_and_equal_one_process(tmp_path) -> None:  # noqa: ANN001
    import torch.multiprocessing as mp

    z1, z2, labels = _batch()
    a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    want = SupConLoss(0.2)(a, b, labels)
    want.backward()
    mp.spawn(_rank_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    for r in range(2):
        out = torch.load(tmp_path / f"supcon_{r}.pt")
        assert out["loss"].item() == pytest.approx(want.item(), rel=1e-12)  # the global L on every rank
        # each rank's rows get W x the global gradient (every rank's anchors contrast with them), which
        # DistributedDataParallel's average over the W ranks brings back to the global gradient
        rows = slice(r * 4, (r + 1) * 4)
        assert torch.allclose(out["g1"] / 2, a.grad[rows], rtol=1e-10, atol=1e-14)
        assert torch.allclose(out["g2"] / 2, b.grad[rows], rtol=1e-10, atol=1e-14)
