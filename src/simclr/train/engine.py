"""The one run builder: ``build_run`` makes the parts every training command trains with.

Pretraining (``simclr.train.setup.build_training``), fine-tuning and distillation
(``simclr.train.classify.build_parts``) differ in their model, their views, their optimiser, their
learning-rate schedule and their method (``simclr.methods``); they hand those here, and ``build_run``
does the rest the same way for all: the model onto the device, global BN under torchrun,
channels_last, the loader, the fp16 grad scaler, a checkpoint's state put back, the
DistributedDataParallel and ``torch.compile`` wrappers, the ``StepTools`` the method builds its step
with, and the ``TrainStep``. ``device_for`` picks a rank's device and precision, ``in_process_group``
joins torchrun's process group: one way for every command.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import torch
from torch import nn

from simclr import distributed
from simclr.augment import AugmentConfig
from simclr.data.images import Images
from simclr.data.loaders import PretrainLoader
from simclr.errors import SimCLRError
from simclr.methods import Method, StepTools, identity
from simclr.models.norm import convert_global_bn
from simclr.runtime import (
    autocast_context,
    check_precision,
    pick_device,
    prepare_device,
    resolve_precision,
    to_channels_last,
)
from simclr.train.state import restore_rng
from simclr.train.step import FiniteGuard, TrainStep


@dataclass
class Training:
    """The parts of a run (``build_run``), for every command."""

    cfg: Any  # the command's config (PretrainConfig, FinetuneConfig, DistillConfig), resolved
    device: torch.device
    world: distributed.DistContext
    model: nn.Module  # the plain network: what the optimiser updates and the checkpoint holds
    net: nn.Module  # what the forward calls: model, under DDP and/or torch.compile
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    loader: PretrainLoader
    method: Method
    step: TrainStep
    peak_lr: float
    global_bn: bool
    precision: str  # what runs: ``cfg.train.precision`` resolved (``auto`` -> bf16 / fp16 / fp32 for this device)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader)


def restore_state(ckpt: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
                  scaler: torch.amp.GradScaler, device: torch.device, world: distributed.DistContext) -> None:
    """Put a checkpoint's model, optimiser, loss-scaler and random state back (``--resume``)."""
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    if world.enabled:  # each rank keeps its own device's generator; the CPU one is rank 0's
        torch.set_rng_state(ckpt["rng"]["torch"])
    else:
        restore_rng(ckpt["rng"], device)


def report_overflow(log: TextIO, step: int, scale: float, skipped: int) -> None:
    """The line an fp16 run prints when the grad scaler skips steps."""
    where = f"at {skipped} steps since the last log, the last step {step}" if skipped > 1 else f"at step {step}"
    print(f"\nfp16 gradients overflowed {where}: skipped, and the loss scale lowered to {scale:g} "
          "(the grad scaler's job)", file=log)


