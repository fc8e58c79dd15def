"""``--logger``: TensorBoard, CSV, wandb (offline) and mlflow (local file store) each log what
metrics.jsonl logs, the config and the summary, read back here from what they wrote; resume continues
them without duplicates; bad choices are one line."""

from __future__ import annotations

import csv
import json
import struct
import sys
from pathlib import Path

import pytest

from simclr import pretrain
from simclr.cli.main import main
from simclr.errors import SimCLRError
from simclr.train.loggers import logger_names
from tests.helpers import records, tiny_config


def _tensorboard_scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _wandb_records(path: Path) -> list[bytes]:
    """The records of a .wandb file: a LevelDB-style log (a 7-byte file header ":W&B", magic, version; 32 KiB
    blocks of records with a crc32, a length and a type: full, first, middle, last)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, out, pending = 7, [], b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:  # the block's tail is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            out.append(pending + chunk)
    return out


def _wandb_history(run: Path) -> tuple[list[dict], dict]:
    """(history rows, summary) of the offline wandb run in ``run``, read from its own log file."""
    from wandb.proto import wandb_internal_pb2

    (log,) = (run / "wandb").glob("offline-run-*/run-*.wandb")
    rows, summary = [], {}
    for data in _wandb_records(log):
        rec = wandb_internal_pb2.Record()
        rec.ParseFromString(data)
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in rec.history.item})
        elif kind == "summary":
            summary.update({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in rec.summary.update})
    return rows, summary


def test_every_logger_logs_what_metrics_jsonl_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = tmp_path / "run"
    pretrain(tiny_config(**{"train.logger": "tensorboard,csv,wandb,mlflow", "monitor.online_probe": False}), run)
    want = [(r["step"], r["loss"]) for r in records(run)]
    assert [s for s, _ in want] == list(range(1, 7))

    tb = _tensorboard_scalars(run, "pretrain/loss")
    assert [s for s, _ in tb] == [s for s, _ in want]
    assert [v for _, v in tb] == pytest.approx([v for _, v in want], rel=1e-6)

    with (run / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["step"]), float(r["loss"])) for r in rows] == want
    assert json.loads((run / "summary.json").read_text())["last_loss"] == pytest.approx(want[-1][1])

    from mlflow.tracking import MlflowClient

    client = MlflowClient((run / "mlruns").resolve().as_uri())
    run_id = (run / "mlflow-id.txt").read_text().strip()
    history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "loss"))
    assert [s for s, _ in history] == [s for s, _ in want]
    assert [v for _, v in history] == pytest.approx([v for _, v in want], rel=1e-6)
    info = client.get_run(run_id).data
    assert info.params["train.seed"] == "0" and info.params["data.dataset"] == "synthetic"
    assert info.metrics["final_last_loss"] == pytest.approx(want[-1][1])

    rows, summary = _wandb_history(run)
    logged = [(int(r["_step"]), r["loss"]) for r in rows if "loss" in r]
    assert [s for s, _ in logged] == [s for s, _ in want]
    assert [v for _, v in logged] == pytest.approx([v for _, v in want], rel=1e-6)
    assert summary["final/last_loss"] == pytest.approx(want[-1][1])


def test_a_resumed_run_continues_its_loggers_without_duplicates(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = tmp_path / "run"
    settings = {"train.logger": "csv,mlflow,tensorboard", "monitor.online_probe": False}
    pretrain(tiny_config(**{**settings, "train.max_steps": 4}), run)
    with (run / "metrics.csv").open("a") as f:  # rows past the checkpoint (step 4) that a crash left behind
        f.write("5,9.0\n")
    first_id = (run / "mlflow-id.txt").read_text()
    pretrain(tiny_config(**settings), run, resume=True)
    with (run / "metrics.csv").open(newline="") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == list(range(1, 7))
    assert (run / "mlflow-id.txt").read_text() == first_id
    from mlflow.tracking import MlflowClient

    client = MlflowClient((run / "mlruns").resolve().as_uri())
    history = sorted(m.step for m in client.get_metric_history(first_id.strip(), "loss"))
    assert history == list(range(1, 7))
    assert [s for s, _ in _tensorboard_scalars(run, "pretrain/loss")] == list(range(1, 7))


def test_logger_choices() -> None:
    assert logger_names("none") == []
    assert logger_names("csv, tensorboard,csv") == ["csv", "tensorboard"]
    assert logger_names("auto") == ["tensorboard"]  # installed here
    with pytest.raises(SimCLRError, match="choose auto, none, or any of tensorboard, csv, wandb, mlflow"):
        logger_names("csv,neptune")


def test_bad_logger_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    assert main(["pretrain", "--out", str(out), "--logger", "neptune", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--logger 'neptune'" in err[0] and not out.exists()
    monkeypatch.setitem(sys.modules, "wandb", None)  # not installed
    assert main(["pretrain", "--out", str(out), "--logger", "wandb", "--device", "cpu", "--limit", "64",
                 "--batch-size", "32", "--width-multiplier", "0.25", "--image-size", "16", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: --logger wandb needs wandb: pip install 'simclr[wandb]'"
