"""``--time-budget``: the plan's arithmetic, a timing that leaves no trace, a schedule that ends on the
planned step, and a resume that keeps the plan."""

from __future__ import annotations

import importlib
import math
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from helpers import losses, records, tiny_config

from simclr import pretrain
from simclr.errors import SimCLRError
from simclr.train import budget
from simclr.train.callbacks import Callback

pretrain_module = importlib.import_module("simclr.train.pretrain")
RATE = 2.0  # steps/s the planner is told: 0.25 min -> floor(15 * 2 * 0.95) = 28 steps


def test_plan_budget_closed_form() -> None:
    plan = budget.plan_budget(20, 3.0, 234, None)
    assert plan.max_steps == math.floor(20 * 60 * 3.0 * budget.MARGIN) == 3420
    assert plan.epochs == math.ceil(3420 / 234) == 15
    assert plan.warmup_epochs == pytest.approx(0.1 * 3420 / 234)
    assert budget.plan_budget(600, 10.0, 100, None).warmup_epochs == 10.0  # at most 10 epochs
    assert budget.plan_budget(20, 3.0, 234, 2.5).warmup_epochs == 2.5  # an explicit warm-up is kept
    assert budget.plan_budget(0.001, 0.1, 50, None).max_steps == 1
    # a minute gone before the first step (start-up, the timed steps) is a minute less to train
    assert budget.plan_budget(20, 3.0, 234, None, spent_s=60.0).max_steps == math.floor((20 * 60 * 0.95 - 60) * 3.0)


def test_the_budget_clock_starts_before_the_loop() -> None:
    """The re-plans measure time from the budget's start (the command's), not from the loop's first step."""
    from types import SimpleNamespace

    def at(step: int, t: float) -> SimpleNamespace:
        return SimpleNamespace(step=step, time=t)

    replan = budget.BudgetReplan(20, 100, 10, lambda *a: None, None, started=100.0)
    replan.on_fit_start(None)  # the loop starts 30 s after the budget's clock did
    replan.mark_step, replan.mark = 10, 135.0
    assert replan.measure(None, at(20, 140.0)) == (40.0, pytest.approx(2.0))
    loop_clock = budget.BudgetReplan(20, 100, 10, lambda *a: None, None)
    loop_clock.on_fit_start(None)
    assert loop_clock.measure(None, at(0, loop_clock.start + 7.0))[0] == pytest.approx(7.0)


def _fixed_rate(monkeypatch: pytest.MonkeyPatch, *, time_it: bool) -> list[int]:
    """The planner sees RATE; with ``time_it`` the real timing still runs (its steps then must leave no
    trace). Returns a list that counts the timings."""
    calls: list[int] = []

    def rate(training) -> float:  # noqa: ANN001
        calls.append(1)
        if time_it:
            budget.measure_rate(training)
        return RATE

    monkeypatch.setattr(pretrain_module, "measure_rate", rate)
    monkeypatch.setattr(pretrain_module, "seconds_since", lambda started: 0.0)  # start-up takes no time here
    # the loop's own rate, measured again at a tenth of the run, is RATE too: the plan stands
    monkeypatch.setattr(budget.BudgetReplan, "measure", lambda self, trainer, event: (event.step / RATE, RATE))
    return calls


def test_the_timing_steps_leave_no_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = {"train.time_budget": 0.25, "train.epochs": 100}
    _fixed_rate(monkeypatch, time_it=True)
    pretrain(tiny_config(**cfg), tmp_path / "timed")
    _fixed_rate(monkeypatch, time_it=False)
    pretrain(tiny_config(**cfg), tmp_path / "untimed")
    a, b = losses(tmp_path / "timed"), losses(tmp_path / "untimed")
    assert len(a) == 28
    assert a == b  # bit for bit: weights, optimiser, BN statistics and generators were put back


def test_the_schedule_ends_on_the_planned_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fixed_rate(monkeypatch, time_it=False)
    run = tmp_path / "run"
    result = pretrain(tiny_config(**{"train.time_budget": 0.25, "train.epochs": 100, "optim.warmup_epochs": None}),
                      run)
    assert result.step == 28  # 9 epochs of 3 steps and one step of the tenth
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["train"]["max_steps"], saved["train"]["epochs"], saved["train"]["time_budget"]) == (28, 10, 0.25)
    assert saved["optim"]["warmup_epochs"] == pytest.approx(0.1 * 28 / 3)
    lrs = [r["lr"] for r in records(run)]
    peak, warm = max(lrs), round(0.1 * 28)  # the warm-up: 10% of the planned steps
    for step, lr in enumerate(lrs):  # step (0-based) of 28: linear to the peak, then the cosine ends at step 28
        want = peak * step / warm if step < warm else peak * 0.5 * (1 + math.cos(math.pi * (step - warm) / (28 - warm)))
        assert lr == pytest.approx(want, rel=1e-6, abs=1e-12), step
    assert lrs[-1] < 0.005 * peak  # the last step (27 of 28) is one step before the cosine's zero


