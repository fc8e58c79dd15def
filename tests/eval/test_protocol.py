"""The evaluation protocols on a run: features of h or z, the untrained baseline, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from simclr.data.sources import load_images
from simclr.errors import SimCLRError
from simclr.eval.protocol import evaluate_linear, run_features, validation_split
from simclr.models.weights import load_encoder, load_head
from simclr.train.pretrain import pretrain
from tests.helpers import tiny_config


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("protocol") / "run"
    pretrain(tiny_config(**{"monitor.online_probe": False}), out)
    return out


def _by_hand(run: Path, split: str, n: int) -> torch.Tensor:
    """z = g(f(x)) of the first n un-augmented images, computed here from the saved weights."""
    images = load_images("synthetic", split, None, n, 0, 16)
    x = images.images[:n].float() / 255  # type: ignore[attr-defined]  # synthetic: in-memory RGB
    with torch.no_grad():
        return load_head(run)(load_encoder(run)(x))


def test_layer_z_is_the_head_output(run: Path) -> None:
    h = run_features(run, limit=40, device="cpu", precision="fp32")
    z = run_features(run, limit=40, device="cpu", precision="fp32", layer="z")
    assert h is not None and z is not None
    assert h.train_x.shape == (40, 128) and z.train_x.shape == (40, 128)  # width 0.25: h 512/4, z proj_dim
    assert z.layer == "z" and h.layer == "h"
    assert torch.equal(z.train_y, h.train_y)
    torch.testing.assert_close(z.test_x, _by_hand(run, "test", 8), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(z.train_x, h.train_x, atol=1e-3)


def test_layer_z_random_init_has_fresh_head(run: Path) -> None:
    z = run_features(run, limit=40, device="cpu", precision="fp32", layer="z")
    r = run_features(run, limit=40, device="cpu", precision="fp32", layer="z", random_init=True)
    assert z is not None and r is not None
    assert r.train_x.shape == z.train_x.shape and not torch.allclose(r.train_x, z.train_x, atol=1e-3)
    again = run_features(run, limit=40, device="cpu", precision="fp32", layer="z", random_init=True)
    assert again is not None and torch.equal(again.train_x, r.train_x)  # seeded


def test_linear_eval_reports_the_layer(run: Path) -> None:
    res = evaluate_linear(run, limit=40, device="cpu", precision="fp32", layer="z")
    assert res is not None and res["layer"] == "z" and 0 <= res["top1"] <= 1


def test_validation_split_is_a_fixed_sixth_of_train() -> None:
    held, rest = validation_split(60000)
    assert len(held) == 10000 and len(rest) == 50000
    assert sorted(held + rest) == list(range(60000))  # disjoint, together the whole train split
    assert validation_split(60000) == (held, rest)  # one hold-out whatever the run or --seed
    assert held != list(range(10000))  # drawn, not the first sixth (a sorted dataset would lose classes)


def test_split_val_scores_held_out_train_images(run: Path) -> None:
    """--split val: test_x are the h of the held-out train images, train_x those of the rest; the test split
    is not read (its images give other features)."""
    val = run_features(run, limit=60, device="cpu", precision="fp32", layer="z", split="val")
    assert val is not None and val.split == "val"
    held, rest = validation_split(60)
    everything = _by_hand(run, "train", 60)
    torch.testing.assert_close(val.test_x, everything[held], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(val.train_x, everything[rest], rtol=1e-4, atol=1e-5)
    labels = load_images("synthetic", "train", None, 60, 0, 16).labels
    assert torch.equal(val.test_y, torch.as_tensor(labels)[held])
    res = evaluate_linear(run, limit=60, device="cpu", precision="fp32", split="val")
    assert res is not None and res["scored_on"].startswith("validation")
    with pytest.raises(SimCLRError, match="unknown --split"):
        run_features(run, limit=40, device="cpu", split="train")


def test_layer_refusals(run: Path) -> None:
    with pytest.raises(SimCLRError, match="unknown --layer"):
        run_features(run, limit=40, device="cpu", layer="y")
    with pytest.raises(SimCLRError, match="head g is only in checkpoints|head g is kept"):
        run_features(run / "encoder.pt", limit=40, device="cpu", layer="z", dataset="synthetic")


class _StopAt:
    """A callback sending SIGTERM after a step: the run stops there, saved, without its encoder.pt."""

    def __new__(cls, step: int):  # noqa: ANN204
        import os
        import signal

        from simclr.train.callbacks import Callback

        class Stop(Callback):
            def on_step_end(self, trainer, event) -> None:  # noqa: ANN001
                if event.step == step:
                    os.kill(os.getpid(), signal.SIGTERM)

        return Stop()


def test_an_unfinished_run_is_scored_as_such(tmp_path: Path) -> None:
    from simclr.eval.protocol import evaluate_knn

    run = tmp_path / "run"
    state = pretrain(tiny_config(), run, callbacks=[_StopAt(2)])  # 2 epochs x 3 steps planned
    assert state.interrupted and not (run / "encoder.pt").exists()
    lines: list[str] = []
    result = evaluate_knn(run, k=5, log=lines.append)
    assert result is not None
    assert (result["run_finished"], result["run_step"], result["run_steps"]) == (False, state.step, 6)
    assert any(f"unfinished: run at step {state.step} of 6" in line for line in lines)
    pretrain(tiny_config(), run, resume=True)  # finished: nothing to say
    lines.clear()
    result = evaluate_knn(run, k=5, log=lines.append)
    assert result is not None and "run_finished" not in result and not any("is unfinished:" in x for x in lines)
