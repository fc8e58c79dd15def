"""The run directory as one object (``RunDir``): made once, read once, written by rank 0 only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from simclr.errors import SimCLRError
from simclr.models.weights import CHECKPOINT, CHECKPOINT_FORMAT
from simclr.train.rundir import RunDir


def test_prepare_makes_the_directory_and_refuses_to_start_over_a_run(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "a" / "b")
    run.prepare()
    assert run.path.is_dir() and run.checkpoint_path == run.path / CHECKPOINT
    run.save({"format": CHECKPOINT_FORMAT, "step": 3}, CHECKPOINT)
    with pytest.raises(SimCLRError, match="already holds a run: pass --resume"):
        RunDir(run.path).prepare()
    stale = run.path / f".{CHECKPOINT}.123.tmp"  # a write a crash cut short
    stale.write_text("")
    again = RunDir(run.path, resume=True)
    again.prepare()
    assert not stale.exists()
    assert again.read_checkpoint() == {"format": CHECKPOINT_FORMAT, "step": 3}


def test_prepare_refuses_a_file_and_runs_the_commands_first_files(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(SimCLRError, match="exists and is not a directory"):
        RunDir(tmp_path / "f").prepare()
    run = RunDir(tmp_path / "r")
    run.prepare(lambda: run.write_text("subset.txt", "1\n2\n"))
    assert (tmp_path / "r" / "subset.txt").read_text() == "1\n2\n"


def test_read_checkpoint_only_when_resuming_and_only_a_simclr_checkpoint(tmp_path: Path) -> None:
    assert RunDir(tmp_path).read_checkpoint() is None
    with pytest.raises(SimCLRError, match="does not exist; start without --resume"):
        RunDir(tmp_path, resume=True).read_checkpoint()
    torch.save({"model": {}}, tmp_path / CHECKPOINT)
    with pytest.raises(SimCLRError, match="is not a simclr checkpoint"):
        RunDir(tmp_path, resume=True).read_checkpoint()


def test_read_checkpoint_reads_the_file_once(tmp_path: Path) -> None:
    torch.save({"format": CHECKPOINT_FORMAT, "step": 1}, tmp_path / CHECKPOINT)
    run = RunDir(tmp_path, resume=True)
    first = run.read_checkpoint()
    (tmp_path / CHECKPOINT).unlink()  # a second read would fail
    assert run.read_checkpoint() is first


def test_only_the_main_rank_writes(tmp_path: Path) -> None:
    other = RunDir(tmp_path, main=False)
    other.save({"x": 1}, "a.pt")
    other.write_text("b.txt", "b")
    other.write_config({"train": {"seed": 0}})
    assert list(tmp_path.iterdir()) == []
    main = RunDir(tmp_path, main=True)
    main.save({"x": 1}, "a.pt")
    main.write_text("b.txt", "b")
    main.write_config({"train": {"seed": 0}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.txt", "config.yaml"]
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == {"train": {"seed": 0}}
    assert torch.load(tmp_path / "a.pt") == {"x": 1}
