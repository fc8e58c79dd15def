"""``pretrain``'s training steps against SimCLR transcribed in plain PyTorch on torchvision's ResNet-18.

The reference below shares no code with simclr: torchvision's ``resnet18`` (fc removed) with the
run's initial weights copied in, the projection head of the official code written out layer by
layer, NT-Xent as the paper's formula, ``torch.optim.SGD`` with the parameter groups and the
learning rate of each step computed here from the schedule's formula. Fed the views the trainer
drew, it must end where the trainer ends after several steps: every weight, every BN running
statistic. Weight decay and the learning rate are set high enough that a wrong decay group,
schedule, momentum or BN mode moves the weights far more than the tolerance.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from simclr import Callback, PretrainConfig, pretrain
from simclr.config import apply_overrides
from simclr.io import safe_load

IMAGENET_MEAN = torch.tensor((0.485, 0.456, 0.406), dtype=torch.float64).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor((0.229, 0.224, 0.225), dtype=torch.float64).view(1, 3, 1, 1)
BATCH, IMAGES, SIZE, EPOCHS, LR, WD, TAU = 8, 16, 16, 2, 0.2, 1e-2, 0.5


class ScaledBatchNorm(nn.Module):
    """BN with a scale (gamma) and no shift (beta), eps 1e-5, momentum 0.1, written with F.batch_norm."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))
        self.register_buffer("num_batches_tracked", torch.tensor(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.num_batches_tracked += 1
        y = F.batch_norm(x, self.running_mean, self.running_var, None, None, self.training, 0.1, 1e-5)
        return y * self.weight


class ReferenceHead(nn.Module):
    """The official code's 2-layer head: dense (no bias) -> BN -> ReLU -> dense (no bias) -> BN with
    gamma and no beta."""

    def __init__(self, dim: int, out: int) -> None:
        super().__init__()
        self.fc1, self.bn1 = nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim)
        self.fc2, self.bn2 = nn.Linear(dim, out, bias=False), ScaledBatchNorm(out)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.fc2(F.relu(self.bn1(self.fc1(h)))))


