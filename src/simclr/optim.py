"""Optimisers and the learning-rate schedule.

LARS follows PAPER.md (and the official ``lars_optimizer.py``). For each parameter w with
gradient g:

    g <- g + wd * w
    trust = eta * ||w|| / ||g||        (trust = 1 if either norm is 0)
    v <- m * v + lr * trust * g
    w <- w - v

Parameters with ``ndim <= 1`` (biases, BN gamma/beta) are excluded from both the weight decay
and the trust ratio: follow SimCLR, no weight decay and no LARS adaptation on BN and biases.
The same ``ndim <= 1`` rule removes weight decay from those parameters for SGD and AdamW;
``decay_1d=True`` lifts it (weight decay on every parameter, as torch's plain optimisers and
many other SimCLR implementations do; for LARS it also brings those parameters under the
trust ratio).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from simclr.errors import SimCLRError


class LARS(torch.optim.Optimizer):
    """Layer-wise Adaptive Rate Scaling (You et al. 2017) as used by SimCLR.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (the schedule overwrites it every step).
        momentum: m (0.9 in the paper).
        weight_decay: wd (1e-6 in the paper, 1e-4 in the v2 code).
        trust_coefficient: eta (0.001).
        exclude_1d: exclude parameters with ``ndim <= 1`` from weight decay and trust ratio.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
        exclude_1d: bool = True,
    ) -> None:
        if lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            trust_coefficient=trust_coefficient,
            exclude_1d=exclude_1d,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        """One LARS update of every parameter with a gradient, with ``torch._foreach_*`` ops: a few
        multi-tensor kernels per group rather than several small ones per parameter, and no read of
        any value back to the host (the trust ratios stay on the device)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._update(group, params)
        return loss

    def _update(self, group: dict, params: list[torch.Tensor]) -> None:
        lr, m = group["lr"], group["momentum"]
        wd, eta = group["weight_decay"], group["trust_coefficient"]
        adapted = [not (group["exclude_1d"] and p.ndim <= 1) for p in params]
        grads: list[torch.Tensor] = [p.grad for p in params]  # type: ignore[misc]
        ap = [p for p, a in zip(params, adapted, strict=True) if a]
        if ap:
            ag = [g for g, a in zip(grads, adapted, strict=True) if a]
            if wd != 0:
                ag = list(torch._foreach_add(ag, ap, alpha=wd))  # g + wd * w
            w_norm = torch.stack(torch._foreach_norm(ap))
            g_norm = torch.stack(torch._foreach_norm(ag))
            trust = torch.where((w_norm > 0) & (g_norm > 0), eta * w_norm / g_norm, torch.ones_like(w_norm))
            scaled = iter(torch._foreach_mul(ag, list(trust.unbind())))  # g * trust, one ratio per tensor
            grads = [next(scaled) if a else g for g, a in zip(grads, adapted, strict=True)]
        bufs = []
        for p in params:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p)
            bufs.append(state["momentum_buffer"])
        torch._foreach_mul_(bufs, m)  # v <- m v + lr g
        torch._foreach_add_(bufs, grads, alpha=lr)
        torch._foreach_sub_(params, bufs)  # w <- w - v


def param_groups(model: nn.Module, weight_decay: float, decay_1d: bool = False) -> list[dict]:
    """Split parameters into a decayed group (ndim > 1) and an undecayed one (ndim <= 1);
    with ``decay_1d`` every parameter is in the decayed group. Empty groups are left out."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 and not decay_1d else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


OPTIMIZERS = ("lars", "sgd", "adamw")
DEFAULT_BASE_LR = {"lars": 0.3, "sgd": 0.06, "adamw": 1e-3}


def build_optimizer(
    name: str,
    model: nn.Module,
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
    decay_1d: bool = False,
    nesterov: bool = False,
) -> torch.optim.Optimizer:
    """The optimiser ``name`` over ``model``'s parameters, with the ``ndim <= 1`` exclusion
    unless ``decay_1d``; ``nesterov``: SGD's Nesterov momentum (fine-tuning's)."""
    if name == "lars":
        # LARS applies the exclusion itself; one group keeps its state_dict simple.
        return LARS(
            [p for p in model.parameters() if p.requires_grad],
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            exclude_1d=not decay_1d,
        )
    if name == "sgd":
        return torch.optim.SGD(param_groups(model, weight_decay, decay_1d), lr=lr, momentum=momentum,
                               nesterov=nesterov)
    if name == "adamw":
        return torch.optim.AdamW(param_groups(model, weight_decay, decay_1d), lr=lr)
    raise SimCLRError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")


