"""Experiment loggers: ``--logger tensorboard,csv,wandb,mlflow`` (any of them, comma-separated).

Each logs what ``metrics.jsonl`` logs (every record's numbers, at its step), the run's configuration
when the run starts, and its summary when it ends (the last step and loss, a fine-tuned classifier's
test top-1 / top-5): ``start``, ``log``, ``summary``, ``close``. ``metrics.jsonl`` is always written;
``--logger auto`` (the default) adds TensorBoard when it is installed, as before; ``none`` adds nothing.

- ``tensorboard``: RUN/tensorboard (scalars under ``pretrain/`` for every command, as before; the config
  as text, the summary under ``final/``); a resumed run purges the steps after its checkpoint.
- ``csv``: RUN/metrics.csv, one row a record, a column a name (the header grows as names appear);
  a resumed run drops the rows after its checkpoint.
- ``wandb`` (``pip install 'simclr[wandb]'``): a run in RUN/wandb, its id kept in RUN/wandb-id.txt so
  ``--resume`` continues the same run; ``WANDB_MODE=offline`` works without an account, and
  ``WANDB_PROJECT`` names the project (default ``simclr``).
- ``mlflow`` (``pip install 'simclr[mlflow]'``): a run in ``$MLFLOW_TRACKING_URI`` (default: the local
  store RUN/mlruns), the config as flattened params, its id kept in RUN/mlflow-id.txt for ``--resume``.

Only rank 0 logs.
"""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, Protocol

import yaml

from simclr.config.resolve import check_loggers
from simclr.config.schema import LOGGER_NAMES
from simclr.errors import SimCLRError


class Logger(Protocol):
    def start(self, run_dir: Path, config: dict[str, Any], resume_step: int | None) -> None: ...

    def log(self, record: dict[str, Any]) -> None: ...

    def summary(self, values: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def numbers(record: dict[str, Any]) -> dict[str, float]:
    """The record's numbers but step and epoch (what a logger plots against the step)."""
    return {k: float(v) for k, v in record.items()
            if k not in ("step", "epoch") and isinstance(v, (int, float)) and not isinstance(v, bool)}


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"seed": 0}}`` -> ``{"train.seed": 0}``."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _kept_id(run_dir: Path, name: str, resume_step: int | None) -> str | None:
    path = run_dir / f"{name}-id.txt"
    return path.read_text().strip() if resume_step is not None and path.is_file() else None


