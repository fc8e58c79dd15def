"""``--resume`` names what it changes (old -> new, and the learning rate's jump) and refuses what a
checkpoint cannot follow."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from helpers import tiny_config

from simclr import pretrain
from simclr.errors import SimCLRError
from simclr.train.changes import QUIET, check_resume_changes, describe_resume_changes, differences


def test_differences_and_refusals() -> None:
    saved = {"model": {"arch": "resnet18", "head": "mlp"}, "optim": {"lr": 0.3}, "data": {"image_size": 32},
             "augment": {"crop_scale": [0.08, 1.0]}}
    now = {"model": {"arch": "resnet18", "head": "mlp", "new_key": 1}, "optim": {"lr": 0.6},
           "data": {"image_size": 32}, "augment": {"crop_scale": (0.08, 1.0)}}
    assert differences(saved, now) == [("optim.lr", 0.3, 0.6)]  # a tuple equals its list; new keys cannot differ
    check_resume_changes(differences(saved, now))
    for key, section, value in (("arch", "model", "resnet50"), ("image_size", "data", 64)):
        changed = {**now, section: {**now[section], key: value}}
        with pytest.raises(SimCLRError, match=f"--{key.replace('_', '-')} .* -> {value}"):
            check_resume_changes(differences(saved, changed))


def test_describe_names_each_change_and_the_lr_jump() -> None:
    diffs = [("optim.lr", 0.3, 0.6), ("train.device", "cpu", "cuda")]
    lines = describe_resume_changes(diffs, 10, lambda s: 0.1, lambda s: 0.2, 100, 100, 5, 5)
    assert lines == ["resume changes optim.lr: 0.3 -> 0.6",
                     "resume: the learning rate at step 10 goes from 0.1 (the old schedule) to 0.2, following the "
                     "new schedule from here"]
    assert "train.device" in QUIET
    assert describe_resume_changes([("train.log_every", 1, 5)], 3, abs, abs, 6, 6, 3, 3) == []


def test_a_resume_that_changes_the_schedule_says_so(tmp_path: Path) -> None:
    run = tmp_path / "run"
    pretrain(tiny_config(**{"train.max_steps": 3}), run)  # 2 epochs of 3 steps planned, stopped after 3
    log = io.StringIO()
    pretrain(tiny_config(**{"train.epochs": 4, "optim.lr": 0.2}), run, resume=True, log=log)
    text = log.getvalue()
    assert "resume changes train.epochs: 2 -> 4" in text
    assert "resume changes optim.lr: None -> 0.2" in text
    # the literal schedule at step 3 (0-based): warm-up 0.5 epoch = 2 steps, then cosine to the end
    def cosine(peak: float, total: int) -> float:
        return peak * 0.5 * (1 + math.cos(math.pi * (3 - 2) / (total - 2)))

    old_peak = 0.3 * 32 / 256  # LARS 0.3 x B/256
    assert (f"the learning rate at step 3 goes from {cosine(old_peak, 6):.4g} (the old schedule) to "
            f"{cosine(0.2, 12):.4g}") in text
    assert "the run now ends at step 12 (was 3)" in text  # the first part planned to stop at --max-steps 3


def test_a_plain_resume_says_nothing_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    pretrain(tiny_config(**{"train.max_steps": 3}), run)
    with pytest.raises(SimCLRError, match="--image-size 16 -> 24"):
        pretrain(tiny_config(**{"data.image_size": 24}), run, resume=True)
    log = io.StringIO()
    pretrain(tiny_config(), run, resume=True, log=log)
    assert "resume changes" not in log.getvalue() and "resume:" not in log.getvalue()