def scaled_lr(base_lr: float, batch_size: int, rule: str) -> float:
    """Peak lr from the batch size: ``linear`` base x B/256, or ``sqrt`` base x sqrt(B).

    The paper: LARS 0.3 x B/256 (linear), or 0.075 x sqrt(B), better for small batches or
    few epochs.
    """
    if rule == "linear":
        return base_lr * batch_size / 256
    if rule == "sqrt":
        return base_lr * math.sqrt(batch_size)
    raise SimCLRError(f"unknown lr scaling rule {rule!r}: choose 'linear' or 'sqrt'")


LR_SCHEDULES = ("step", "epoch")


def run_length(steps_per_epoch: int, epochs: int, max_steps: int | None = None) -> int:
    """The steps a run takes: ``epochs`` x ``steps_per_epoch``, or fewer where ``max_steps`` stops it first."""
    total = steps_per_epoch * epochs
    return min(total, max_steps) if max_steps else total


def cosine_schedule(peak_lr: float, warmup_epochs: float, steps_per_epoch: int, total_steps: int,
                    per_epoch: bool = False, anchors: Sequence[Sequence[float]] = ()) -> Callable[[int], float]:
    """``lr_at`` of one run as a function of the global step: warm-up over ``warmup_epochs`` epochs, then
    cosine to 0 at ``total_steps`` (through ``anchors``, see ``cosine_progress``); ``per_epoch``: held
    through each epoch."""
    return functools.partial(lr_at, peak_lr=peak_lr, warmup_steps=round(warmup_epochs * steps_per_epoch),
                             total_steps=total_steps, steps_per_epoch=steps_per_epoch if per_epoch else None,
                             anchors=tuple((int(s), float(t)) for s, t in anchors))


def cosine_progress(step: int, warmup_steps: int, total_steps: int,
                    anchors: Sequence[tuple[int, float]] = ()) -> float:
    """Where ``step`` is on the cosine, 0 (its start, the warm-up's end) to 1 (its end, ``total_steps``).

    Without ``anchors`` it moves evenly: ``(step - warmup_steps) / (total_steps - warmup_steps)``. Each anchor
    ``(s, t)`` pins step s at progress t (a time-budget run that moved its end at step s, where it stood at t):
    between consecutive points of (warm-up end, 0), the anchors, (``total_steps``, 1) progress is linear, so
    moving the end leaves the learning rate continuous and every step before the anchor as it was."""
    if not anchors:
        return min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    points = [(warmup_steps, 0.0), *anchors, (total_steps, 1.0)]
    for (s0, t0), (s1, t1) in itertools.pairwise(points):
        if step < s1:
            return t0 + (t1 - t0) * (step - s0) / max(1, s1 - s0)
    return 1.0


def lr_at(
    step: int, peak_lr: float, warmup_steps: int, total_steps: int, steps_per_epoch: int | None = None,
    anchors: Sequence[tuple[int, float]] = (),
) -> float:
    """Learning rate at global ``step`` (0-based): linear warm-up, then cosine decay to 0.

    A pure function of the step, so resuming needs only the step. During warm-up the lr
    climbs linearly, reaching ``peak_lr`` at step ``warmup_steps``; from there it follows
    ``peak * 0.5 * (1 + cos(pi * t))`` with t going from 0 to 1 at ``total_steps``.

    With ``steps_per_epoch`` the schedule moves once per epoch: every step of an epoch gets
    the value at the epoch's first step (torch's ``CosineAnnealingLR(T_max=epochs)`` stepped
    at each epoch end, as many implementations do; epoch e of E gets peak * 0.5 * (1 + cos(pi e / E))).
    """
    if steps_per_epoch is not None:
        step -= step % max(1, steps_per_epoch)
    if warmup_steps > 0 and step < warmup_steps:
        return peak_lr * step / warmup_steps
    t = cosine_progress(step, warmup_steps, total_steps, anchors)
    return peak_lr * 0.5 * (1.0 + math.cos(math.pi * t))
