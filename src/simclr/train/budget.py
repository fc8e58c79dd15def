"""``--time-budget MINUTES``: a run whose schedule ends on time.

Before the first real step, ``plan_budget`` times a few training steps of the run itself (one warm-up,
then ``TIMED_STEPS``, on the run's own first batches) and puts every weight, optimiser state, BN
statistic and random generator back as it was, so the run then starts exactly as it would have. From the
measured rate it sets the run's length: ``max_steps`` (the steps that fit the budget, less a margin for
what the timed steps leave out: log steps, the online probe, checkpoints), ``epochs`` (enough to hold
them) and, when the warm-up was left to its default, ``warmup_epochs`` (10% of the run, at most 10
epochs). The warm-up and the cosine decay then end on the last step. The resolved values go into
``config.yaml`` and the checkpoint, so ``--resume`` keeps the same schedule instead of planning again.
The budget's clock starts with the command's run (``simclr.train.pretrain``), not with its loop: what
comes before the first step (the precision choice, loading the data, the timed steps; a minute on a
2-core machine that three runs share) is taken from the budget, so the command ends within it.

A few timed steps at the start misjudge the rate a run settles at (another process starting beside it,
caches still cold: 15-25% slow on a 2-core machine, so the run ended that much early), and a rate can
change during a run (a slow first few minutes cost a 20-minute run 3 of them). ``BudgetReplan`` therefore
measures the loop itself, over every tenth of the first plan's steps from its first log step (the rate of
those steps, log steps, probe and checkpoints included), and each time sets the run's end again: the steps
that fit what is left of ``MARGIN`` x the budget at the latest rate. It stops re-planning for the run's last
tenth. The warm-up keeps its length; past it, a re-plan pins the cosine where it stood (an anchor, see
``simclr.optim.cosine_progress``) and spreads the rest of it over the new end, so the learning rate stays
continuous. The new length and anchors go to ``config.yaml`` and later checkpoints; a resumed run follows
the plan its checkpoint holds and does not re-plan.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from simclr import distributed
from simclr.train.callbacks import Callback, LoopView, StepEvent
from simclr.train.state import restore_rng, rng_state

TIMED_STEPS = 5
MARGIN = 0.95  # the loop's own costs beyond the timed steps (log steps, probe, checkpoints): a few percent
REPLAN_AT = 0.1  # the loop's rate is measured when this fraction of the planned steps is done


@dataclass(frozen=True)
class BudgetPlan:
    minutes: float
    steps_per_s: float
    max_steps: int
    epochs: int
    warmup_epochs: float
    spent_s: float = 0.0

    def line(self, steps_per_epoch: int) -> str:
        return (f"time budget {self.minutes:g} min: {self.max_steps} steps ({self.max_steps / steps_per_epoch:.2f} "
                f"epochs of {steps_per_epoch}) at {self.steps_per_s:.2f} steps/s measured on {TIMED_STEPS} steps, "
                f"warm-up {self.warmup_epochs:.3g} epochs then cosine to the last step ({self.spent_s:.0f} s of the "
                "budget spent before the first step)")


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


def seconds_since(start: float) -> float:
    """The budget's clock: seconds since ``start``, a ``time.perf_counter()`` reading."""
    return time.perf_counter() - start


def plan_budget(minutes: float, steps_per_s: float, steps_per_epoch: int, warmup_epochs: float | None,
                spent_s: float = 0.0) -> BudgetPlan:
    """The run's length for ``minutes`` at ``steps_per_s``, ``spent_s`` of them gone before the first step
    (start-up, the timed steps); ``warmup_epochs`` None: 10% of it, at most 10."""
    steps = max(1, math.floor((minutes * 60 * MARGIN - spent_s) * steps_per_s))
    epochs = math.ceil(steps / steps_per_epoch)
    warmup = warmup_epochs if warmup_epochs is not None else min(10.0, 0.1 * steps / steps_per_epoch)
    return BudgetPlan(minutes, steps_per_s, steps, epochs, warmup, spent_s)


def replan_steps(minutes: float, elapsed_s: float, steps_done: int, steps_per_s: float) -> int:
    """The run's new length: the steps done plus those that fit in what is left of ``MARGIN`` x the budget
    at ``steps_per_s`` (at least one more). At the first plan's rate and on its schedule it is that plan."""
    left = minutes * 60 * MARGIN - elapsed_s
    return steps_done + max(1, math.floor(left * steps_per_s + 1e-9))


class BudgetReplan(Callback):
    """Sets a time-budget run's end again, every tenth of the plan, from the loop's own rate (module
    docstring). ``apply(max_steps, epochs, at_step)`` updates the run's config and schedule; this callback
    moves the loop's end."""

    def __init__(self, minutes: float, planned_steps: int, steps_per_epoch: int,
                 apply: Callable[[int, int, int], None], log: Any,  # noqa: ANN401 - a text stream
                 started: float | None = None) -> None:
        self.minutes, self.steps_per_epoch, self.apply, self.log = minutes, steps_per_epoch, apply, log
        self.window = max(2, math.ceil(REPLAN_AT * planned_steps))  # steps measured, from the last mark
        self.started = started  # the budget's clock started here (perf_counter); None: when the loop starts
        self.start = self.mark = 0.0
        self.mark_step: int | None = None

    def on_fit_start(self, trainer: LoopView) -> None:
        self.start = time.perf_counter() if self.started is None else self.started

    def measure(self, trainer: LoopView, event: StepEvent) -> tuple[float, float]:
        """(seconds since the budget's clock started, steps per second since the last mark)."""
        return event.time - self.start, (event.step - (self.mark_step or 0)) / max(event.time - self.mark, 1e-9)

    def on_step_end(self, trainer: LoopView, event: StepEvent) -> None:
        # log steps only: the device was read there, so their times are the work done (not just queued on a
        # GPU), and every rank sees the same log steps
        if not event.log or event.final:
            return
        if self.mark_step is None:  # the first log step: compilation and first allocations are behind
            self.mark_step, self.mark = event.step, event.time
            return
        if event.step < self.mark_step + self.window or trainer.stop_at - event.step < self.window:
            return  # not a tenth measured yet, or the run's last tenth: it runs out its plan
        elapsed, rate = distributed.broadcast_object(self.measure(trainer, event))  # rank 0's, on every rank
        first = self.mark_step
        self.mark_step, self.mark = event.step, event.time
        total = replan_steps(self.minutes, elapsed, event.step, rate)
        epochs = math.ceil(total / self.steps_per_epoch)
        if total != trainer.stop_at:
            print(f"time budget {self.minutes:g} min: {rate:.2f} steps/s measured on steps {first}-"
                  f"{event.step}: {total} steps instead of {trainer.stop_at} ({total / self.steps_per_epoch:.2f} "
                  f"epochs), the cosine now ends there", file=self.log)
            self.apply(total, epochs, event.step)
            trainer.stop_at, trainer.epochs = total, epochs


__all__ = ["MARGIN", "REPLAN_AT", "TIMED_STEPS", "BudgetPlan", "BudgetReplan", "measure_rate", "plan_budget",
           "replan_steps", "seconds_since"]