class TensorBoardLogger:
    def __init__(self) -> None:
        self.writer: Any = None

    def start(self, run_dir: Path, config: dict[str, Any], resume_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # events after the checkpoint's step go (the resumed run logs them again); the checkpoint's own stays
        self.writer = SummaryWriter(str(run_dir / "tensorboard"),
                                    purge_step=None if resume_step is None else resume_step + 1)
        self.writer.add_text("config", "```\n" + yaml.safe_dump(config, sort_keys=False) + "```")

    def log(self, record: dict[str, Any]) -> None:
        for k, v in numbers(record).items():
            self.writer.add_scalar(f"pretrain/{k}", v, record["step"])  # the tag runs have always had

    def summary(self, values: dict[str, Any]) -> None:
        step = int(values.get("step", 0))
        for k, v in numbers(values).items():
            self.writer.add_scalar(f"final/{k}", v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class CSVLogger:
    """RUN/metrics.csv: the header grows as names appear (the file is rewritten then, else appended)."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.columns: list[str] = []
        self.rows: list[dict[str, Any]] = []

    def start(self, run_dir: Path, config: dict[str, Any], resume_step: int | None) -> None:
        self.path = run_dir / "metrics.csv"
        if resume_step is not None and self.path.is_file():
            with self.path.open(newline="") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or [])
                self.rows = [r for r in reader if r.get("step") and int(float(r["step"])) <= resume_step]
        self._rewrite()

    def _rewrite(self) -> None:
        assert self.path is not None
        buf = io.StringIO()
        writer = csv.DictWriter(buf, self.columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows)
        tmp = self.path.with_suffix(".csv.tmp")
        tmp.write_text(buf.getvalue())
        os.replace(tmp, self.path)

    def log(self, record: dict[str, Any]) -> None:
        row = {k: v for k, v in record.items() if isinstance(v, (int, float, str))}
        self.rows.append(row)
        new = [k for k in row if k not in self.columns]
        if new or not self.columns:
            self.columns += new
            self._rewrite()
            return
        assert self.path is not None
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.columns, extrasaction="ignore").writerow(row)

    def summary(self, values: dict[str, Any]) -> None:
        if self.path is not None:
            (self.path.parent / "summary.json").write_text(json.dumps(values, indent=2) + "\n")

    def close(self) -> None:
        pass


class WandbLogger:
    def __init__(self) -> None:
        self.run: Any = None

    def start(self, run_dir: Path, config: dict[str, Any], resume_step: int | None) -> None:
        try:
            import wandb
        except ImportError:
            raise SimCLRError("--logger wandb needs wandb: pip install 'simclr[wandb]'") from None
        run_id = _kept_id(run_dir, "wandb", resume_step)
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "simclr"), dir=str(run_dir), config=config,
                              id=run_id, resume="allow" if run_id else None, name=run_dir.name)
        (run_dir / "wandb-id.txt").write_text(self.run.id + "\n")

    def log(self, record: dict[str, Any]) -> None:
        self.run.log(numbers(record), step=int(record["step"]))

    def summary(self, values: dict[str, Any]) -> None:
        self.run.summary.update({f"final/{k}": v for k, v in numbers(values).items()})

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()


class MlflowLogger:
    def __init__(self) -> None:
        self.mlflow: Any = None
        self.run_id: str | None = None

    def start(self, run_dir: Path, config: dict[str, Any], resume_step: int | None) -> None:
        try:
            import mlflow
        except ImportError:
            raise SimCLRError("--logger mlflow needs mlflow: pip install 'simclr[mlflow]'") from None
        self.mlflow = mlflow
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            # the local file store, which needs no server or database (mlflow 3 keeps it in maintenance: asked
            # for explicitly); set MLFLOW_TRACKING_URI for a server or a database instead
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            mlflow.set_tracking_uri((run_dir / "mlruns").resolve().as_uri())
        run_id = _kept_id(run_dir, "mlflow", resume_step)
        run = mlflow.start_run(run_id=run_id, run_name=None if run_id else run_dir.name)
        self.run_id = run.info.run_id
        (run_dir / "mlflow-id.txt").write_text(self.run_id + "\n")
        if run_id is None:
            mlflow.log_params({k: json.dumps(v) if isinstance(v, (list, dict)) else v
                               for k, v in flatten(config).items()})

    def log(self, record: dict[str, Any]) -> None:
        self.mlflow.log_metrics(numbers(record), step=int(record["step"]))

    def summary(self, values: dict[str, Any]) -> None:
        self.mlflow.log_metrics({f"final_{k}": v for k, v in numbers(values).items()},
                                step=int(values.get("step", 0)))

    def close(self) -> None:
        if self.run_id is not None:
            self.mlflow.end_run()


def logger_names(spec: str) -> list[str]:
    """The loggers ``--logger`` asks for: ``auto`` (TensorBoard where installed), ``none``, or names."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if names == ["none"]:
        return []
    if names == ["auto"]:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            return []
        return ["tensorboard"]
    check_loggers(spec)
    return list(dict.fromkeys(names))


def make_loggers(spec: str) -> list[Logger]:
    kinds = {"tensorboard": TensorBoardLogger, "csv": CSVLogger, "wandb": WandbLogger, "mlflow": MlflowLogger}
    return [kinds[n]() for n in logger_names(spec)]


def start_all(loggers: list[Logger], run_dir: Path, config: dict[str, Any], resume_step: int | None,
              auto: bool) -> list[Logger]:
    """The loggers that started. One that fails to start stops the run with its line, unless it was only
    chosen by ``auto`` (then a warning, as TensorBoard's absence always was)."""
    started = []
    for lg in loggers:
        try:
            lg.start(run_dir, config, resume_step)
            started.append(lg)
        except SimCLRError:
            raise
        except Exception as e:  # noqa: BLE001 - a logger's own failure
            if not auto:
                raise SimCLRError(f"--logger {type(lg).__name__}: could not start ({type(e).__name__}: {e})") from e
            warnings.warn(f"TensorBoard logging disabled: {e}", stacklevel=2)
    return started


__all__ = [
    "LOGGER_NAMES", "CSVLogger", "Logger", "MlflowLogger", "TensorBoardLogger", "WandbLogger", "flatten",
    "logger_names", "make_loggers", "numbers", "start_all",
]
