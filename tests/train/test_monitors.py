"""The online monitors: the probe's update against a transcription, its test top-1 and the kNN monitor's
value against the offline computation on the same images."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from helpers import records, tiny_config

from simclr import Callback, knn_eval, load_encoder, pretrain
from simclr.config import resolve
from simclr.data.loaders import ViewBatch
from simclr.data.sources import load_images
from simclr.eval.features import extract_features
from simclr.methods.base import StepOutput
from simclr.train.monitors import KNNMonitor, OnlineProbe
from simclr.train.setup import build_training


def test_the_probe_update_is_sgd_on_the_labelled_views_cross_entropy() -> None:
    cfg = resolve(tiny_config())
    images = load_images("synthetic", "pretrain", None, 96, 0, 16)
    training = build_training(cfg, images, torch.device("cpu"))
    probe = OnlineProbe(training, lr=0.5)
    reference = copy.deepcopy(probe.probe)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.5, momentum=0.9, nesterov=True)
    dim = training.model.encoder.feature_dim
    g = torch.Generator().manual_seed(0)
    for step in range(3):
        labels = torch.tensor([0, 3, -1, 7])  # one image without a label
        h = torch.randn(8, dim, generator=g)  # view 1 of the 4 images, then view 2
        out = StepOutput(torch.zeros(()), features=h)
        trainer = SimpleNamespace(state=SimpleNamespace(step=step + 1), step_fn=training.step)
        probe.on_train_step(trainer, ViewBatch(torch.zeros(4), torch.zeros(4), labels), out)
        y = torch.cat([labels, labels])
        keep = y >= 0
        reference.train()
        logits = reference(h)
        loss = -F.log_softmax(logits[keep], 1)[torch.arange(int(keep.sum())), y[keep]].mean()
        for group in ref_opt.param_groups:
            group["lr"] = 0.5 * training.step.lr_at(step) / training.peak_lr
        ref_opt.zero_grad()
        loss.backward()
        ref_opt.step()
        assert float(out.logs["probe_loss"]) == pytest.approx(float(loss.detach()), rel=1e-6)
        acc = (logits.argmax(1)[keep] == y[keep]).float().mean()
        assert float(out.logs["probe_acc"]) == pytest.approx(float(acc))
    for a, b in zip(probe.probe.state_dict().values(), reference.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


class Monitors(Callback):
    def on_fit_start(self, trainer) -> None:  # noqa: ANN001
        self.knn = next(cb for cb in trainer.callbacks if isinstance(cb, KNNMonitor))
        self.probe = next(cb for cb in trainer.callbacks if isinstance(cb, OnlineProbe))


def test_the_monitors_report_what_the_offline_protocols_compute(tmp_path: Path) -> None:
    spy = Monitors()
    pretrain(tiny_config(**{"monitor.knn_every": 2, "monitor.knn_k": 5}), tmp_path / "run", callbacks=[spy])
    last = records(tmp_path / "run")[-1]
    encoder = load_encoder(tmp_path / "run")  # the final weights: both monitors ran after the last step
    cpu = torch.device("cpu")
    xb, yb = extract_features(encoder, spy.knn.bank, 16, cpu)
    xq, yq = extract_features(encoder, spy.knn.queries, 16, cpu)
    assert len(xb) == 96 and len(xq) == 19  # --limit 96: its train images, and 96 // 5 test images
    assert last["knn_top1"] == pytest.approx(knn_eval(xb, yb, xq, yq, k=5)["top1"])
    test = load_images("synthetic", "test", None, 96 // 5, 0, 16)
    x, y = extract_features(encoder, test, 16, cpu)
    with torch.no_grad():
        predicted = spy.probe.probe.eval()(x).argmax(1)
    assert last["probe_test_top1"] == pytest.approx(float((predicted == y).float().mean()))
    assert "knn_top1" not in records(tmp_path / "run")[2]  # every 2 epochs: not after the first
