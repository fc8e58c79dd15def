"""One optimiser step of any method, with no read from the device back to the host.

``TrainStep`` sets the learning rate of the global step (a pure function of it), zeroes the
gradients, asks the method for its ``StepOutput``, runs the (scaled) backward unless the method ran
its own, and steps the optimiser. On a GPU the host can then queue the next step while this one runs:
the loss, the positive-pair accuracy and the finiteness checks stay on the device until a log step
reads them all at once (``read``), at most ``log_every`` steps later.

``FiniteGuard`` is that check: a few device-side ops per step record the first step whose loss or
gradients were not finite (and whether its input batch was), and the last finite loss. ``check``
reads them and raises the run's stop message; the loop calls it on log steps and before every
checkpoint, so a checkpoint on disk never holds weights that a non-finite step touched. Under fp16 it
also counts the steps the grad scaler skipped for overflowing gradients (the loop reports them after
its read). fp16 costs one host read per step all the same: torch's ``GradScaler.step`` reads its
overflow flag to decide whether to step the optimiser (its design, for any optimiser without a fused
scaler-aware step).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from simclr.errors import SimCLRError
from simclr.methods.base import Method, StepOutput

# FiniteGuard.state: first bad step (-1: none yet), kind (1 loss, 2 gradients), its inputs were not
# finite (0/1), the bad value (the loss, or the gradient norm), the loss of that step, the fp16 steps skipped
# for overflowing gradients (a count) and the last of them (-1: none), the last finite loss (always last)
_FIRST, _KIND, _INPUTS, _VALUE, _LOSS, _OVERFLOWS, _OVERFLOW_STEP, _LAST = range(8)


def _floating(batch: Any) -> Iterable[torch.Tensor]:
    items = batch if isinstance(batch, (tuple, list)) else (batch,)
    return [t for t in items if isinstance(t, torch.Tensor) and t.is_floating_point()]


class FiniteGuard:
    """Device-side record of the first non-finite loss or gradient (see the module docstring)."""

    def __init__(self, device: torch.device, last_loss: float = math.nan, where: str = "") -> None:
        self.state = torch.tensor([-1.0, 0.0, 0.0, math.nan, math.nan, 0.0, -1.0, last_loss], dtype=torch.float64,
                                  device=device)
        self.where = where  # the checkpoint kept, for the message

    def observe_overflow(self, step: int, grad_norm: torch.Tensor | None) -> None:
        """Count an fp16 step whose (unscaled) gradients were not finite: the grad scaler skips it."""
        if grad_norm is None:
            return
        s = self.state
        bad = ~torch.isfinite(grad_norm.detach())
        count = s[_OVERFLOWS] + bad.to(torch.float64)
        last = torch.where(bad, s.new_full((), float(step)), s[_OVERFLOW_STEP])
        self.state = torch.cat([s[:_OVERFLOWS], torch.stack([count, last]), s[_LAST:]])

    @staticmethod
    def overflows(values: list[float]) -> tuple[int, int]:
        """(fp16 steps skipped so far, the last of them) from the guard's state as read."""
        return int(values[_OVERFLOWS]), int(values[_OVERFLOW_STEP])

    def observe(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor | None, batch: Any) -> None:
        s = self.state
        loss_d = loss.detach().to(torch.float64)
        loss_ok = torch.isfinite(loss_d)
        grad_d = grad_norm.detach().to(torch.float64) if grad_norm is not None else torch.zeros_like(loss_d)
        ok = loss_ok & torch.isfinite(grad_d)
        inputs_ok = torch.ones_like(loss_ok)
        for t in _floating(batch):
            inputs_ok = inputs_ok & torch.isfinite(t).all()
        no_bad_yet = s[_FIRST] < 0
        fresh = no_bad_yet & ~ok
        candidate = torch.stack([
            loss_d.new_full((), float(step)), torch.where(loss_ok, 2.0, 1.0).to(torch.float64),
            (~inputs_ok).to(torch.float64), torch.where(loss_ok, grad_d, loss_d), loss_d, s[_OVERFLOWS],
            s[_OVERFLOW_STEP], s[_LAST],
        ])
        s = torch.where(fresh, candidate, s)
        self.state = torch.cat([s[:_LAST], torch.where(ok & no_bad_yet, loss_d, s[_LAST]).view(1)])

    @staticmethod
    def message(values: list[float], where: str) -> str | None:
        """The stop message for the guard's state as read (``values``), or None while all is finite."""
        if values[_FIRST] < 0:
            return None
        step, last = int(values[_FIRST]), values[_LAST]
        keep = f"The last good checkpoint is kept in {where}"
        if values[_KIND] == 1:
            advice = ("the input batch itself holds NaN or inf values: check the data. " if values[_INPUTS]
                      else "try a lower --lr, --precision fp32, or check the data. ")
            return f"the loss became {values[_VALUE]} at step {step} (last finite loss {last:.4f}); {advice}{keep}"
        return (f"the gradients became {values[_VALUE]} at step {step} (loss {values[_LOSS]:.4f}, last finite "
                f"loss {last:.4f}); try a lower --lr, --precision fp32, or check the data. {keep}")

    def check(self) -> float:
        """Read the guard (one host read); raise the stop message if a step was not finite, else return
        the last finite loss."""
        values = self.state.tolist()
        message = self.message(values, self.where)
        if message is not None:
            raise SimCLRError(message)
        return values[_LAST]


