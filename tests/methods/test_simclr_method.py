"""The SimCLR method: its step is NT-Xent on f and g of the two views, whole-batch or chunked."""

from __future__ import annotations

import torch
from helpers import NoBatchStats

from simclr.data.loaders import ViewBatch
from simclr.losses import NTXentLoss, nt_xent
from simclr.methods.simclr import SimCLR
from simclr.models import build_model


def views(n: int, size: int = 12) -> ViewBatch:
    g = torch.Generator().manual_seed(5)
    return ViewBatch(torch.rand(n, 3, size, size, generator=g), torch.rand(n, 3, size, size, generator=g),
                     torch.arange(n))


def test_the_step_is_nt_xent_of_the_joint_forward() -> None:
    torch.manual_seed(0)
    model = build_model("resnet18", 0.25, "cifar", 12).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    batch = views(6)
    out = SimCLR(model, NTXentLoss(0.5)).training_step(batch)
    model.load_state_dict(state)  # the BN statistics as they were before the step's forward
    h, z = model(torch.cat([batch.view1, batch.view2]))
    want, acc = nt_xent(*z.chunk(2), 0.5)
    torch.testing.assert_close(out.loss, want, rtol=0, atol=0)
    torch.testing.assert_close(out.logs["pos_acc"], acc)
    torch.testing.assert_close(out.features, h.detach(), rtol=0, atol=0)
    assert not out.features.requires_grad and not out.backward_done and out.loss.requires_grad
    torch.testing.assert_close(torch.cat(out.projections), z.detach(), rtol=0, atol=0)


def test_the_chunked_step_backpropagates_itself_and_orders_h_by_view() -> None:
    torch.manual_seed(0)
    model = NoBatchStats().double()
    batch = ViewBatch(*(v.double() for v in views(10)[:2]), torch.arange(10))
    out = SimCLR(model, NTXentLoss(0.5), chunk_size=4).training_step(batch)  # chunks of 4, 4, 2
    assert out.backward_done and all(p.grad is not None for p in model.parameters())
    with torch.no_grad():
        h1, _ = model(batch.view1)
        h2, _ = model(batch.view2)
    torch.testing.assert_close(out.features, torch.cat([h1, h2]))  # [view 1 of every image; view 2]
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    SimCLR(model, NTXentLoss(0.5)).training_step(batch).loss.backward()
    for k, p in model.named_parameters():
        torch.testing.assert_close(grads[k], p.grad, rtol=1e-9, atol=1e-12)
