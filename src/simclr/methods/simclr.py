"""The SimCLR objective: two views of every image -> f and g -> a contrastive loss on z.

One step (Chen et al. 2020, Algorithm 1): the 2N views go through the encoder f and the projection
head g in one forward, so BN in train mode normalises with statistics over both views (the official
code; ``bn_views="per-view"``: one forward per view, each view's batch normalised on its own); the loss
module (NT-Xent by default) compares z1 with z2. With ``chunk_size`` the exact gradient of the whole
batch is computed chunk by chunk (``simclr.methods.chunked``), the method running its own backward.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from simclr.data.loaders import ViewBatch
from simclr.errors import SimCLRError
from simclr.losses.catalog import LOSS_KINDS
from simclr.losses.ntxent import at_least_fp32
from simclr.methods.base import PretrainMethod, StepOutput, StepTools, identity
from simclr.methods.chunked import chunked_step
from simclr.methods.registry import register

if TYPE_CHECKING:
    from simclr.config import PretrainConfig


def project_views(
    model: nn.Module,
    v1: torch.Tensor,
    v2: torch.Tensor,
    bn_views: str = "joint",
    prepare: Callable[[torch.Tensor], torch.Tensor] = identity,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(h of both views (2N, D), z1, z2 (at least float32)). joint: one forward of the 2N views, so BN
    in train mode normalises with statistics over both (the official code); per-view: one forward per
    view, each view's batch normalised with its own N images' statistics."""
    if bn_views == "per-view":
        (h1, z1), (h2, z2) = model(prepare(v1)), model(prepare(v2))
        return torch.cat([h1.detach(), h2.detach()]), at_least_fp32(z1), at_least_fp32(z2)
    h, z = model(prepare(torch.cat([v1, v2])))
    z1, z2 = at_least_fp32(z).chunk(2)
    return h.detach(), z1, z2


def _views_first(h: torch.Tensor, chunk_size: int, n: int) -> torch.Tensor:
    """Rows of the chunked step's h (chunk by chunk: view 1 then view 2 of each chunk) put in the order
    [view 1 of every image; view 2 of every image]."""
    first, second = [], []
    for start in range(0, n, chunk_size):
        c = min(chunk_size, n - start)
        block = h[2 * start : 2 * start + 2 * c]
        first.append(block[:c])
        second.append(block[c:])
    return torch.cat(first + second)


@register
class SimCLR(PretrainMethod):
    """SimCLR as a method (``--method simclr``, the default): ``training_step(ViewBatch) -> StepOutput``.

    Args:
        model: the plain network ``x -> (h, z)`` (a ``SimCLRModel``): what is saved.
        loss: the contrastive loss module, ``loss(z1, z2) -> scalar`` (``NTXentLoss``), or
            ``loss(z1, z2, labels)`` when it has ``uses_labels`` (``SupConLoss``); its
            ``last_accuracy``, when it has one, is logged as ``pos_acc``.
        net: what the forward calls (``model`` wrapped in DistributedDataParallel and/or
            ``torch.compile``); default ``model``.
        bn_views: ``joint`` or ``per-view`` (see the module docstring).
        chunk_size: images per chunk for the exact large-batch gradient; None: the whole batch at once.
        prepare: applied to every input batch of the network (e.g. channels_last).
        autocast: a fresh autocast context for every forward.
        backward_scale: the loss scaler's ``scale`` (fp16); used by the chunked step's own backward.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        *,
        net: nn.Module | None = None,
        bn_views: str = "joint",
        chunk_size: int | None = None,
        prepare: Callable[[torch.Tensor], torch.Tensor] = identity,
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
        backward_scale: Callable[[torch.Tensor], torch.Tensor] = identity,
    ) -> None:
        self.model = model
        self.loss = loss
        self.net = net if net is not None else model
        self.bn_views = bn_views
        self.chunk_size = chunk_size
        self.prepare = prepare
        self.autocast = autocast
        self.backward_scale = backward_scale
        self.uses_labels = bool(getattr(loss, "uses_labels", False))  # SupCon: the batch's labels too

    name = "simclr"
    summary = "two views of each image, f and g, a contrastive loss on z (--loss: NT-Xent, SupCon, ...)"

    @classmethod
    def validate(cls, cfg: PretrainConfig, labelled: bool) -> None:
        if LOSS_KINDS[cfg.loss.name].needs_labels and not labelled:
            raise SimCLRError(f"--loss {cfg.loss.name} needs labels: the {cfg.data.dataset} images have none "
                              "(use class subfolders DIR/CLASS/img.png, or --loss ntxent)")

    @classmethod
    def from_config(cls, model: nn.Module, cfg: PretrainConfig, tools: StepTools) -> SimCLR:
        loss = tools.loss if tools.loss is not None else LOSS_KINDS[cfg.loss.name].build(cfg.loss)
        return cls(model, loss, net=tools.net, bn_views=cfg.train.bn_views, chunk_size=cfg.train.chunk_size,
                   prepare=tools.prepare, autocast=tools.autocast, backward_scale=tools.backward_scale)

    @classmethod
    def describe(cls, cfg: PretrainConfig) -> str:
        return LOSS_KINDS[cfg.loss.name].describe(cfg.loss)

    @classmethod
    def notes(cls, cfg: PretrainConfig, global_batch: int) -> list[str]:
        kind = LOSS_KINDS[cfg.loss.name]
        return [f"{kind.title} loss {kind.equal_text(cfg.loss, global_batch)}"]

    def training_step(self, batch: ViewBatch) -> StepOutput:
        v1, v2 = batch.view1, batch.view2
        if self.chunk_size is not None and self.chunk_size < v1.shape[0]:
            return self._chunked_step(v1, v2, self.chunk_size)
        with self.autocast():
            h, z1, z2 = project_views(self.net, v1, v2, self.bn_views, self.prepare)
        loss = self.loss(z1, z2, batch.labels) if self.uses_labels else self.loss(z1, z2)
        return StepOutput(loss, self._logs(), features=h, projections=(z1.detach(), z2.detach()))

    def _chunked_step(self, v1: torch.Tensor, v2: torch.Tensor, chunk: int) -> StepOutput:
        kept: dict[str, torch.Tensor] = {}
        loss, _ = chunked_step(
            self.net, v1, v2, chunk, self.loss, prepare=self.prepare, autocast=self.autocast,
            scale=self.backward_scale, no_sync=getattr(self.net, "no_sync", None), keep=kept,
        )
        h = _views_first(kept["h"], chunk, v1.shape[0])
        return StepOutput(loss, self._logs(), features=h, projections=(kept["z1"], kept["z2"]), backward_done=True)

    def _logs(self) -> dict[str, torch.Tensor]:
        acc = getattr(self.loss, "last_accuracy", None)
        return {"pos_acc": acc} if acc is not None else {}


__all__ = ["SimCLR", "project_views"]
