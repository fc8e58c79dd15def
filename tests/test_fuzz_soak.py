"""The fuzz and soak benchmarks as tests (issue #32), marked slow: the README's `python -m pytest -q` skips
them; CI runs them after the suite (`SIMCLR_SLOW=1 python -m pytest -q -m slow`, about 3 minutes).

- fuzz: a minute of mutated PNG / JPEG / GIF / BMP / TIFF / WebP files through a folder's walk and decode:
  no crash (any exception but "no readable images"), no input over 5 s.
- soak: 200 steps uninterrupted, and the same run killed with SIGKILL after every 40th step's checkpoint
  and resumed: the same losses to 1e-4, the heap not growing by more than 10% after warm-up.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(script: str, *args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_fuzzed_image_files_never_crash_or_hang(tmp_path: Path) -> None:
    out = _run("fuzz_images.py", "--minutes", "1", "--seed", "3", cwd=tmp_path)
    m = re.search(r"(\d+) inputs in .* crashes (\d+), hangs \(> 5 s\) (\d+)", out)
    assert m, out
    tried, crashes, hangs = (int(g) for g in m.groups())
    assert tried > 100 and crashes == 0 and hangs == 0, out


def test_a_run_killed_and_resumed_logs_the_uninterrupted_losses_and_holds_its_memory(tmp_path: Path) -> None:
    out = _run("soak.py", "--steps", "200", "--every", "40", "--out", str(tmp_path / "soak"), cwd=tmp_path)
    assert "losses equal to the uninterrupted run's to 1e-4: True" in out, out
    heap = re.search(r"anonymous \(heap\) \d+ -> \d+ MiB \(([+-][\d.]+)%\)", out)
    assert heap and float(heap.group(1)) < 10, out
    kills = re.search(r"(\d+) SIGKILLs", out)
    assert kills and int(kills.group(1)) >= 3, out
