"""Shared test helpers: tiny networks and run configurations."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from simclr import PretrainConfig
from simclr.config import apply_overrides


class NoBatchStats(nn.Module):
    """A small conv net with GroupNorm (per-sample statistics): f -> h, g -> z."""

    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU(),
                               nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                               nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.g = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 8))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.f(x)
        return h, self.g(h)


def tiny_config(**overrides: object) -> PretrainConfig:
    """A pretraining run of a few seconds: 96 synthetic images of 16 px, width 0.25, batch 32, 2 epochs
    (3 steps each), a log record every step, fp32 (not auto: the same numbers on every machine)."""
    cfg = PretrainConfig()
    apply_overrides(
        cfg,
        {
            "data.dataset": "synthetic", "data.limit": 96, "data.image_size": 16,
            "model.width_multiplier": 0.25, "train.batch_size": 32, "train.epochs": 2,
            "train.log_every": 1, "train.device": "cpu", "optim.warmup_epochs": 0.5, "train.precision": "fp32",
            **overrides,
        },
        "test",
    )
    return cfg


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def losses(run: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in records(run)]
