"""Scoring a classifier (``simclr finetune`` / ``simclr distill``): top-k accuracy on un-augmented images."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from simclr.data.images import Images
from simclr.data.loaders import eval_batches
from simclr.eval.linear import check_labels, topk_accuracy
from simclr.runtime import autocast_context


@torch.no_grad()
def predict(model: nn.Module, images: Images, image_size: int, device: torch.device, batch_size: int = 256,
            workers: int = 0, precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (N, classes) float32 on the CPU, labels (N,)) of ``images``, the model in eval mode (its
    mode is restored after)."""
    was_training = model.training
    model.eval()
    logits, labels = [], []
    try:
        for x, y in eval_batches(images, batch_size, image_size, device, workers):
            with autocast_context(precision, device):
                logits.append(model(x).float().cpu())
            labels.append(torch.as_tensor(y))
    finally:
        model.train(was_training)
    return torch.cat(logits), torch.cat(labels).long()


def evaluate_classifier(model: nn.Module, images: Images, image_size: int, device: torch.device,
                        batch_size: int = 256, workers: int = 0, precision: str = "fp32",
                        ks: Iterable[int] = (1, 5)) -> dict[str, float]:
    """Top-k accuracies (``top1``, ``top5``) of ``model`` on the labelled ``images``."""
    logits, y = predict(model, images, image_size, device, batch_size, workers, precision)
    check_labels(y, "evaluation")
    return topk_accuracy(logits, y, ks)


__all__ = ["evaluate_classifier", "predict"]
