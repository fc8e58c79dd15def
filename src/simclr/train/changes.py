"""What a ``--resume`` changes: every setting that differs from the checkpoint's, named (old -> new) with
what it does to the run; the changes a checkpoint cannot follow refused in one line.

A resumed run takes its own ``config.yaml`` and the flags given on top, so a difference is one the user
asked for; it is never silent. The model (any ``model`` key: the backbone, the method, the head) and the
image size cannot change under saved weights and optimiser state: refused. The rest is named with its
effect: the learning rate at the resume step (old schedule -> new, so a jump shows), the run's end, the
steps per epoch. Settings that change how a run is carried out, not what it computes (device, workers,
log and checkpoint cadence), and ``max_steps`` (a run stopped by it continues to its end unless it is
given again) pass without a word.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simclr.errors import SimCLRError

QUIET = {"train.device", "train.log_every", "train.checkpoint_every_steps", "train.save_every_epoch",
         "train.max_steps", "train.compile", "train.dist_backend", "data.workers", "data.data_dir"}
REFUSED_SECTIONS = ("model",)
REFUSED_KEYS = ("data.image_size",)


def differences(saved: dict[str, Any], now: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(``section.key``, old, new) for every key of the two configs' sections that differs; keys a
    checkpoint of an older version lacks cannot differ."""
    out = []
    for section, values in saved.items():
        if not isinstance(values, dict):
            continue
        for key, old in values.items():
            new = now.get(section, {}).get(key, old)
            if isinstance(old, list | tuple) and isinstance(new, list | tuple):
                old, new = list(old), list(new)
            if old != new:
                out.append((f"{section}.{key}", old, new))
    return out


def check_resume_changes(diffs: list[tuple[str, Any, Any]]) -> None:
    """Refuse, in one line, the changes a checkpoint cannot follow."""
    refused = [(k, a, b) for k, a, b in diffs if k.split(".")[0] in REFUSED_SECTIONS or k in REFUSED_KEYS]
    if refused:
        what = "; ".join(f"--{k.split('.')[1].replace('_', '-')} {a} -> {b}" for k, a, b in refused)
        raise SimCLRError(
            f"--resume cannot change the model or the image size under saved weights ({what}); "
            "resume with the run's own config.yaml (--config) or start a new --out"
        )


def describe_resume_changes(
    diffs: list[tuple[str, Any, Any]], step: int, lr_before: Callable[[int], float],
    lr_after: Callable[[int], float], end_before: int, end_after: int, per_epoch_before: int, per_epoch_after: int,
) -> list[str]:
    """One line per change a resume makes (``QUIET`` keys left out), then its effect on the schedule:
    the lr at ``step`` under the old and the new schedule, the run's last step, the steps per epoch."""
    named = [(k, a, b) for k, a, b in diffs if k not in QUIET]
    if not named:
        return []
    lines = [f"resume changes {k}: {a} -> {b}" for k, a, b in named]
    old_lr, new_lr = lr_before(step), lr_after(step)
    if abs(old_lr - new_lr) > 1e-12 * max(abs(old_lr), 1.0):
        lines.append(f"resume: the learning rate at step {step} goes from {old_lr:.4g} (the old schedule) to "
                     f"{new_lr:.4g}, following the new schedule from here")
    if end_before != end_after:
        lines.append(f"resume: the run now ends at step {end_after} (was {end_before})")
    if per_epoch_before != per_epoch_after:
        lines.append(f"resume: {per_epoch_after} steps per epoch (was {per_epoch_before}); the epoch in progress "
                     "is counted in the new steps")
    return lines


__all__ = ["QUIET", "check_resume_changes", "describe_resume_changes", "differences"]
