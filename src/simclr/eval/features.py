"""The one path from images to features: a frozen encoder (and optionally its head) in eval mode.

``encode`` runs batches of images through the model under ``torch.no_grad`` with BN in inference
mode, and returns float32 rows on the CPU. Every feature in simclr is made by it: the evaluation
protocols (``extract_features``, sharded over the ranks under torchrun), the online kNN monitor,
``simclr.embed`` and ``simclr embed`` / ``search`` / ``visualize`` (``simclr.use.embeddings``).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from simclr import distributed
from simclr.data.images import Images
from simclr.data.loaders import as_float_batch, eval_batches
from simclr.errors import SimCLRError
from simclr.runtime import autocast_context, to_host_async


@torch.no_grad()
def encode(
    model: nn.Module,
    batches: Iterable,
    device: torch.device | str | None = None,
    precision: str = "fp32",
    head: nn.Module | None = None,
    image_size: int | None = None,
) -> torch.Tensor:
    """Features (N, D) float32 on the CPU of every image in ``batches`` through the frozen ``model``.

    ``batches``: tensors (B, C, H, W) (or (C, H, W)), uint8 or float in [0, 1], C = 1 or 3, or
    ``(images, labels)`` pairs (a DataLoader). ``head``: also apply the projection head g (z instead
    of h). ``image_size``: resize inputs to this side first (bilinear, antialiased). ``precision``:
    fp32 or an autocast precision (bf16, fp16). The model's and head's train/eval modes are restored.
    On CUDA each batch's features are copied to pinned host memory without waiting, and the host waits
    once, at the end.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    modules = [m for m in (model, head) if m is not None]
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    out = []
    try:
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            x = as_float_batch(torch.as_tensor(x).to(device), image_size)
            with autocast_context(precision, device):
                h = model(x)
                if head is not None:
                    h = head(h)
            out.append(to_host_async(h.float()))  # on CUDA the host goes on to queue the next batch
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the one wait: every batch's copy to the host is done
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)
    return torch.cat(out) if out else torch.zeros(0, 0)


def extract_features(
    encoder: nn.Module,
    images: Images,
    image_size: int,
    device: torch.device,
    batch_size: int = 256,
    workers: int = 0,
    precision: str = "fp32",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, D) float32 on the CPU, labels (N,)) of un-augmented ``images`` through ``encoder``.

    Under torchrun with several ranks, each rank encodes a contiguous share of the images and
    every rank gets all N rows back, in order: the same result as one process.
    """
    n = len(images)
    start, stop = distributed.shard_range(n)
    if (start, stop) != (0, n):
        images = images.subset(range(start, stop))
    labels: list[torch.Tensor] = []

    def batches():  # noqa: ANN202
        for x, y in eval_batches(images, batch_size, image_size, device, workers):
            labels.append(torch.as_tensor(y))
            yield x

    h = encode(encoder, batches(), device, precision)
    y = torch.cat(labels).long() if labels else torch.zeros(0, dtype=torch.long)
    if distributed.context().enabled:
        comm = device if distributed.backend() == "nccl" else torch.device("cpu")
        width = torch.tensor([h.shape[1] if h.numel() else 0], device=comm)
        torch.distributed.all_reduce(width, op=torch.distributed.ReduceOp.MAX)  # a rank may hold none
        h = distributed.gather_rows(h.reshape(-1, int(width.item())), n, comm)
        y = distributed.gather_rows(y, n, comm)
    return h, y


def check_finite(x: torch.Tensor, what: str) -> None:
    """Refuse features that are not finite (an encoder with NaN weights)."""
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(1).sum())
        raise SimCLRError(f"{bad} {what} feature vectors are not finite: the encoder is broken (NaN weights?)")


__all__ = ["check_finite", "encode", "extract_features"]
