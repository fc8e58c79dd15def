"""simclr's BatchNorm layers: torch's, with a switch for statistics over every rank.

``global_stats`` is off by default (plain BatchNorm); ``simclr.distributed.convert_global_bn``
turns it on, and under torchrun with several ranks a training-mode forward then normalises
with the mean and variance of the whole global batch (``distributed.global_batch_norm``), as
the paper's global BN. Parameters, buffers and state-dict keys are torch's own.
"""

from __future__ import annotations

import torch
from torch import nn

from simclr import distributed


class _MaybeGlobal:
    global_stats: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.global_stats and self.training and distributed.context().enabled:  # type: ignore[attr-defined]
            self._check_input_dim(x)  # type: ignore[attr-defined]
            return distributed.global_batch_norm(self, x)  # type: ignore[arg-type]
        return super().forward(x)  # type: ignore[misc]


class BatchNorm1d(_MaybeGlobal, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` that can take its statistics over every rank."""


class BatchNorm2d(_MaybeGlobal, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that can take its statistics over every rank."""
