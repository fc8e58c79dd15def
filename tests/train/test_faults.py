"""A full disk and a read-only output directory: the previous checkpoint stays intact and the run
stops with one clear line (real filesystems: a small tmpfs, then the same remounted read-only)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from simclr.cli import main
from simclr.io import safe_load

ARGS = ["pretrain", "--limit", "96", "--image-size", "16", "--width-multiplier", "0.25", "--batch-size", "32",
        "--epochs", "2", "--device", "cpu", "--log-every", "1"]


def _mount_tmpfs(where: Path, size_kib: int) -> None:
    where.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {proc.stderr.strip()}")


@pytest.fixture
def small_fs(tmp_path: Path):  # noqa: ANN201
    mounts: list[Path] = []

    def make(size_kib: int) -> Path:
        where = tmp_path / f"fs{len(mounts)}"
        _mount_tmpfs(where, size_kib)
        mounts.append(where)
        return where

    yield make
    for m in mounts:
        subprocess.run(["umount", "-l", str(m)], check=False)


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_disk_full_keeps_the_previous_checkpoint(tmp_path: Path, small_fs, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    probe = tmp_path / "probe"
    assert main([*ARGS, "--out", str(probe), "--max-steps", "3"]) == 0
    size = (probe / "checkpoint.pt").stat().st_size
    # room for one checkpoint and the logs, not for the second one written beside it
    fs = small_fs(int(size * 1.5) // 1024 + 64)
    run = fs / "run"
    capsys.readouterr()
    code = main([*ARGS, "--out", str(run)])
    err = capsys.readouterr().err
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "No space left on device" in lines[0] and "intact" in lines[0], err[-800:]
    assert "Traceback" not in err
    state = safe_load(run / "checkpoint.pt")  # the epoch-1 checkpoint, whole
    assert (state["step"], state["epoch"]) == (3, 1)
    assert not list(run.glob(".checkpoint.pt.*"))  # no temporary file left behind


def test_read_only_output_stops_with_one_line(tmp_path: Path, small_fs, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    fs = small_fs(32 * 1024)
    run = fs / "run"
    assert main([*ARGS, "--out", str(run), "--max-steps", "3"]) == 0
    before = _digest(run / "checkpoint.pt")
    subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
    capsys.readouterr()
    code = main([*ARGS, "--out", str(run), "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "Read-only file system" in err and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.startswith("error:")]) == 1
    assert _digest(run / "checkpoint.pt") == before
