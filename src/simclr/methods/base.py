"""What a training method is to the loop: an object with ``training_step(batch) -> StepOutput`` and
``after_optimizer_step(step)``.

A method owns its objective: how a batch becomes a loss (and, for methods that run their own
backward, its gradients), and what follows each optimiser step (an EMA teacher's update). The loop
(``simclr.train.loop``) owns everything else: the learning rate of the step, zeroing and applying
gradients, the loss scaler, finiteness checks, logging, checkpoints, signals. A pretraining method
(``PretrainMethod``) also owns its model parts, its checks and its banner lines, and is found by name
(``simclr.methods.registry``): a new one is one module and its ``@register``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
from torch import nn

from simclr.models.heads import build_head
from simclr.models.simclr import SimCLRModel

if TYPE_CHECKING:
    from simclr.config import PretrainConfig


def identity(x: torch.Tensor) -> torch.Tensor:
    """The default ``prepare`` of a method: the batch as it is."""
    return x


@dataclass
class StepOutput:
    """What one training step produced, all on the training device; nothing here has been read back.

    ``loss``: the scalar the optimiser minimises (with its graph, unless ``backward_done``: a method that
    ran its own backward, as the chunked step does). ``logs``: scalars for the metrics, read on log steps
    only (e.g. ``pos_acc``). ``features``: h of the batch's views (2N, D), detached, rows in the order
    [view 1 of every image; view 2 of every image]; ``projections``: z of the two views (N, d) each,
    detached. Monitors and health signals read them; methods without them leave them None.
    """

    loss: torch.Tensor
    logs: dict[str, torch.Tensor] = field(default_factory=dict)
    features: torch.Tensor | None = None
    projections: tuple[torch.Tensor, torch.Tensor] | None = None
    backward_done: bool = False


class Method(Protocol):
    """An objective the loop can train. ``model`` is the plain module the optimiser updates and the
    checkpoint saves (never a DistributedDataParallel or compiled wrapper)."""

    model: nn.Module

    def training_step(self, batch: Any) -> StepOutput: ...


class MethodBase:
    """A method's defaults: nothing after the optimiser step. ``after_optimizer_step`` is optional: the
    loop calls it where a method has it (``MethodBase`` and ``PretrainMethod`` subclasses do)."""

    model: nn.Module

    def after_optimizer_step(self, step: int) -> None:
        """Called after every optimiser step (``step``: the global step just taken, 0-based)."""


@dataclass(frozen=True)
class StepTools:
    """What the engine hands a pretraining method to build its step with.

    ``net``: what the forward calls (the model under DistributedDataParallel and/or ``torch.compile``);
    ``prepare``: applied to every input batch (channels_last); ``autocast``: a fresh autocast context of
    the run's precision; ``backward_scale``: the fp16 loss scaler's ``scale``, for a method that runs its
    own backward; ``loss``: a loss module given from Python (``pretrain(loss=...)``), else None.
    """

    net: nn.Module
    prepare: Callable[[torch.Tensor], torch.Tensor] = identity
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    backward_scale: Callable[[torch.Tensor], torch.Tensor] = identity
    loss: nn.Module | None = None


class PretrainMethod(MethodBase):
    """A pretraining method: what the engine (``simclr.train.setup``) asks of one, by name.

    The class answers before anything is built: ``validate`` (settings this method cannot run, one
    line each), ``build_model`` (its trainable parts around the encoder f; the model must keep f as
    ``.encoder``, which is what ``encoder.pt`` saves, and its parameters that the optimiser must not
    touch, such as an EMA teacher's, with ``requires_grad`` False), ``describe`` (the banner's name of
    the objective) and ``notes`` (banner lines, such as the loss at chance). ``from_config`` makes the
    running method, whose ``training_step`` and ``after_optimizer_step`` the loop calls.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one line for --help and the registry's listing

    @classmethod
    def validate(cls, cfg: PretrainConfig, labelled: bool) -> None:
        """Raise ``SimCLRError`` for settings this method cannot run (``labelled``: the images have labels)."""

    @classmethod
    def build_model(cls, cfg: PretrainConfig, encoder: nn.Module) -> nn.Module:
        """The model the optimiser trains, around ``encoder`` (a module with ``feature_dim``). Default:
        f and the projection head g of the ``model`` section (``SimCLRModel``, x -> (h, z))."""
        m = cfg.model
        head = build_head(m.head, encoder.feature_dim, m.proj_dim, m.head_layers, m.head_bn, m.head_out_bn)
        return SimCLRModel(encoder, head)

    @classmethod
    def from_config(cls, model: nn.Module, cfg: PretrainConfig, tools: StepTools) -> PretrainMethod:
        raise NotImplementedError(f"method {cls.name!r} does not say how to build its step (from_config)")

    @classmethod
    def describe(cls, cfg: PretrainConfig) -> str:
        """The objective as the banner names it."""
        return cls.name

    @classmethod
    def notes(cls, cfg: PretrainConfig, global_batch: int) -> list[str]:
        """Banner lines after the run's description."""
        return []

    def training_step(self, batch: Any) -> StepOutput:
        raise NotImplementedError


__all__ = ["Method", "MethodBase", "PretrainMethod", "StepOutput", "StepTools", "identity"]
