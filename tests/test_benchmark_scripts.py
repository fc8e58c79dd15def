"""Benchmark scripts that must keep working where they cannot be run here (the GPU check)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_in_quick_mode_on_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick", "--json", str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    aug = result["augmentation"]
    assert aug["max_abs_diff"] == 0.0  # CPU against CPU: the same draws give the same views
    assert aug["32px_images_per_s"] > 0 and aug["224px_images_per_s"] > 0
    names = [r["setting"] for r in result["training_bf16"]]
    assert names == ["resnet18-cifar-16px-x0.25", "resnet50-imagenet-32px-x0.25"]
    for r in result["training_bf16"]:
        assert r["images_per_s"] > 0 and r["gflop_per_image"] > 0
    assert "augmentation, device vs CPU values" in proc.stdout
