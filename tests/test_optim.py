"""LARS against PAPER.md's update rule; the lr rules and the warm-up + cosine schedule."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from simclr import LARS, lr_at, scaled_lr
from simclr.errors import SimCLRError
from simclr.optim import build_optimizer, cosine_progress, cosine_schedule


def reference_lars_step(
    params: list[torch.Tensor], grads: list[torch.Tensor], bufs: list[torch.Tensor],
    lr: float, m: float, wd: float, eta: float,
) -> None:
    """PAPER.md, per parameter w with gradient g (ndim <= 1: no wd, trust = 1)."""
    for w, g, v in zip(params, grads, bufs, strict=False):
        g = g.clone()
        if w.ndim > 1:
            g = g + wd * w
            wn, gn = float(w.norm()), float(g.norm())
            trust = eta * wn / gn if wn > 0 and gn > 0 else 1.0
        else:
            trust = 1.0
        v.mul_(m).add_(lr * trust * g)
        w.sub_(v)


def test_lars_matches_reference_over_steps() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(7, 5), nn.BatchNorm1d(5), nn.Linear(5, 3))
    ref = [p.detach().clone().double() for p in model.parameters()]
    bufs = [torch.zeros_like(p) for p in ref]
    lr, m, wd, eta = 0.7, 0.9, 1e-3, 0.001
    opt = LARS(model.parameters(), lr=lr, momentum=m, weight_decay=wd, trust_coefficient=eta)
    for _step in range(4):
        x = torch.randn(16, 7)
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        grads = [p.grad.detach().double() for p in model.parameters()]
        opt.step()
        reference_lars_step(ref, grads, bufs, lr, m, wd, eta)
        for p, r in zip(model.parameters(), ref, strict=False):
            torch.testing.assert_close(p.detach().double(), r, rtol=1e-5, atol=1e-7)


def test_lars_excludes_1d_params_from_wd_and_trust() -> None:
    bias = nn.Parameter(torch.tensor([1.0, -2.0]))
    weight = nn.Parameter(torch.full((2, 2), 3.0))
    opt = LARS([bias, weight], lr=0.1, momentum=0.0, weight_decay=0.5, trust_coefficient=0.001)
    bias.grad = torch.tensor([1.0, 1.0])
    weight.grad = torch.ones(2, 2)
    opt.step()
    # bias: plain SGD step, no decay, no trust ratio
    torch.testing.assert_close(bias.detach(), torch.tensor([0.9, -2.1]))
    # weight: g = 1 + 0.5*3 = 2.5 per entry; trust = 0.001 * ||w|| / ||g|| = 0.001 * 6 / 5
    trust = 0.001 * 6.0 / 5.0
    torch.testing.assert_close(weight.detach(), torch.full((2, 2), 3.0 - 0.1 * trust * 2.5))


def test_lars_trust_is_one_when_a_norm_is_zero() -> None:
    w = nn.Parameter(torch.zeros(2, 2))
    opt = LARS([w], lr=0.5, momentum=0.0, weight_decay=0.0)
    w.grad = torch.ones(2, 2)
    opt.step()
    torch.testing.assert_close(w.detach(), torch.full((2, 2), -0.5))


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_other_optimizers_exclude_1d_from_decay(name: str) -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    opt = build_optimizer(name, model, lr=0.1, weight_decay=0.3)
    for group in opt.param_groups:
        for p in group["params"]:
            assert group["weight_decay"] == (0.0 if p.ndim <= 1 else 0.3)


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_decay_1d_matches_torch_plain_optimizer(name: str) -> None:
    # --decay-1d: every parameter decayed, so a step equals torch's optimiser over model.parameters()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    twin = copy.deepcopy(model)
    ours = build_optimizer(name, model, lr=0.1, weight_decay=0.3, decay_1d=True)
    kwargs = {"momentum": 0.9} if name == "sgd" else {}
    cls = torch.optim.SGD if name == "sgd" else torch.optim.AdamW
    plain = cls(twin.parameters(), lr=0.1, weight_decay=0.3, **kwargs)
    x = torch.randn(8, 3)
    for _ in range(3):
        for m, opt in ((model, ours), (twin, plain)):
            opt.zero_grad()
            m(x).square().mean().backward()
            opt.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    # and the default differs exactly there: the BN gamma is decayed only with decay_1d
    gamma_before = model[1].weight.detach().clone()
    excl = build_optimizer(name, copy.deepcopy(model), lr=0.1, weight_decay=0.3)
    assert sum(len(g["params"]) for g in excl.param_groups if g["weight_decay"] == 0.0) == 4  # 2 biases, gamma, beta
    assert torch.equal(model[1].weight, gamma_before)


def test_lars_decay_1d_brings_1d_params_under_wd_and_trust() -> None:
    b = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = build_optimizer("lars", nn.ParameterList([b]), lr=1.0, weight_decay=0.5, momentum=0.0, decay_1d=True)
    b.grad = torch.tensor([0.1, 0.1])
    g = b.grad + 0.5 * b.detach()
    trust = 0.001 * float(b.detach().norm()) / float(g.norm())
    expected = b.detach() - trust * g
    opt.step()
    torch.testing.assert_close(b.detach(), expected)


def test_unknown_optimizer() -> None:
    with pytest.raises(SimCLRError, match="lars"):
        build_optimizer("adam", nn.Linear(2, 2), 0.1, 0.0)


def test_lr_rules() -> None:
    assert scaled_lr(0.3, 4096, "linear") == pytest.approx(4.8)
    assert scaled_lr(0.3, 256, "linear") == pytest.approx(0.3)
    assert scaled_lr(0.075, 4096, "sqrt") == pytest.approx(4.8)
    assert scaled_lr(0.075, 256, "sqrt") == pytest.approx(1.2)
    with pytest.raises(SimCLRError):
        scaled_lr(0.3, 256, "cubic")


def test_schedule_values() -> None:
    peak, warm, total = 2.0, 10, 110
    assert lr_at(0, peak, warm, total) == 0.0  # warm-up start
    assert lr_at(5, peak, warm, total) == pytest.approx(1.0)  # linear
    assert lr_at(10, peak, warm, total) == pytest.approx(peak)  # peak
    assert lr_at(60, peak, warm, total) == pytest.approx(peak / 2)  # cosine midpoint
    assert lr_at(35, peak, warm, total) == pytest.approx(peak * 0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_at(110, peak, warm, total) == pytest.approx(0.0, abs=1e-12)  # end
    assert lr_at(0, peak, 0, total) == pytest.approx(peak)  # no warm-up starts at the peak
    values = [lr_at(s, peak, warm, total) for s in range(warm, total + 1)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))  # monotone decay


def test_anchored_cosine_is_piecewise_linear_in_progress() -> None:
    """A time-budget run's re-plans: progress runs linearly from (warm-up end, 0) through each anchor to
    (total, 1); no anchors is the plain cosine, bit for bit."""
    peak, warm = 2.0, 10
    for s in range(0, 130):
        assert lr_at(s, peak, warm, 110, anchors=()) == lr_at(s, peak, warm, 110)
        assert cosine_progress(s, warm, 110) == min(1.0, (s - warm) / 100)
    # the plan to 110 moved at step 20 (progress 0.1) to 200, then at step 50 (0.1 + 0.9 x 30/180) to 70
    anchors = [(20, 0.1), (50, 0.25)]
    for s, want in [(10, 0.0), (15, 0.05), (20, 0.1), (35, 0.175), (50, 0.25), (60, 0.625), (70, 1.0), (90, 1.0)]:
        assert cosine_progress(s, warm, 70, anchors) == pytest.approx(want, abs=1e-15), s
        assert lr_at(s, peak, warm, 70, anchors=anchors) == pytest.approx(peak * 0.5 * (1 + math.cos(math.pi * want)))
    assert lr_at(5, peak, warm, 70, anchors=anchors) == pytest.approx(1.0)  # the warm-up is untouched
    # continuous where an end moved: the step pinned by an anchor keeps the lr the plan before gave it
    assert lr_at(20, peak, warm, 200, anchors=anchors[:1]) == pytest.approx(lr_at(20, peak, warm, 110), rel=1e-12)
    assert lr_at(50, peak, warm, 70, anchors=anchors) == pytest.approx(lr_at(50, peak, warm, 200, anchors=anchors[:1]),
                                                                       rel=1e-12)
    sched = cosine_schedule(peak, 1.0, warm, 70, anchors=[[20, 0.1], [50, 0.25]])  # as config.yaml holds them
    assert [sched(s) for s in range(80)] == [lr_at(s, peak, warm, 70, anchors=anchors) for s in range(80)]


@pytest.mark.parametrize("epochs", [1, 5, 7])
def test_per_epoch_schedule_matches_cosine_annealing_lr(epochs: int) -> None:
    # --lr-schedule epoch: torch's CosineAnnealingLR(T_max=epochs) stepped once per epoch
    spe, peak = 13, 0.06
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=peak)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    for e in range(epochs):
        expected = opt.param_groups[0]["lr"]
        for b in range(spe):
            assert lr_at(e * spe + b, peak, 0, epochs * spe, spe) == pytest.approx(expected, abs=1e-12)
        opt.step()  # no gradient: nothing moves; keeps torch's step-order check quiet
        sched.step()
    # with a warm-up, the warm-up moves per epoch too: epoch 0 of 2 warm-up epochs runs at 0
    assert lr_at(spe - 1, peak, 2 * spe, 10 * spe, spe) == 0.0
    assert lr_at(spe, peak, 2 * spe, 10 * spe, spe) == pytest.approx(peak / 2)
    assert lr_at(spe - 1, peak, 2 * spe, 10 * spe) > 0  # the per-step default does not hold


def test_run_length() -> None:
    from simclr.optim import run_length

    assert run_length(234, 5) == 1170 and run_length(234, 5, 1000) == 1000 and run_length(234, 5, 5000) == 1170
