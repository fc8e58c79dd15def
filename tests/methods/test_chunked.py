"""--chunk-size: the NT-Xent gradient of a whole batch computed chunk by chunk.

Exact (to float rounding) for networks without batch statistics; with BN each chunk is
normalised by its own statistics and the running statistics move once per chunk.
"""

from __future__ import annotations

import pytest
import torch
from helpers import NoBatchStats
from torch import nn

from simclr.losses import NTXentLoss, nt_xent
from simclr.methods.chunked import chunked_step
from simclr.models import build_model

TAU = 0.5


def _views(n: int, size: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.rand(n, 3, size, size, generator=g), torch.rand(n, 3, size, size, generator=g)


def _direct(model: nn.Module, v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
    model.zero_grad()
    _, z = model(torch.cat([v1, v2]))
    loss, _ = nt_xent(*z.chunk(2), TAU)
    loss.backward()
    return loss.detach()


def _grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad.clone() for k, p in model.named_parameters()}


@pytest.mark.parametrize(("n", "chunk"), [(8, 1), (8, 3), (8, 4), (10, 7)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chunked_gradient_equals_direct_without_batch_statistics(n: int, chunk: int, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    model = NoBatchStats().to(dtype)
    v1, v2 = (v.to(dtype) for v in _views(n))
    ref_loss = _direct(model, v1, v2)
    ref = _grads(model)
    model.zero_grad()
    loss, acc = chunked_step(model, v1, v2, chunk, NTXentLoss(TAU))
    assert torch.allclose(loss.double(), ref_loss.double(), rtol=1e-6)
    assert 0 <= float(acc) <= 1
    got = _grads(model)
    if dtype == torch.float64:  # exact up to rounding, parameter by parameter
        for k, g in got.items():
            assert torch.allclose(g, ref[k], rtol=1e-9, atol=1e-12), k
    else:  # fp32: the whole gradient to 1e-5 relative (a bias gradient is a sum that cancels)
        flat, flat_ref = torch.cat([g.flatten() for g in got.values()]), torch.cat([g.flatten() for g in ref.values()])
        assert float((flat - flat_ref).norm() / flat_ref.norm()) < 1e-5


def test_one_chunk_is_the_direct_computation_with_bn() -> None:
    torch.manual_seed(0)
    model = build_model("resnet18", 0.25, "cifar", 12).train()
    v1, v2 = _views(6)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    ref_loss = _direct(model, v1, v2)
    ref, ref_state = _grads(model), {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    model.zero_grad()
    loss, _ = chunked_step(model, v1, v2, 6, NTXentLoss(TAU))
    assert torch.allclose(loss, ref_loss, rtol=1e-6)
    for k, g in _grads(model).items():
        assert torch.allclose(g, ref[k], rtol=1e-4, atol=1e-6), k
    for k, v in model.state_dict().items():  # running statistics moved once, not twice
        assert torch.allclose(v.float(), ref_state[k].float(), rtol=1e-5, atol=1e-7), k


def test_bn_running_statistics_move_once_per_chunk() -> None:
    torch.manual_seed(0)
    model = build_model("resnet18", 0.25, "cifar", 12).train()
    v1, v2 = _views(8)
    expected = build_model("resnet18", 0.25, "cifar", 12).train()
    expected.load_state_dict(model.state_dict())
    with torch.no_grad():
        for i in (0, 3, 6):  # chunks of 3, 3, 2 images, each fed once
            expected(torch.cat([v1[i : i + 3], v2[i : i + 3]]))
    chunked_step(model, v1, v2, 3, NTXentLoss(TAU))
    for (k, a), b in zip(model.state_dict().items(), expected.state_dict().values(), strict=True):
        if "running" in k or "num_batches" in k:
            assert torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-6), k


def test_with_bn_chunks_change_the_gradient() -> None:
    """The documented consequence: BN statistics of a chunk, not of the batch."""
    torch.manual_seed(0)
    model = build_model("resnet18", 0.25, "cifar", 12).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    v1, v2 = _views(8)
    _direct(model, v1, v2)
    ref = _grads(model)
    model.load_state_dict(state)
    model.zero_grad()
    chunked_step(model, v1, v2, 2, NTXentLoss(TAU))
    worst = max(float((g - ref[k]).norm() / ref[k].norm().clamp_min(1e-12)) for k, g in _grads(model).items())
    assert worst > 1e-3


def test_chunk_size_must_be_positive() -> None:
    v1, v2 = _views(4)
    with pytest.raises(ValueError, match="chunk_size"):
        chunked_step(NoBatchStats(), v1, v2, 0, NTXentLoss(TAU))


def test_cli_pretrain_in_chunks(tmp_path) -> None:  # noqa: ANN001
    import json
    import os
    import subprocess
    import sys

    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "simclr", "pretrain", "--out", str(run), "--limit", "64",
                        "--image-size", "16", "--width-multiplier", "0.25", "--batch-size", "16",
                        "--chunk-size", "6", "--max-steps", "2", "--device", "cpu", "--log-every", "1"],
                       capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "gradient in chunks of 6 images" in r.stderr
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2]
    assert all(0 < row["loss"] < 10 for row in rows)


def test_keep_returns_the_whole_batch_of_the_first_pass() -> None:
    torch.manual_seed(0)
    model = NoBatchStats().double()
    v1, v2 = (v.double() for v in _views(10))
    kept: dict[str, torch.Tensor] = {}
    loss, _ = chunked_step(model, v1, v2, 4, NTXentLoss(TAU), keep=kept)  # chunks of 4, 4, 2
    with torch.no_grad():
        h1, z1 = model(v1)
        h2, z2 = model(v2)
    assert kept["z1"].dtype == torch.float64  # as the loss sees them: at least float32, float64 kept
    assert torch.allclose(kept["z1"], z1) and torch.allclose(kept["z2"], z2)
    order = [h1[0:4], h2[0:4], h1[4:8], h2[4:8], h1[8:], h2[8:]]  # chunk by chunk: view 1 rows, view 2 rows
    assert torch.allclose(kept["h"], torch.cat(order))
    assert not kept["h"].requires_grad and not kept["z1"].requires_grad
    assert torch.allclose(nt_xent(kept["z1"], kept["z2"], TAU)[0], loss)