def build_run(
    cfg: Any,
    model: nn.Module,
    images: Images,
    device: torch.device,
    *,
    augment: AugmentConfig,
    image_size: int,
    optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    peak_lr: float,
    schedule: Callable[[int], Callable[[int], float]],
    method: Callable[[nn.Module, StepTools], Method],
    precision: str,
    world: distributed.DistContext | None = None,
    views: int = 2,
    augment_on: str = "device",
    ckpt: dict[str, Any] | None = None,
    loss: nn.Module | None = None,
    guard_where: str = "",
    log: TextIO | None = None,
) -> Training:
    """The parts of a run of ``cfg`` (its ``train`` section: ``simclr.config.RunTrain``) training
    ``model`` (the plain, freshly made network, on the CPU) on ``images``.

    What a command decides: ``augment`` / ``image_size`` / ``views`` / ``augment_on``, the loader's views;
    ``optimizer(model)``, its optimiser (of ``peak_lr``); ``schedule(steps_per_epoch)``, the learning rate
    of a global step; ``method(model, tools)``, its objective (``simclr.methods``), given the
    ``StepTools`` (``loss``: a loss module given from Python). ``precision``: what runs (``auto``
    resolved). ``ckpt``: a checkpoint to resume from. ``guard_where``: the checkpoint the finiteness
    message names.
    """
    world = world or distributed.DistContext()
    t = cfg.train
    model = model.to(device)
    global_bn = world.enabled and (t.global_bn if t.global_bn is not None else True)
    if global_bn:
        model = convert_global_bn(model, distributed.backend())
    channels_last = t.channels_last if t.channels_last is not None else True
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    loader = PretrainLoader(
        images, t.batch_size, augment, image_size, t.seed, device, cfg.data.workers,
        rank=world.rank, world_size=world.world_size, views=views, augment_on=augment_on,
    )
    if len(loader) == 0:
        raise SimCLRError(f"--batch-size {t.batch_size} leaves no full batch of the {len(images)} images")
    opt = optimizer(model)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    if ckpt is not None:
        restore_state(ckpt, model, opt, scaler, device, world)
    net: nn.Module = model
    if world.enabled:
        # DDP averages gradients over ranks (nt_xent scales each rank's loss to match) and
        # broadcasts rank 0's weights now; global BN keeps the BN buffers equal on every rank.
        net = distributed.wrap_ddp(model, device, sync_buffers=not global_bn)
    if t.compile:
        net = torch.compile(net)  # type: ignore[assignment]
    tools = StepTools(net, prepare=to_channels_last if channels_last else identity,
                      autocast=functools.partial(autocast_context, precision, device), backward_scale=scaler.scale,
                      loss=loss)
    running = method(model, tools)
    last_loss = float(ckpt["last_loss"]) if ckpt is not None else float("nan")
    step = TrainStep(running, opt, schedule(len(loader)), scaler, FiniteGuard(device, last_loss, guard_where),
                     on_overflow=functools.partial(report_overflow, log or sys.stderr))
    return Training(cfg, device, world, model, net, opt, scaler, loader, running, step, peak_lr, global_bn, precision)


def device_for(cfg: Any, world: distributed.DistContext,
               ckpt: dict[str, Any] | None = None) -> tuple[torch.device, str, str | None]:
    """A rank's device (``cfg.train.device``; under torchrun cuda:LOCAL_RANK), prepared, the precision
    that runs there (``auto`` resolved: rank 0's choice on every rank, as the ranks must train alike;
    when resuming (``ckpt``) on the same machine, the precision the run ran in; refused where it cannot
    run) and the line that says the choice (None unless auto)."""
    device = pick_device(distributed.rank_device(cfg.train.device, world))
    prepare_device(device)
    started = ckpt.get("precision") if ckpt is not None else None
    precision, line = distributed.broadcast_object(resolve_precision(cfg.train.precision, device, started))
    check_precision(precision, device)
    return device, precision, line


def in_process_group(cfg: Any, log: TextIO | None, fn: Callable[[distributed.DistContext, TextIO], Any]) -> Any:
    """``fn(world, log)`` inside torchrun's process group (when WORLD_SIZE > 1; else one process): rank 0
    logs to ``log`` (default stderr), the other ranks stay quiet."""
    world = distributed.init_from_env(cfg.train.device, cfg.train.dist_backend)
    with contextlib.ExitStack() as stack:
        if not world.is_main:
            log = stack.enter_context(open(os.devnull, "w"))  # noqa: SIM115
        return fn(world, log or sys.stderr)


def precision_text(training: Training) -> str:
    """The banner's ``bf16 (auto) on cpu``: what runs, whether chosen, where."""
    auto = " (auto)" if training.cfg.train.precision == "auto" else ""
    return f"{training.precision}{auto} on {training.device}"


__all__ = [
    "Training", "build_run", "device_for", "in_process_group", "precision_text", "report_overflow", "restore_state",
]
