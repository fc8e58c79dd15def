"""The command line, end to end: short runs on synthetic and on a generated folder, evaluation
output, presets, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from simclr.cli import main

TINY = ["--width-multiplier", "0.25", "--batch-size", "16", "--device", "cpu", "--log-every", "1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simclr", *args], capture_output=True, text=True,
                          env=ENV, timeout=timeout)


def one_line_error(capsys: pytest.CaptureFixture, *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def make_folder(root: Path, per_class: int = 12, bad: bool = True) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(["circles", "squares"]):
        d = root / name
        d.mkdir(parents=True)
        for i in range(per_class):
            arr = np.full((40, 48, 3), 30 + 100 * c, np.uint8) + rng.integers(0, 20, (40, 48, 3), dtype=np.uint8)
            mode = ["RGB", "L", "RGBA", "P"][i % 4]
            Image.fromarray(arr).convert(mode).save(d / f"{i}.png")
    if bad:
        (root / "circles" / "empty.jpg").write_bytes(b"")
        (root / "squares" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
        (root / "squares" / "readme.png").write_text("not an image")
    return root


def test_synthetic_pretrain_then_eval(tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = run_cli("pretrain", "--dataset", "synthetic", "--out", str(run), "--limit", "64",
                "--epochs", "2", "--image-size", "16", *TINY)
    assert r.returncode == 0, r.stderr
    assert "temperature 0.5" in r.stderr and "colour strength 1.0" in r.stderr  # defaults printed
    assert "crop area 0.25-1" in r.stderr and "stem imagenet" in r.stderr
    assert "step 8/8" in r.stderr  # plain log lines off a terminal
    for name in ("config.yaml", "metrics.jsonl", "checkpoint.pt", "encoder.pt"):
        assert (run / name).exists()
    for cmd in ("linear-eval", "knn"):
        for extra in ([], ["--random-init"]):
            out = tmp_path / f"{cmd}{len(extra)}.json"
            r = run_cli(cmd, "--run", str(run), "--limit", "100", "--out", str(out), *extra)
            assert r.returncode == 0, r.stderr
            res = json.loads(out.read_text())
            assert 0 <= res["top1"] <= 1 and res["random_init"] == bool(extra)
            assert f"top1 {res['top1']:.4f}" in r.stdout
            if cmd == "linear-eval":
                assert 0 <= res["top5"] <= 1 and res["top5"] >= res["top1"]


def test_folder_pretrain_skips_bad_files(tmp_path: Path) -> None:
    data = make_folder(tmp_path / "imgs")
    run = tmp_path / "run"
    r = run_cli("pretrain", "--dataset", "folder", "--data-dir", str(data), "--out", str(run),
                "--image-size", "32", "--epochs", "1", "--workers", "1", *TINY)
    assert r.returncode == 0, r.stderr
    for name in ("empty.jpg", "corrupt.png", "readme.png"):
        assert name in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("linear-eval", "--run", str(run), "--workers", "0")
    assert r.returncode == 0, r.stderr
    assert "linear-eval: top1" in r.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_saves_a_checkpoint_and_resume_finishes(tmp_path: Path, sig: signal.Signals) -> None:
    run = tmp_path / "run"
    args = ["pretrain", "--out", str(run), "--limit", "64", "--epochs", "400", "--image-size", "16", *TINY]
    proc = subprocess.Popen([sys.executable, "-m", "simclr", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "metrics.jsonl").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    sent = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    took = time.monotonic() - sent
    assert proc.returncode == 0, err  # a requested stop with its checkpoint saved is a clean exit
    assert took < 10, f"{sig.name} took {took:.1f} s to stop"
    assert f"{sig.name}: checkpoint saved" in err and "Traceback" not in err
    assert (run / "checkpoint.pt").exists() and not (run / "encoder.pt").exists()
    from simclr.io import safe_load

    step = safe_load(run / "checkpoint.pt")["step"]
    r = run_cli("pretrain", "--out", str(run), "--resume", "--max-steps", str(step + 2))
    assert r.returncode == 0, r.stderr
    assert f"resuming from step {step}" in r.stderr
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == step + 2
    assert (run / "encoder.pt").exists()


def test_config_yaml_reruns_and_presets(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["pretrain", "--out", str(tmp_path / "a"), "--limit", "32", "--max-steps", "1",
                 "--image-size", "16", *TINY]) == 0
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert main(["pretrain", "--config", str(tmp_path / "a" / "config.yaml"), "--out", str(tmp_path / "b")]) == 0
    assert yaml.safe_load((tmp_path / "b" / "config.yaml").read_text()) == saved
    capsys.readouterr()
    assert main(["presets"]) == 0
    listing = capsys.readouterr().out
    assert "cifar10-paper" in listing and "imagenet-paper" in listing
    # a preset sets the recipe, flags override it
    assert main(["pretrain", "--preset", "cifar10-paper", "--out", str(tmp_path / "c"), "--arch", "resnet18",
                 "--dataset", "synthetic",
                 "--limit", "32", "--max-steps", "1", "--image-size", "16", *TINY]) == 0
    c = yaml.safe_load((tmp_path / "c" / "config.yaml").read_text())
    assert c["optim"]["optimizer"] == "lars" and c["loss"]["temperature"] == 0.5
    assert c["augment"]["blur"] is False and c["model"]["arch"] == "resnet18"
    assert c["train"]["epochs"] == 1000


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--dataset", "imagenet"], "--dataset 'imagenet' is not valid"),
        (["--arch", "resnet51"], "did you mean 'resnet50'"),
        (["--optimizer", "adam"], "--optimizer"),
        (["--precision", "fp64"], "--precision"),
        (["--batch-size", "100", "--limit", "50"], "larger than the dataset"),
        (["--temperature", "-1"], "--temperature must be > 0"),
        (["--width-multiplier", "0"], "--width-multiplier"),
        (["--width-multiplier", "0.1"], "--width-multiplier must be in 0.25-4, got 0.1"),
        (["--width-multiplier", "8"], "--width-multiplier must be in 0.25-4, got 8"),
        (["--lr", "0"], "--lr must be > 0"),
        (["--lr", "-0.1"], "--lr must be > 0"),
        (["--batch-size", "1"], "--batch-size must be >= 2"),
        (["--preset", "cifar-paper"], "did you mean 'cifar10-paper'"),
        (["--config", "/nonexistent.yaml"], "cannot read config"),
        (["--resume"], "does not exist"),
    ],
)
def test_bad_pretrain_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str],
                                        needle: str) -> None:
    line = one_line_error(capsys, "pretrain", "--out", str(tmp_path / "run"), "--image-size", "16",
                          "--width-multiplier", "0.25", *argv)
    assert needle in line
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_unknown_yaml_key_is_one_line_with_a_suggestion(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tmp_path / "my.yaml"
    cfg.write_text("loss:\n  temprature: 0.2\n")
    line = one_line_error(capsys, "pretrain", "--out", str(tmp_path / "run"), "--config", str(cfg))
    assert "temprature" in line and "did you mean 'temperature'" in line
    assert not (tmp_path / "run").exists()


def test_invalid_yaml_names_its_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("loss:\n  temperature: 0.2\n train:\n  epochs: 3\n")  # line 3 is indented one space
    line = one_line_error(capsys, "pretrain", "--out", str(tmp_path / "run"), "--config", str(cfg))
    assert f"{cfg}, line 3, column 2: not valid YAML" in line
    assert not (tmp_path / "run").exists()


def test_a_misspelt_flag_gets_a_suggestion(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        main(["pretrain", "--data_dir", "x", "--out", str(tmp_path / "run")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --data_dir x" in err
    assert "--data_dir: did you mean --data-dir?" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("command", "default"), [("finetune", "the run's own"), ("distill", "the teacher's")])
def test_the_help_states_the_commands_own_dataset_default(command: str, default: str,
                                                          capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    help_text = out[out.rindex("--dataset DATASET"):][:200]  # the option's entry, after the usage line
    assert f"(default: {default}" in help_text and "synthetic (default)" not in help_text


def test_bad_folders_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    line = one_line_error(capsys, "pretrain", "--dataset", "folder", "--data-dir", str(tmp_path / "empty"),
                          "--out", str(tmp_path / "r1"))
    assert "no readable images" in line
    line = one_line_error(capsys, "pretrain", "--dataset", "folder", "--data-dir", str(tmp_path / "missing"),
                          "--out", str(tmp_path / "r2"))
    assert "does not exist" in line
    line = one_line_error(capsys, "pretrain", "--dataset", "folder", "--out", str(tmp_path / "r3"))
    assert "--data-dir" in line
    line = one_line_error(capsys, "linear-eval", "--run", str(tmp_path / "nothing"), "--dataset", "synthetic")
    assert "nothing" in line


def test_unlabelled_folder_cannot_be_linear_evaluated(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(20):
        Image.fromarray(np.full((20, 20, 3), i * 10, np.uint8)).save(flat / f"{i}.png")
    assert main(["pretrain", "--dataset", "folder", "--data-dir", str(flat), "--out", str(tmp_path / "run"),
                 "--image-size", "16", "--max-steps", "1", "--workers", "0", *TINY]) == 0
    capsys.readouterr()
    line = one_line_error(capsys, "linear-eval", "--run", str(tmp_path / "run"), "--workers", "0")
    assert "class subfolders" in line


def test_traceback_free_in_a_real_process(tmp_path: Path) -> None:
    r = run_cli("pretrain", "--out", str(tmp_path / "r"), "--dataset", "nope")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "Traceback" not in r.stderr