def grad_norm(params: Iterable[torch.Tensor]) -> torch.Tensor | None:
    """The L2 norm of all gradients, on the device (inf or nan when any gradient is not finite)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return None
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


class TrainStep:
    """``step(batch, global_step) -> StepOutput``: one optimiser step of ``method`` (module docstring).

    Args:
        method: the objective (``training_step``).
        optimizer: over ``method.model``'s parameters.
        lr_at: the learning rate of a global step (0-based).
        scaler: the fp16 gradient scaler (disabled otherwise).
        guard: the finiteness record (and the count of fp16 steps the scaler skipped).
        on_overflow: told, after a log step's read, of fp16 steps the scaler skipped since the last one:
            (the last such step, the loss scale now, how many).
    """

    def __init__(
        self,
        method: Method,
        optimizer: torch.optim.Optimizer,
        lr_at: Callable[[int], float],
        scaler: torch.amp.GradScaler,
        guard: FiniteGuard,
        on_overflow: Callable[[int, float, int], None] | None = None,
    ) -> None:
        self.method, self.optimizer, self.lr_at = method, optimizer, lr_at
        self.scaler, self.guard, self.on_overflow = scaler, guard, on_overflow
        self.params = [p for p in method.model.parameters() if p.requires_grad]
        # the hook is optional: any object with ``model`` and ``training_step`` is a method the loop runs
        self.after_step: Callable[[int], None] | None = getattr(method, "after_optimizer_step", None)
        self.overflows_reported = 0

    def __call__(self, batch: Any, step: int) -> StepOutput:
        lr = self.lr_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        out = self.method.training_step(batch)
        if not out.backward_done:
            self.scaler.scale(out.loss).backward()
        if self.scaler.is_enabled():
            # fp16: the scaler skips a step whose gradients overflowed. Unscaled first (no host read), the
            # gradients' norm tells the guard, on the device, whether this one did; the scaler's own step
            # then reads its overflow flag (GradScaler's one host read per step)
            self.scaler.unscale_(self.optimizer)
            self.guard.observe(step, out.loss, None, batch)
            self.guard.observe_overflow(step, grad_norm(self.params))
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.guard.observe(step, out.loss, grad_norm(self.params), batch)
            self.optimizer.step()
        if self.after_step is not None:
            self.after_step(step)
        return out

    def report_overflows(self, guard_values: list[float]) -> None:
        """Tell ``on_overflow`` of the fp16 steps skipped since the last report (``guard_values``: the
        guard's state as a log step read it). Only then is the loss scale read (one more host read)."""
        count, last = self.guard.overflows(guard_values)
        if count > self.overflows_reported and self.on_overflow is not None:
            self.on_overflow(last, self.scaler.get_scale(), count - self.overflows_reported)
        self.overflows_reported = count


__all__ = ["FiniteGuard", "TrainStep", "grad_norm"]
