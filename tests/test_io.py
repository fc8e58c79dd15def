"""Atomic writes and safe loads (the disk-full and read-only cases run on a real tmpfs in train/test_faults.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from simclr.errors import SimCLRError
from simclr.io import atomic_save, atomic_write, atomic_write_text, safe_load


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "page.html", "old")

    def fail(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(target, fail)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]


def test_written_files_get_the_permissions_of_a_plain_open(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "x")
        atomic_save({"w": torch.ones(2)}, tmp_path / "b.pt")
    finally:
        os.umask(mask)
    for p in (path, tmp_path / "b.pt"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644  # mkstemp alone would leave 0o600


def test_safe_load_reads_tensors_and_refuses_what_is_not_a_dict(tmp_path: Path) -> None:
    atomic_save({"w": torch.arange(3)}, tmp_path / "ok.pt")
    assert torch.equal(safe_load(tmp_path / "ok.pt")["w"], torch.arange(3))
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(SimCLRError, match="is not a simclr checkpoint or encoder file"):
        safe_load(tmp_path / "list.pt")
    with pytest.raises(SimCLRError, match="does not exist"):
        safe_load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(SimCLRError, match="cannot load .* safely"):
        safe_load(tmp_path / "junk.pt")
