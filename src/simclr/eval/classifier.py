"""Scoring a classifier (``simclr finetune`` / ``simclr distill``): top-k accuracy on un-augmented images."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from simclr.data.images import Images
from simclr.data.loaders import eval_batches
from simclr.eval.features import encode
from simclr.eval.linear import check_labels, topk_accuracy


@torch.no_grad()
def predict(model: nn.Module, images: Images, image_size: int, device: torch.device, batch_size: int = 256,
            workers: int = 0, precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (N, classes) float32 on the CPU, labels (N,)) of ``images``, the model in eval mode (its
    mode is restored after); through ``encode``, so on CUDA the host waits once, not per batch."""
    labels: list[torch.Tensor] = []

    def batches():  # noqa: ANN202
        for x, y in eval_batches(images, batch_size, image_size, device, workers):
            labels.append(torch.as_tensor(y))
            yield x

    logits = encode(model, batches(), device, precision)
    return logits, torch.cat(labels).long() if labels else torch.zeros(0, dtype=torch.long)


def evaluate_classifier(model: nn.Module, images: Images, image_size: int, device: torch.device,
                        batch_size: int = 256, workers: int = 0, precision: str = "fp32",
                        ks: Iterable[int] = (1, 5)) -> dict[str, float]:
    """Top-k accuracies (``top1``, ``top5``) of ``model`` on the labelled ``images``."""
    logits, y = predict(model, images, image_size, device, batch_size, workers, precision)
    check_labels(y, "evaluation")
    return topk_accuracy(logits, y, ks)


__all__ = ["evaluate_classifier", "predict"]
