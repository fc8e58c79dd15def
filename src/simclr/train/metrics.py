"""Where training progress goes: metrics.jsonl, the experiment loggers, and the terminal."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO


def format_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class MetricsLog:
    """Appends one JSON object per log step to ``metrics.jsonl`` and hands it to the run's loggers
    (``simclr.train.loggers``: TensorBoard, CSV, wandb, mlflow), started already."""

    def __init__(self, run_dir: Path, resume_step: int | None = None, loggers: Sequence[Any] = ()) -> None:
        self.path = run_dir / "metrics.jsonl"
        if resume_step is not None and self.path.exists():
            # Drop records past the checkpoint: they will be logged again by the resumed run.
            kept = [
                line for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= resume_step
            ]
            self.path.write_text("".join(line + "\n" for line in kept))
        elif resume_step is None:
            self.path.write_text("")
        self._file: TextIO = self.path.open("a")
        self.loggers = list(loggers)

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        for logger in self.loggers:
            logger.log(record)

    def summary(self, values: dict[str, Any]) -> None:
        """The run's summary (its end: last step and loss, a classifier's scores) to every logger."""
        for logger in self.loggers:
            logger.summary(values)

    def close(self) -> None:
        self._file.close()
        for logger in self.loggers:
            logger.close()


# monitor values shown in the progress line when a record holds them: record key -> label
MONITORS = {"probe_acc": "probe", "knn_top1": "knn", "probe_test_top1": "probe_test"}
# what the methods log at every log step, in the order the line shows them (SimCLR / SupCon, fine-tuning, distillation)
STEP_LOGS = ("pos_acc", "train_acc", "agree")


class Progress:
    """A tqdm bar on a terminal, plain log lines otherwise."""

    def __init__(self, total: int, initial: int, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.start = time.perf_counter()
        self.start_step = initial
        self.bar = None
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, file=self.stream, unit="step", dynamic_ncols=True)

    def set_total(self, total: int) -> None:
        """The run's end moved (``--time-budget`` sets it again once the loop's rate is known)."""
        self.total = total
        if self.bar is not None:
            self.bar.total = total

    def update(self, step: int, record: dict[str, Any] | None) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            if record is not None:
                extra = {k: f"{record[k]:.3f}" for k in (*STEP_LOGS, *MONITORS) if k in record}
                self.bar.set_postfix(
                    loss=f"{record['loss']:.4f}", rank_h=f"{record.get('rank_h', float('nan')):.1f}",
                    lr=f"{record['lr']:.3g}", img_s=f"{record['images_per_s']:.0f}", **extra, refresh=False,
                )
            return
        if record is None:
            return
        elapsed = time.perf_counter() - self.start
        done = step - self.start_step
        eta = elapsed / done * (self.total - step) if done > 0 else float("nan")
        rank = f" rank_h {record['rank_h']:.1f}" if "rank_h" in record else ""
        monitors = "".join(f" {MONITORS[k]} {record[k]:.3f}" for k in MONITORS if k in record)
        method = "".join(f" {k} {record[k]:.3f}" for k in STEP_LOGS if k in record)
        print(
            f"step {step}/{self.total} epoch {record['epoch']:.2f} loss {record['loss']:.4f}"
            f"{method}{rank}{monitors} lr {record['lr']:.4g} "
            f"{record['images_per_s']:.0f} img/s eta {format_seconds(eta)}",
            file=self.stream, flush=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
