"""Benchmark scripts that must keep working where they cannot be run here (the GPU check)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_in_quick_mode_on_cpu(tmp_path: Path) -> None:
    """Every section runs on a CPU with tiny sizes, so the script is tested before any GPU time is spent;
    the JSON names the commit and the versions, and puts the common recipe beside simclr everywhere."""
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick", "--json", str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    env_ = result["environment"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert env_["commit"] == (head or "unknown") and env_["torch"] and "cudnn" in env_ and "driver" in env_
    aug = result["augmentation"]
    assert aug["max_abs_diff"] == 0.0  # CPU against CPU: the same draws give the same views
    assert aug["32px_images_per_s"] > 0 and aug["224px_images_per_s"] > 0
    names = ["resnet18-32px", "resnet50-64px"]
    for section in ("model_step", "in_memory"):
        assert [r["setting"] for r in result[section]] == names
    for r in [*result["model_step"], *result["in_memory"], result["jpeg_folder"]]:
        assert r["simclr_images_per_s"] > 0 and r["common_images_per_s"] > 0
        assert r["ratio"] == pytest.approx(r["simclr_images_per_s"] / r["common_images_per_s"], rel=1e-6)
    for r in result["model_step"]:
        assert r["gflop_per_image"] > 0 and r["host_syncs_per_step"] is None  # no CUDA here
    assert "decoding" in result["in_memory"][0]["excludes"] and "JPEG" in result["jpeg_folder"]["includes"]
    assert result["pretrain"]["images_per_s_median_late"] > 0 and "no checkpoint" in result["pretrain"]["excludes"]
    dist = result["distributed"]
    assert dist["backend"] == "gloo" and dist["ranks"] == 2 and dist["all_images_per_s"] > 0
    assert "augmentation, device vs CPU values" in proc.stdout and "common recipe" in proc.stdout


def test_gpu_check_says_what_is_missing(tmp_path: Path) -> None:
    """Without the package on its path it stops with one line that says what to do."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-S", str(ROOT / "benchmarks" / "gpu_check.py"), "--quick"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("gpu_check: cannot import") and "PYTHONPATH=src" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_compare_runs_reads_both_result_layouts_and_tests_exactly(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # {1,2} vs {3,4}: of the 6 splits, {1,2}|{3,4} and {3,4}|{1,2} separate the means by 2
    assert mod.permutation_p([1.0, 2.0], [3.0, 4.0]) == 2 / 6
    assert mod.permutation_p([1.0, 1.0], [1.0]) == 1.0
    ours = tmp_path / "ours-seed0"
    ours.mkdir()
    (ours / "linear.json").write_text(json.dumps({"top1": 0.85, "l2": 1e-4}))
    (ours / "knn.json").write_text(json.dumps({"top1": 0.78}))
    (tmp_path / "ours-seed0.log").write_text(
        "  l2 0.001: hold-out cross-entropy 0.4000 top1 0.85\n  l2 0.0001: hold-out cross-entropy 0.3700 top1 0.86\n"
    )
    other = tmp_path / "other-seed0"
    other.mkdir()
    (other / "result.json").write_text(json.dumps({"linear": {"top1": 0.86, "l2": 1e-3}, "knn": {"top1": 0.79}}))
    assert mod.read_run(ours) == {"linear": 0.85, "knn": 0.78, "holdout_ce": 0.37}
    assert mod.read_run(other) == {"linear": 0.86, "knn": 0.79, "holdout_ce": None}


def test_the_reporter_renders_results_json_and_summarises_a_run(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = tmp_path / "speed.json"
    res.write_text(json.dumps({"benchmark": "speed", "commit": "abc", "rows": [{"arch": "r18", "steps_per_s": 5.8512},
                                                                           {"arch": "vit", "steps_per_s": 0.31}]}))
    md = mod.results_markdown([res])
    assert "## speed" in md and "- commit: abc" in md
    assert "| arch | steps_per_s |" in md and "| r18 | 5.851 |" in md and "| vit | 0.31 |" in md
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "epoch": s / 2, "loss": 5 - s, "images_per_s": r,
                                                           "time_s": s * 2.0}) + "\n"
                                               for s, r in ((1, 100.0), (2, 300.0), (3, 200.0))))
    (run / "linear.json").write_text(json.dumps({"top1": 0.5, "top5": 0.9}))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "report.py"), "run", str(run)],
                         capture_output=True, text=True, check=True).stdout
    assert "last step 3  last loss 2.0000" in out and "images/s: median 200.0" in out
    assert "linear         top1 0.5000  top5 0.9000" in out


def test_the_time_study_combines_candidates_and_tables_seeds() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import fmnist_time_study as study
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    both = study.combine("crop 0.3-1", "tau 0.5", "no probe")
    assert both == {"flags": ["--temperature", "0.5"],
                    "yaml": {"augment": {"crop_scale": [0.3, 1.0]}, "monitor": {"online_probe": False}}}
    row = {"candidate": "x", "minutes": 20.0, "threads": 2, "steps": 100, "epochs": 2.0, "pretrain_wall_s": 1200.0}
    md = study.table([{**row, "seed": 1, "linear_val_top1": 0.9}, {**row, "seed": 0, "linear_val_top1": 0.8,
                                                                   "linear_test_top1": 0.7}])
    line = md.splitlines()[2]
    assert "0.8000 (s0), 0.9000 (s1) | 0.8500 |" in line  # seeds in order, their mean
    assert line.count("|") == 8 and "| - |" in line  # one seed without a test score: no test column value
