"""SIGKILL at random moments (including during checkpoint writes), then --resume, several times: the run
completes, every checkpoint left on disk loads, and no kill costs more than N steps of repeated work."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from simclr.io import safe_load

N = 2  # --checkpoint-every-steps
ARGS = ["pretrain", "--limit", "192", "--image-size", "16", "--width-multiplier", "0.25", "--batch-size", "32",
        "--epochs", "8", "--device", "cpu", "--log-every", "1", "--checkpoint-every-steps", str(N)]
TOTAL = 8 * (192 // 32)


def _logged_steps(run: Path) -> list[int]:
    f = run / "metrics.jsonl"
    if not f.exists():
        return []
    steps = []
    for line in f.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except json.JSONDecodeError:  # the line being written right now
            continue
    return steps


def test_sigkill_anywhere_then_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = random.Random(0)
    kills = 0
    worst_repeat = 0
    for _attempt in range(6):
        resume = (run / "checkpoint.pt").exists()
        cmd = [sys.executable, "-m", "simclr", *ARGS, "--out", str(run)] + (["--resume"] if resume else [])
        start_step = safe_load(run / "checkpoint.pt")["step"] if resume else 0
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # wait until it has trained a little past where it started, then kill at a random moment
        deadline = time.monotonic() + 120
        target = start_step + rng.randint(1, 3)
        while proc.poll() is None and time.monotonic() < deadline:
            if max(_logged_steps(run), default=0) >= target:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.1))  # a few steps at most: the whole run takes about a second
        if proc.poll() is not None:  # it finished before we could kill it
            assert proc.returncode == 0, proc.stderr.read()[-2000:] if proc.stderr else ""
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        reached = max(_logged_steps(run), default=0)
        state = safe_load(run / "checkpoint.pt")  # whatever is on disk loads
        worst_repeat = max(worst_repeat, reached - state["step"])
        assert reached - state["step"] <= N, (reached, state["step"])
    if not (run / "encoder.pt").exists():  # killed on its last attempt: finish it
        subprocess.run([sys.executable, "-m", "simclr", *ARGS, "--out", str(run), "--resume"], env=env, check=True,
                       capture_output=True)
    assert kills >= 3
    assert (run / "encoder.pt").exists()
    assert _logged_steps(run) == list(range(1, TOTAL + 1))
    assert not list(run.glob(".*.tmp"))  # temporary files of writes cut short were cleaned up on resume
    print(f"{kills} kills, worst repeated work {worst_repeat} steps")
