"""Exact large batches in bounded memory: the NT-Xent gradient of a batch of B in chunks of C.

NT-Xent couples every view with every other, so a batch cannot simply be split into smaller
ones. But the loss depends on the network only through the embeddings z. So (as in "gradient
caching"):

1. embed every chunk of C images (both views) without keeping the graph: z for all 2B views;
2. compute the loss from them and its gradient with respect to z (cheap: a 2B x 2B matrix);
3. for each chunk again: forward with the graph, then backward from that chunk's rows of dL/dz.

The parameter gradients summed over the chunks equal those of the direct computation for any
network without batch statistics. With BatchNorm, each chunk is normalised with its own
statistics (those of C images, 2C views; under global BN, of the chunk on every rank), as if the
batch were C for BN alone, and the running statistics are updated once per chunk. Memory holds
one chunk's activations plus the 2B embeddings; the price is a second forward of every chunk
(about a third more compute).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from simclr.losses.ntxent import at_least_fp32


def _bn_buffers(model: nn.Module) -> list[torch.Tensor]:
    return [b for m in model.modules() if isinstance(m, _BatchNorm) for b in m.buffers()]


def chunked_step(
    model: nn.Module,
    v1: torch.Tensor,
    v2: torch.Tensor,
    chunk_size: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    prepare: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    scale: Callable[[torch.Tensor], torch.Tensor] = lambda loss: loss,
    no_sync: Callable[[], contextlib.AbstractContextManager] | None = None,
    keep: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Accumulate into ``.grad`` the gradient of ``loss_fn(z1, z2)`` on views ``v1``, ``v2`` (B images each).

    ``model(x) -> (h, z)``; chunks of ``chunk_size`` images are fed as ``cat([v1_c, v2_c])``.
    ``prepare`` is applied to each chunk's input (e.g. channels_last), ``autocast`` wraps every
    forward, ``scale`` the loss before its backward (a grad scaler's ``scale``). ``no_sync``
    (DistributedDataParallel's) defers the gradient all-reduce to the last chunk. ``loss_fn`` is a loss
    module such as ``NTXentLoss``. Returns the (detached) loss and the loss module's ``last_accuracy``
    (the positive-pair accuracy of ``NTXentLoss``; None for a loss without one). With ``keep``, it also receives the
    first pass's ``h`` (2B rows, chunk by chunk), ``z1`` and ``z2`` (no graph), for health signals.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    n = v1.shape[0]
    starts = list(range(0, n, chunk_size))

    def chunk(i: int) -> torch.Tensor:
        return prepare(torch.cat([v1[i : i + chunk_size], v2[i : i + chunk_size]]))

    # 1. every embedding, no graph; BN running statistics left as they were (updated in 3)
    saved = [b.clone() for b in _bn_buffers(model)]
    h_parts, z1_parts, z2_parts = [], [], []
    with torch.no_grad():
        for i in starts:
            with autocast():
                h, z = model(chunk(i))
            if keep is not None:
                h_parts.append(h)
            a, b = at_least_fp32(z).chunk(2)
            z1_parts.append(a)
            z2_parts.append(b)
    for buf, old in zip(_bn_buffers(model), saved, strict=True):
        buf.copy_(old)

    # 2. the loss and its gradient with respect to the embeddings
    if keep is not None:
        keep.update(h=torch.cat(h_parts), z1=torch.cat(z1_parts), z2=torch.cat(z2_parts))
    z1 = torch.cat(z1_parts).requires_grad_()
    z2 = torch.cat(z2_parts).requires_grad_()
    loss = loss_fn(z1, z2)
    acc = getattr(loss_fn, "last_accuracy", None)
    scale(loss).backward()
    assert z1.grad is not None and z2.grad is not None
    g1, g2 = z1.grad, z2.grad

    # 3. each chunk again, with its graph, backward from its rows of dL/dz
    for k, i in enumerate(starts):
        last = k == len(starts) - 1
        with no_sync() if (no_sync is not None and not last) else contextlib.nullcontext():
            with autocast():
                _, z = model(chunk(i))
            rows = slice(i, i + chunk_size)
            at_least_fp32(z).backward(torch.cat([g1[rows], g2[rows]]))
    return loss.detach(), acc