def test_replan_steps_closed_form() -> None:
    assert budget.replan_steps(20, 120.0, 300, 3.0) == 300 + math.floor((20 * 60 * budget.MARGIN - 120) * 3.0)
    for steps in (1, 7, 50, 300):  # at the first plan's rate, on its schedule: the first plan
        assert budget.replan_steps(20, steps / 3.0, steps, 3.0) == budget.plan_budget(20, 3.0, 234, None).max_steps
    assert budget.replan_steps(1, 100.0, 40, 3.0) == 41  # past the budget already: one more step, then the end


def _clock(monkeypatch: pytest.MonkeyPatch, seconds_at: Callable[[int], float]) -> None:
    """The loop's re-plans see this clock: ``seconds_at(step)`` since the loop started, the rate over the steps
    since the callback's last mark."""
    def measure(self: budget.BudgetReplan, trainer, event) -> tuple[float, float]:  # noqa: ANN001
        mark = self.mark_step or 0
        return seconds_at(event.step), (event.step - mark) / (seconds_at(event.step) - seconds_at(mark))

    monkeypatch.setattr(budget.BudgetReplan, "measure", measure)


def _lr(step: int, peak: float, warm: int, points: list[tuple[int, float]]) -> float:
    """A literal warm-up + cosine whose progress runs linearly through ``points`` [(step, progress)]."""
    if step < warm:
        return peak * step / warm
    for (s0, t0), (s1, t1) in zip(points, points[1:], strict=False):
        if s0 <= step < s1:
            return peak * 0.5 * (1 + math.cos(math.pi * (t0 + (t1 - t0) * (step - s0) / (s1 - s0))))
    raise AssertionError(step)


def test_the_run_is_replanned_from_the_loop_rate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    """The timed steps said RATE; the loop runs at twice that: measured over a tenth of the planned
    28 steps from the first log step (steps 1-4: every step is a log step here) the end moves to 4 + (14.25 - 2)
    x 4 = 53, the cosine with it from where it stood at step 4 (an anchor: the lr stays continuous), the
    warm-up unchanged; the later re-plans, at the same rate, keep 53; config.yaml says so, and a resume after
    that keeps it."""
    _fixed_rate(monkeypatch, time_it=False)
    _clock(monkeypatch, lambda step: 2 + (step - 4) / (2 * RATE))  # 2 s at step 4, as the timed steps said
    cfg = {"train.time_budget": 0.25, "train.epochs": 100, "optim.warmup_epochs": None}
    run = tmp_path / "run"
    result = pretrain(tiny_config(**cfg), run)
    assert result.step == 53
    err = capsys.readouterr().err
    assert "4.00 steps/s measured on steps 1-4: 53 steps instead of 28" in err
    assert err.count("steps instead of") == 1  # re-measured every 3 steps, the same end each time
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["train"]["max_steps"], saved["train"]["epochs"]) == (53, 18)
    assert saved["train"]["schedule_anchors"] == [[4, pytest.approx(1 / 25)]]  # step 4 was 1/25 down the cosine
    assert saved["optim"]["warmup_epochs"] == pytest.approx(0.1 * 28 / 3)  # the warm-up keeps its length
    lrs = [r["lr"] for r in records(run)]
    peak, warm = max(lrs), 3
    for step, lr in enumerate(lrs):  # steps 0-3 ran before the re-plan (the warm-up and step 3 on the first
        # cosine, to 28); from step 4, the rest of the cosine (from 1/25) to 53
        points = [(3, 0.0), (28, 1.0)] if step < 4 else [(3, 0.0), (4, 1 / 25), (53, 1.0)]
        assert lr == pytest.approx(_lr(step, peak, warm, points), rel=1e-6, abs=1e-12), step
    part = tmp_path / "part"
    first = pretrain(tiny_config(**cfg), part, callbacks=[StopAt(20)])
    assert first.interrupted and 20 <= first.step < 53
    pretrain(tiny_config(**cfg), part, resume=True)
    a, b = losses(run), losses(part)
    assert [s for s, _ in a] == [s for s, _ in b] == list(range(1, 54))
    for (_, la), (_, lb) in zip(a, b, strict=True):
        assert lb == pytest.approx(la, rel=1e-4)


