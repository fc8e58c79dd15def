"""``--time-budget MINUTES``: a run whose schedule ends on time.

Before the first real step, ``plan_budget`` times a few training steps of the run itself (one warm-up,
then ``TIMED_STEPS``, on the run's own first batches) and puts every weight, optimiser state, BN
statistic and random generator back as it was, so the run then starts exactly as it would have. From the
measured rate it sets the run's length: ``max_steps`` (the steps that fit the budget, less a margin for
what the timed steps leave out: log steps, the online probe, checkpoints), ``epochs`` (enough to hold
them) and, when the warm-up was left to its default, ``warmup_epochs`` (10% of the run, at most 10
epochs). The warm-up and the cosine decay then end on the last step. The resolved values go into
``config.yaml`` and the checkpoint, so ``--resume`` keeps the same schedule instead of planning again.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from simclr.train.state import restore_rng, rng_state

TIMED_STEPS = 5
MARGIN = 0.95  # the loop's own costs beyond the timed steps (log steps, probe, checkpoints): a few percent


@dataclass(frozen=True)
class BudgetPlan:
    minutes: float
    steps_per_s: float
    max_steps: int
    epochs: int
    warmup_epochs: float

    def line(self, steps_per_epoch: int) -> str:
        return (f"time budget {self.minutes:g} min: {self.max_steps} steps ({self.max_steps / steps_per_epoch:.2f} "
                f"epochs of {steps_per_epoch}) at {self.steps_per_s:.2f} steps/s measured on {TIMED_STEPS} steps, "
                f"warm-up {self.warmup_epochs:.3g} epochs then cosine to the last step")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_rate(training: Any) -> float:  # noqa: ANN401 - a simclr.train.setup.Training
    """Steps per second of ``training``'s step on its first batches; its state is put back after."""
    model, opt, scaler, device = training.model, training.optimizer, training.scaler, training.device
    saved = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()), copy.deepcopy(scaler.state_dict()),
             rng_state(device), training.step.guard.state.clone(), training.step.overflows_reported)
    try:
        batches = itertools.chain.from_iterable(training.loader.batches(e) for e in itertools.count())
        training.step(next(batches), 0)  # warm-up (allocations, autotuning)
        _sync(device)
        start = time.perf_counter()
        for i in range(TIMED_STEPS):
            training.step(next(batches), 1 + i)
        _sync(device)
        return TIMED_STEPS / (time.perf_counter() - start)
    finally:
        model.load_state_dict(saved[0])
        opt.load_state_dict(saved[1])
        if scaler.is_enabled():
            scaler.load_state_dict(saved[2])
        restore_rng(saved[3], device)
        training.step.guard.state, training.step.overflows_reported = saved[4], saved[5]
        opt.zero_grad(set_to_none=True)


def plan_budget(minutes: float, steps_per_s: float, steps_per_epoch: int, warmup_epochs: float | None) -> BudgetPlan:
    """The run's length for ``minutes`` at ``steps_per_s``; ``warmup_epochs`` None: 10% of it, at most 10."""
    steps = max(1, math.floor(minutes * 60 * steps_per_s * MARGIN))
    epochs = math.ceil(steps / steps_per_epoch)
    warmup = warmup_epochs if warmup_epochs is not None else min(10.0, 0.1 * steps / steps_per_epoch)
    return BudgetPlan(minutes, steps_per_s, steps, epochs, warmup)


__all__ = ["MARGIN", "TIMED_STEPS", "BudgetPlan", "measure_rate", "plan_budget"]
