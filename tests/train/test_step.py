"""One optimiser step: the finiteness guard's record and messages, and TrainStep's contract with a method."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from simclr.errors import SimCLRError
from simclr.methods.base import StepOutput
from simclr.train.step import FiniteGuard, TrainStep, grad_norm


def observe_all(guard: FiniteGuard, losses: list[float], grads: list[float] | None = None,
                inputs_bad_at: int | None = None) -> None:
    for step, value in enumerate(losses):
        g = torch.tensor(grads[step]) if grads is not None else None
        x = torch.ones(2, 3)
        if step == inputs_bad_at:
            x[1, 2] = float("nan")
        guard.observe(step, torch.tensor(value), g, (x, x.clone(), torch.tensor([1, 2])))


def test_the_guard_keeps_the_first_bad_step_and_the_last_finite_loss() -> None:
    guard = FiniteGuard(torch.device("cpu"), last_loss=7.0)
    assert guard.check() == 7.0  # a resumed run's last loss until a step reports one
    observe_all(guard, [3.0, 2.5, 2.0])
    assert guard.check() == 2.0
    observe_all(guard, [1.5, float("nan"), 1.0, float("inf")])  # steps 0..3 again: the first bad is step 1
    with pytest.raises(SimCLRError) as err:
        guard.check()
    message = str(err.value)
    assert "the loss became nan at step 1 (last finite loss 1.5000)" in message
    assert "try a lower --lr" in message and "input batch" not in message


def test_the_guard_tells_gradients_from_losses_and_bad_inputs() -> None:
    guard = FiniteGuard(torch.device("cpu"), where="run/checkpoint.pt")
    observe_all(guard, [3.0, 2.0, 1.0], grads=[1.0, math.inf, 1.0])
    with pytest.raises(SimCLRError, match=r"the gradients became inf at step 1 \(loss 2.0000, last finite loss "
                                          r"3.0000\).*kept in run/checkpoint.pt"):
        guard.check()
    guard = FiniteGuard(torch.device("cpu"))
    observe_all(guard, [3.0, float("nan")], inputs_bad_at=1)
    with pytest.raises(SimCLRError, match="at step 1 .*the input batch itself holds NaN or inf values"):
        guard.check()
    guard = FiniteGuard(torch.device("cpu"))
    observe_all(guard, [3.0, 2.0], inputs_bad_at=1)  # bad inputs but a finite loss: nothing to stop
    assert guard.check() == 2.0


def test_grad_norm_is_the_norm_of_every_gradient() -> None:
    a, b = nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2, 2))
    a.grad, b.grad = torch.tensor([1.0, 2.0, 2.0]), torch.full((2, 2), 2.0)
    assert float(grad_norm([a, b, nn.Parameter(torch.zeros(1))])) == pytest.approx(5.0)  # sqrt(9 + 16)
    assert grad_norm([nn.Parameter(torch.zeros(1))]) is None


class Quadratic:
    """loss = sum(w^2) / 2 (gradient w); with ``own_backward`` the method runs the backward itself."""

    def __init__(self, own_backward: bool) -> None:
        self.model = nn.Linear(2, 2, bias=False)
        self.own_backward = own_backward

    def training_step(self, batch: torch.Tensor) -> StepOutput:
        loss = self.model.weight.pow(2).sum() / 2
        if self.own_backward:
            loss.backward()
            return StepOutput(loss.detach(), backward_done=True)
        return StepOutput(loss)


@pytest.mark.parametrize("own_backward", [False, True])
def test_a_step_sets_the_lr_of_its_step_and_backpropagates_once(own_backward: bool) -> None:
    method = Quadratic(own_backward)
    w0 = method.model.weight.detach().clone()
    opt = torch.optim.SGD(method.model.parameters(), lr=123.0)
    step = TrainStep(method, opt, lambda s: 0.1 * (s + 1), torch.amp.GradScaler("cpu", enabled=False),
                     FiniteGuard(torch.device("cpu")))
    step(torch.zeros(1), 0)  # lr 0.1: w <- w - 0.1 w
    step(torch.zeros(1), 1)  # lr 0.2; the gradient of the first step was zeroed, not accumulated
    torch.testing.assert_close(method.model.weight.detach(), w0 * 0.9 * 0.8)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)
    assert step.guard.check() == pytest.approx(float((w0 * 0.9).pow(2).sum() / 2))
