"""One optimiser step of any method, with no read from the device back to the host.

``TrainStep`` sets the learning rate of the global step (a pure function of it), zeroes the
gradients, asks the method for its ``StepOutput``, runs the (scaled) backward unless the method ran
its own, and steps the optimiser. On a GPU the host can then queue the next step while this one runs:
the loss, the positive-pair accuracy and the finiteness checks stay on the device until a log step
reads them all at once (``read``), at most ``log_every`` steps later.

``FiniteGuard`` is that check: a few device-side ops per step record the first step whose loss or
gradients were not finite (and whether its input batch was), and the last finite loss. ``check``
reads them and raises the run's stop message; the loop calls it on log steps and before every
checkpoint, so a checkpoint on disk never holds weights that a non-finite step touched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from simclr.errors import SimCLRError
from simclr.methods.base import Method, StepOutput

# FiniteGuard.state: first bad step (-1: none yet), kind (1 loss, 2 gradients), its inputs were not
# finite (0/1), the bad value (the loss, or the gradient norm), the loss of that step, the last finite loss
_FIRST, _KIND, _INPUTS, _VALUE, _LOSS, _LAST = range(6)


def _floating(batch: Any) -> Iterable[torch.Tensor]:
    items = batch if isinstance(batch, (tuple, list)) else (batch,)
    return [t for t in items if isinstance(t, torch.Tensor) and t.is_floating_point()]


class FiniteGuard:
    """Device-side record of the first non-finite loss or gradient (see the module docstring)."""

    def __init__(self, device: torch.device, last_loss: float = math.nan, where: str = "") -> None:
        self.state = torch.tensor([-1.0, 0.0, 0.0, math.nan, math.nan, last_loss], dtype=torch.float64, device=device)
        self.where = where  # the checkpoint kept, for the message

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
            (~inputs_ok).to(torch.float64), torch.where(loss_ok, grad_d, loss_d), loss_d, s[_LAST],
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
        guard: the finiteness record.
        on_overflow: told of each fp16 step the scaler skipped: (step, the new loss scale).
    """

    def __init__(
        self,
        method: Method,
        optimizer: torch.optim.Optimizer,
        lr_at: Callable[[int], float],
        scaler: torch.amp.GradScaler,
        guard: FiniteGuard,
        on_overflow: Callable[[int, float], None] | None = None,
    ) -> None:
        self.method, self.optimizer, self.lr_at = method, optimizer, lr_at
        self.scaler, self.guard, self.on_overflow = scaler, guard, on_overflow
        self.params = [p for p in method.model.parameters() if p.requires_grad]

    def __call__(self, batch: Any, step: int) -> StepOutput:
        lr = self.lr_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        out = self.method.training_step(batch)
        if not out.backward_done:
            self.scaler.scale(out.loss).backward()
        if self.scaler.is_enabled():
            # fp16: the scaler skips a step whose gradients overflowed; torch's GradScaler reads its
            # overflow flag on the host every step (its own design), and so does the report below
            self.guard.observe(step, out.loss, None, batch)
            scale_before = self.scaler.get_scale()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.scaler.get_scale() < scale_before and self.on_overflow is not None:
                self.on_overflow(step, self.scaler.get_scale())
        else:
            self.guard.observe(step, out.loss, grad_norm(self.params), batch)
            self.optimizer.step()
        return out


__all__ = ["FiniteGuard", "TrainStep", "grad_norm"]