def test_a_slowdown_mid_run_is_replanned_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    """The loop runs at 4 steps/s to step 10, then at 1: the re-plan at step 4 moves the end to 4 + (14.25 - 1) x
    4 = 57, those at 7 and 10 keep it, the one at 13 (3 steps in 3 s) moves it to 13 + floor(14.25 - 5.5) = 21;
    from step 19 (the last tenth) no more. Each move anchors the cosine where it stood: the lr is continuous
    and follows the literal piecewise schedule; a resume after the second move follows both anchors."""
    _fixed_rate(monkeypatch, time_it=False)
    _clock(monkeypatch, lambda step: step / 4 if step <= 10 else 2.5 + (step - 10))
    cfg = {"train.time_budget": 0.25, "train.epochs": 100, "optim.warmup_epochs": None}
    run = tmp_path / "run"
    assert pretrain(tiny_config(**cfg), run).step == 21
    err = capsys.readouterr().err
    assert "4.00 steps/s measured on steps 1-4: 57 steps instead of 28" in err
    assert "1.00 steps/s measured on steps 10-13: 21 steps instead of 57" in err
    t13 = 1 / 25 + (1 - 1 / 25) * 9 / 53  # where step 13 stood on the cosine of the plan to 57
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["train"]["max_steps"], saved["train"]["epochs"]) == (21, 7)
    assert saved["train"]["schedule_anchors"] == [[4, pytest.approx(1 / 25)], [13, pytest.approx(t13)]]
    lrs = [r["lr"] for r in records(run)]
    peak, warm = max(lrs), 3
    plans = {0: [(3, 0.0), (28, 1.0)], 4: [(3, 0.0), (4, 1 / 25), (57, 1.0)],
             13: [(3, 0.0), (4, 1 / 25), (13, t13), (21, 1.0)]}
    for step, lr in enumerate(lrs):  # each step on the plan in force when it ran
        points = plans[max(k for k in plans if k <= step)]
        assert lr == pytest.approx(_lr(step, peak, warm, points), rel=1e-6, abs=1e-12), step
    for at in (4, 13):  # continuous where the end moved: the new plan gives the step the old plan's lr
        old, new = plans[max(k for k in plans if k < at)], plans[at]
        assert _lr(at, peak, warm, new) == pytest.approx(_lr(at, peak, warm, old), rel=1e-12)
    part = tmp_path / "part"
    first = pretrain(tiny_config(**cfg), part, callbacks=[StopAt(15)])
    assert first.interrupted and 15 <= first.step < 21
    pretrain(tiny_config(**cfg), part, resume=True)
    a, b = losses(run), losses(part)
    assert [s for s, _ in a] == [s for s, _ in b] == list(range(1, 22))
    for (_, la), (_, lb) in zip(a, b, strict=True):
        assert lb == pytest.approx(la, rel=1e-4)


class StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, event) -> None:  # noqa: ANN001
        if event.step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def test_resume_keeps_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = {"train.time_budget": 0.25, "train.epochs": 100}
    calls = _fixed_rate(monkeypatch, time_it=False)
    pretrain(tiny_config(**cfg), tmp_path / "full")
    part = tmp_path / "part"
    first = pretrain(tiny_config(**cfg), part, callbacks=[StopAt(10)])
    assert first.interrupted and 10 <= first.step < 28  # the signal is seen at the next step
    calls.clear()
    pretrain(tiny_config(**cfg), part, resume=True)
    assert calls == []  # no new timing: the saved plan is followed
    a, b = losses(tmp_path / "full"), losses(part)
    assert [s for s, _ in a] == [s for s, _ in b] == list(range(1, 29))
    for (_, la), (_, lb) in zip(a, b, strict=True):
        assert lb == pytest.approx(la, rel=1e-4)


def test_time_before_the_first_step_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture) -> None:
    """5 s pass before the first step (the data, the timed steps): the plan is the steps of the 14.25 s
    left less those 5 at RATE, floor(9.25 x 2) = 18, not 28; the re-plans, on the same clock, keep it."""
    _fixed_rate(monkeypatch, time_it=False)
    monkeypatch.setattr(pretrain_module, "seconds_since", lambda started: 5.0)
    _clock(monkeypatch, lambda step: 5.0 + step / RATE)
    run = tmp_path / "run"
    assert pretrain(tiny_config(**{"train.time_budget": 0.25, "train.epochs": 100}), run).step == 18
    out = capsys.readouterr()
    assert "time budget 0.25 min: 18 steps" in out.err and "(5 s of the budget spent before the first step)" in out.err
    assert "steps instead of" not in out.err


def test_a_slow_start_up_is_taken_from_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real clock, nothing measured for it: data that take 3 s to load leave a 6 s budget 3 s of training;
    the whole command ends within the budget (and a margin for the last step and the saves), not 3 s after."""
    import time

    slow, load = 3.0, pretrain_module.load_images

    def slow_load(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        time.sleep(slow)
        return load(*args, **kwargs)

    monkeypatch.setattr(pretrain_module, "load_images", slow_load)
    start = time.perf_counter()
    result = pretrain(tiny_config(**{"train.time_budget": 0.1, "train.epochs": 1000}), tmp_path / "run")
    wall = time.perf_counter() - start
    assert result.step >= 1 and slow < wall < 0.1 * 60 + 1.5, wall


def test_a_bad_budget_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SimCLRError, match="--time-budget must be > 0"):
        pretrain(tiny_config(**{"train.time_budget": 0}), tmp_path / "run")
    # the plan would overwrite --max-steps without a word: refused before the run directory exists
    with pytest.raises(SimCLRError, match="--max-steps 5 and --time-budget 0.25: choose one"):
        pretrain(tiny_config(**{"train.time_budget": 0.25, "train.max_steps": 5}), tmp_path / "both")
    assert not (tmp_path / "both").exists()


def test_the_plan_is_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    _fixed_rate(monkeypatch, time_it=False)
    pretrain(tiny_config(**{"train.time_budget": 0.25, "train.epochs": 100}), tmp_path / "run")
    out = capsys.readouterr()
    assert "time budget 0.25 min: 28 steps (9.33 epochs of 3) at 2.00 steps/s" in out.out + out.err