def reference_nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> torch.Tensor:
    """L = mean over the 2N anchors i of -log(exp(s_ip / tau) / sum_{k != i} exp(s_ik / tau))."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n2 = len(z)
    sim = z @ z.t() / tau
    positive = torch.cat([torch.arange(n2 // 2, n2), torch.arange(n2 // 2)])
    others = ~torch.eye(n2, dtype=torch.bool)
    denominators = torch.stack([torch.logsumexp(sim[i][others[i]], 0) for i in range(n2)])
    return (denominators - sim[torch.arange(n2), positive]).mean()


def reference_lr(step: int, steps_per_epoch: int, per_epoch: bool, warmup_epochs: float) -> float:
    total, warmup_steps = EPOCHS * steps_per_epoch, round(warmup_epochs * steps_per_epoch)
    if per_epoch:  # torch's CosineAnnealingLR(T_max=epochs) stepped at each epoch end
        return LR * 0.5 * (1 + math.cos(math.pi * (step // steps_per_epoch) / EPOCHS))
    if step < warmup_steps:
        return LR * step / warmup_steps
    return LR * 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / (total - warmup_steps)))


def copy_into(reference: dict[str, torch.Tensor], ours: dict[str, torch.Tensor]) -> None:
    """Copy ``ours`` into ``reference`` entry by entry in module order (both are ResNet-18 then head)."""
    assert len(reference) == len(ours)
    for (rk, rv), (ok, ov) in zip(reference.items(), ours.items(), strict=True):
        assert rv.shape == ov.shape and rk.rsplit(".", 1)[-1] in ok, (rk, ok)
        rv.copy_(ov)


SETTINGS = {
    # the official code's choices: joint BN over both views, biases and BN undecayed, per-step
    # warm-up + cosine, residual gamma 0, no input normalisation
    "official": {"train.bn_views": "joint", "optim.warmup_epochs": 0.5},
    # the torchvision-style choices: one forward per view, every parameter decayed, cosine held
    # through each epoch, gamma 1, ImageNet normalisation inside the encoder
    "torchvision-style": {
        "train.bn_views": "per-view", "optim.decay_1d": True, "optim.lr_schedule": "epoch",
        "optim.warmup_epochs": 0, "model.zero_init_residual": False, "model.input_norm": "imagenet",
    },
}


class Recorder(Callback):
    """The run's initial weights and every batch's views, as the loop hands them to the step."""

    def __init__(self) -> None:
        self.start: dict[str, torch.Tensor] = {}
        self.views: list[tuple[torch.Tensor, torch.Tensor]] = []

    def on_fit_start(self, trainer) -> None:  # noqa: ANN001
        self.start.update(copy.deepcopy(trainer.step_fn.method.model.state_dict()))

    def on_batch_start(self, trainer, batch) -> None:  # noqa: ANN001
        self.views.append((batch.view1.clone(), batch.view2.clone()))


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_pretrain_steps_equal_a_plain_pytorch_transcription(tmp_path: Path, setting: str) -> None:
    cfg = PretrainConfig()
    apply_overrides(cfg, {
        "data.dataset": "synthetic", "data.limit": IMAGES, "data.image_size": SIZE, "model.arch": "resnet18",
        "model.width_multiplier": 1.0, "model.stem": "imagenet", "train.batch_size": BATCH,
        "train.epochs": EPOCHS, "train.device": "cpu", "optim.optimizer": "sgd", "optim.lr": LR,
        "optim.momentum": 0.9, "optim.weight_decay": WD, "loss.temperature": TAU, **SETTINGS[setting],
    }, "test")
    recorder = Recorder()
    # float64 weights and views, so that the comparison measures the algorithm, not float32 rounding
    # (amplified by BN over small batches, it reaches 0.5 % of an update in one step); the views are
    # made in the default dtype, so they are float64 from the augmentation on
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        pretrain(cfg, tmp_path / "run", callbacks=[recorder])
    finally:
        torch.set_default_dtype(dtype)
    start, views = recorder.start, recorder.views
    assert all(v.dtype == torch.float64 for pair in views for v in pair)
    steps_per_epoch = IMAGES // BATCH
    assert len(views) == EPOCHS * steps_per_epoch
    trained = safe_load(tmp_path / "run" / "checkpoint.pt")["model"]

    backbone = torchvision.models.resnet18()
    backbone.fc = nn.Identity()
    head = ReferenceHead(512, 128)
    reference = nn.ModuleDict({"backbone": backbone, "head": head}).double()
    with torch.no_grad():
        copy_into(reference.state_dict(keep_vars=True), start)
    o = SETTINGS[setting]
    decay_all = o.get("optim.decay_1d", False)
    params = list(reference.parameters())
    groups = [{"params": [p for p in params if decay_all or p.ndim > 1], "weight_decay": WD}]
    if not decay_all:
        groups.append({"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0})
    opt = torch.optim.SGD(groups, lr=LR, momentum=0.9)
    normalise = o.get("model.input_norm") == "imagenet"
    reference.train()

    def forward(x: torch.Tensor) -> torch.Tensor:
        return head(backbone((x - IMAGENET_MEAN) / IMAGENET_STD if normalise else x))

    per_epoch = o.get("optim.lr_schedule") == "epoch"
    for step, (v1, v2) in enumerate(views):
        for g in opt.param_groups:
            g["lr"] = reference_lr(step, steps_per_epoch, per_epoch, o["optim.warmup_epochs"])
        if o["train.bn_views"] == "per-view":
            z1, z2 = forward(v1), forward(v2)
        else:
            z1, z2 = forward(torch.cat([v1, v2])).chunk(2)
        opt.zero_grad()
        reference_nt_xent(z1, z2, TAU).backward()
        opt.step()

    moved = 0.0
    entries = zip(reference.state_dict().items(), trained.values(), start.values(), strict=True)
    for (name, want), got, before in entries:
        if want.is_floating_point():
            scale = max(float(want.abs().max()), 1e-3)
            torch.testing.assert_close(got, want, rtol=0, atol=1e-9 * scale, msg=lambda m, n=name: f"{n}: {m}")
            moved = max(moved, float((want - before).abs().max()) / scale)
        else:
            assert torch.equal(got, want), name  # num_batches_tracked
    assert moved > 1e-2  # the steps did change the weights, far beyond the tolerance
