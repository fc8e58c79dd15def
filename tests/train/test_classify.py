"""Fine-tuning and distillation end to end on tiny runs: outputs, the recipe, starting points, resume,
and bad input that gets one line and leaves nothing behind."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from simclr import load_classifier, pretrain
from simclr.cli.main import main
from simclr.data.sources import load_images
from simclr.data.subsets import balanced_subset
from simclr.eval.classifier import evaluate_classifier
from simclr.io import safe_load
from simclr.models.weights import load_encoder, load_head
from tests.helpers import tiny_config

LIMIT = ["--limit", "240", "--workers", "0"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("classify") / "run"
    pretrain(tiny_config(**{"model.head_layers": 3, "monitor.online_probe": False}), out)
    return out


def _finetune(run: Path, out: Path, *extra: str) -> None:
    assert main(["finetune", "--run", str(run), "--out", str(out), *LIMIT, "--label-fraction", "0.25",
                 "--epochs", "2", "--batch-size", "16", "--log-every", "1", *extra]) == 0


def test_finetune_writes_the_classifier_its_scores_and_its_subset(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "ft"
    _finetune(run, out)
    result = json.loads((out / "results.json").read_text())
    for key in ("top1", "top5", "train_top1", "dataset", "random_init", "run", "labels", "from_head_layer"):
        assert key in result
    train = load_images("synthetic", "train", None, 240, 0, 16)
    idx = balanced_subset(train.labels, 0.25, 0)
    assert (out / "subset.txt").read_text().split() == [str(i) for i in idx]
    assert result["labels"] == len(idx)
    model = load_classifier(out)
    assert not model.training
    test = load_images("synthetic", "test", None, 48, 0, 16)
    again = evaluate_classifier(model, test, 16, torch.device("cpu"))
    assert again["top1"] == pytest.approx(result["top1"]) and again["top5"] == pytest.approx(result["top5"])
    # the v1 recipe: Nesterov SGD, lr 0.05 x B/256, no weight decay; the whole network trained
    ckpt = safe_load(out / "checkpoint.pt")
    group = ckpt["optimizer"]["param_groups"][0]
    assert group["nesterov"] and group["momentum"] == 0.9 and group["weight_decay"] == 0
    assert ckpt["config"]["train"]["batch_size"] == 16
    enc = load_encoder(run)
    moved = [k for k, v in enc.state_dict().items() if v.is_floating_point()
             and not torch.equal(v, model.encoder.state_dict()[k])]
    assert len(moved) > 0.5 * len(enc.state_dict())  # the encoder was fine-tuned, not frozen
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = result["steps"]
    assert [r["step"] for r in records] == list(range(1, steps + 1))
    assert records[0]["lr"] == pytest.approx(0.05 * 16 / 256)  # the peak, then cosine down
    assert "train_acc" in records[0]


def test_finetune_starts_from_the_runs_encoder_and_head_layer(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "ft-head"
    _finetune(run, out, "--from-head-layer", "1", "--lr", "1e-12", "--max-steps", "1")
    # --max-steps ends the run early; classifier.pt is written at the end of the run's steps
    model = load_classifier(out)
    enc, head = load_encoder(run), load_head(run)
    for k, v in enc.state_dict().items():
        if v.is_floating_point() and "running" not in k:
            assert torch.allclose(model.encoder.state_dict()[k], v, atol=1e-6), k
    assert model.head_layers == 1
    assert torch.allclose(model.head[0].weight, head[0].weight, atol=1e-6)
    scratch = tmp_path / "scratch"
    _finetune(run, scratch, "--random-init", "--lr", "1e-12", "--max-steps", "1")
    fresh = load_classifier(scratch)
    assert json.loads((scratch / "results.json").read_text())["random_init"] is True
    assert not torch.allclose(fresh.encoder.stem[0].weight, enc.stem[0].weight)


def test_finetune_resumed_equals_uninterrupted(run: Path, tmp_path: Path) -> None:
    _finetune(run, tmp_path / "a")
    _finetune(run, tmp_path / "b", "--max-steps", "2")
    assert main(["finetune", "--run", str(run), "--out", str(tmp_path / "b"), "--resume"]) == 0
    a = safe_load(tmp_path / "a" / "classifier.pt")["state_dict"]
    b = safe_load(tmp_path / "b" / "classifier.pt")["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_distill_self_and_into_a_smaller_student(run: Path, tmp_path: Path) -> None:
    teacher = tmp_path / "ft"
    _finetune(run, teacher)
    assert main(["distill", "--teacher", str(teacher), "--out", str(tmp_path / "self"), *LIMIT, "--epochs", "1",
                 "--batch-size", "32"]) == 0
    self_r = json.loads((tmp_path / "self" / "results.json").read_text())
    assert self_r["temperature"] == 1.0 and self_r["student_width"] == 0.25  # T 1.0 (not v2's 0.1: BENCHMARKS)
    assert self_r["teacher_top1"] == json.loads((teacher / "results.json").read_text())["top1"]
    assert main(["distill", "--teacher", str(teacher), "--out", str(tmp_path / "small"), *LIMIT, "--epochs", "1",
                 "--batch-size", "32", "--student-width", "0.125", "--label-weight", "0.5"]) == 0
    small = json.loads((tmp_path / "small" / "results.json").read_text())
    assert small["temperature"] == 1.0 and small["label_weight"] == 0.5 and small["labels"] > 0
    student = load_classifier(tmp_path / "small")
    assert student.encoder.width_multiplier == 0.125 and student.head_layers == 0
    assert student(torch.rand(2, 3, 16, 16)).shape == (2, student.num_classes)


def test_linear_eval_on_the_same_labels(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "ft"
    _finetune(run, out, "--max-steps", "1")
    n = len((out / "subset.txt").read_text().split())
    assert main(["linear-eval", "--run", str(run), *LIMIT, "--subset-file", str(out / "subset.txt")]) == 0
    assert f": {n} train / " in capsys.readouterr().err
    assert main(["linear-eval", "--run", str(run), *LIMIT, "--label-fraction", "0.25"]) == 0
    assert f": {n} train / " in capsys.readouterr().err  # the same seed draws the same images


def _unlabelled_folder(root: Path) -> Path:
    root.mkdir()
    for i in range(8):
        Image.fromarray(np.full((20, 20, 3), 20 * i, np.uint8)).save(root / f"{i}.png")
    return root


@pytest.mark.parametrize(("argv", "message"), [
    (["--label-fraction", "0"], r"outside \(0, 1\]"),
    (["--label-fraction", "1.5"], r"outside \(0, 1\]"),
    (["--label-fraction", "0.001"], "with no image"),
    ([], "give one of --label-fraction"),
    (["--subset-file", "{tmp}/names.txt"], "are not in the dataset's train split"),
    (["--label-fraction", "0.5", "--from-head-layer", "3"], "has a 3-layer mlp head, so choose 0-2"),
    (["--label-fraction", "0.5", "--dataset", "folder", "--data-dir", "{tmp}/unlabelled"], "have no labels"),
    (["--label-fraction", "0.5", "--batch-size", "1000"], "larger than the labelled set"),
])
def test_bad_finetune_input_is_one_line_and_leaves_nothing(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                           argv: list[str], message: str) -> None:
    (tmp_path / "names.txt").write_text("0\n5\n100000\n")
    _unlabelled_folder(tmp_path / "unlabelled")
    out = tmp_path / "out"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["finetune", "--run", str(run), "--out", str(out), *LIMIT, *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert re.search(message, err[0]), err[0]
    assert not out.exists()


def test_a_teacher_that_is_not_a_classifier_is_refused(run: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert main(["distill", "--teacher", str(run), "--out", str(out), *LIMIT]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no classifier.pt" in err[0]
    assert not out.exists()


def test_supcon_pretraining_runs_and_needs_labels(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "supcon"
    assert main(["pretrain", "--out", str(out), "--loss", "supcon", "--limit", "64", "--image-size", "16",
                 "--width-multiplier", "0.25", "--batch-size", "32", "--epochs", "1", "--log-every", "1",
                 "--no-online-probe"]) == 0
    assert "SupCon temperature" in capsys.readouterr().err
    assert (out / "encoder.pt").exists()
    folder = _unlabelled_folder(tmp_path / "unlabelled")
    assert main(["pretrain", "--out", str(tmp_path / "bad"), "--loss", "supcon", "--dataset", "folder",
                 "--data-dir", str(folder), "--image-size", "16", "--batch-size", "4", "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--loss supcon needs labels" in err[0]
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(("flags", "banner", "loss_at_start"), [
    (["--loss", "ntlogistic", "--temperature", "0.5", "--semi-hard"], "NT-Logistic temperature 0.5 semi-hard", None),
    (["--loss", "triplet", "--margin", "0.4"], "margin triplet margin 0.4", 0.4),
])
def test_the_table_2_losses_pretrain(tmp_path: Path, capsys: pytest.CaptureFixture, flags: list[str], banner: str,
                                     loss_at_start: float | None) -> None:
    """--loss ntlogistic / triplet train end to end; at the start, when an untrained network puts the
    positives no closer than the negatives, the triplet loss is about its margin."""
    out = tmp_path / "run"
    assert main(["pretrain", "--out", str(out), *flags, "--limit", "64", "--image-size", "16",
                 "--width-multiplier", "0.25", "--batch-size", "32", "--epochs", "1", "--log-every", "1",
                 "--no-online-probe"]) == 0
    assert banner in capsys.readouterr().err
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    assert len(losses) == 2 and all(np.isfinite(losses))
    if loss_at_start is not None:
        assert abs(losses[0] - loss_at_start) < 0.2


def test_finetune_on_a_folder_writes_relative_paths_and_reads_them_back(tmp_path: Path) -> None:
    root = tmp_path / "folder"
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cats", "dogs"]):
        (root / name).mkdir(parents=True)
        for i in range(10):
            arr = np.full((20, 24, 3), 40 + 120 * c, np.uint8) + rng.integers(0, 30, (20, 24, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / name / f"{name}_{i}.png")
    data = ["--dataset", "folder", "--data-dir", str(root), "--image-size", "16", "--workers", "0"]
    run = tmp_path / "run"
    assert main(["pretrain", "--out", str(run), *data, "--batch-size", "8", "--max-steps", "1",
                 "--width-multiplier", "0.25", "--no-online-probe"]) == 0
    ft = tmp_path / "ft"
    assert main(["finetune", "--run", str(run), "--out", str(ft), *data, "--label-fraction", "0.5",
                 "--batch-size", "4", "--epochs", "1"]) == 0
    names = (ft / "subset.txt").read_text().split()
    # the folder has no train/ and test/: every 5th image is the test split; half of each class's 8
    assert len(names) == 8 and all(n.split("/")[0] in ("cats", "dogs") and n.endswith(".png") for n in names)
    again = tmp_path / "again"
    assert main(["finetune", "--run", str(run), "--out", str(again), *data, "--subset-file", str(ft / "subset.txt"),
                 "--batch-size", "4", "--epochs", "1"]) == 0
    assert (again / "subset.txt").read_text() == (ft / "subset.txt").read_text()


def test_classifier_views_add_colour_only_when_asked() -> None:
    from simclr.augment import SimCLRAugment
    from simclr.config.schema import ClassifierAugment
    from simclr.train.classify import classifier_augment

    images = load_images("synthetic", "train", None, 64, 0, 16).images  # type: ignore[attr-defined]
    plain = classifier_augment(ClassifierAugment(crop_scale=(1.0, 1.0), flip_p=0.0))
    assert plain.color_p == 0 and plain.grayscale_p == 0 and not plain.blur
    views = SimCLRAugment(plain, 16)(images, torch.Generator().manual_seed(0))
    torch.testing.assert_close(views, images.float() / 255, atol=1e-5, rtol=0)  # the whole image, as it is
    colour = classifier_augment(ClassifierAugment(crop_scale=(1.0, 1.0), flip_p=0.0, color_strength=1.0))
    assert (colour.color_strength, colour.color_p, colour.grayscale_p, colour.blur) == (1.0, 0.8, 0.2, False)
    views = SimCLRAugment(colour, 16)(images, torch.Generator().manual_seed(0))
    changed = (views - images.float() / 255).abs().flatten(1).amax(1) > 0.05
    assert 0.6 < changed.float().mean() <= 1.0  # about 1 - 0.2 * 0.8 of the images are recoloured
