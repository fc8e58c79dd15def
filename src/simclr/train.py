"""The pretraining loop (no argparse here; ``simclr.cli`` builds the config).

One step: two views of every image -> f and g on the concatenated 2N views (BN statistics
over all of them, as the official code; ``--bn-views per-view``: one forward per view) ->
NT-Xent -> optimiser step with the lr of this global step (linear warm-up then cosine, a pure
function of the step).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch
import yaml

from simclr import distributed
from simclr.checkpoint import CHECKPOINT, CHECKPOINT_FORMAT, ENCODER, atomic_save, encoder_payload, safe_load
from simclr.chunked import chunked_step
from simclr.config import PretrainConfig, resolve
from simclr.cpu_memory import retain_freed_memory
from simclr.data.loaders import PretrainLoader
from simclr.data.sources import load_images
from simclr.errors import SimCLRError
from simclr.health import batch_health
from simclr.loss import at_least_fp32, nt_xent
from simclr.metrics import MetricsLog, Progress
from simclr.models.encoder import resolve_stem
from simclr.models.simclr import SimCLRModel, build_model
from simclr.optim import build_optimizer, lr_at, scaled_lr


@dataclass
class PretrainResult:
    run_dir: Path
    step: int
    epoch: int
    last_loss: float
    interrupted: bool


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise SimCLRError(f"--device {name!r} is not a device (try cpu, cuda, cuda:1)") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SimCLRError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    return dev


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def project_views(
    model: torch.nn.Module,
    v1: torch.Tensor,
    v2: torch.Tensor,
    bn_views: str = "joint",
    prepare: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(h of both views (2N, D), z1, z2 (float32)). joint: one forward of the 2N views, so BN in
    train mode normalises with statistics over both (the official code); per-view: one forward per
    view, each view's batch normalised with its own N images' statistics."""
    if bn_views == "per-view":
        (h1, z1), (h2, z2) = model(prepare(v1)), model(prepare(v2))
        return torch.cat([h1.detach(), h2.detach()]), at_least_fp32(z1), at_least_fp32(z2)
    h, z = model(prepare(torch.cat([v1, v2])))
    z1, z2 = at_least_fp32(z).chunk(2)
    return h.detach(), z1, z2


def _check_precision(precision: str, device: torch.device) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise SimCLRError("--precision fp16 needs a CUDA GPU; on the CPU use bf16 (or fp32)")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise SimCLRError("this GPU has no bf16; use --precision fp16 (with a grad scaler) or fp32")


def _build(cfg: PretrainConfig) -> SimCLRModel:
    m = cfg.model
    assert cfg.data.image_size is not None
    return build_model(
        m.arch, m.width_multiplier, m.stem, cfg.data.image_size, m.head, m.head_layers, m.head_bn, m.proj_dim,
        m.zero_init_residual, m.input_norm, m.head_out_bn,
    )


def describe(
    cfg: PretrainConfig,
    peak_lr: float,
    steps_per_epoch: int,
    device: torch.device,
    world: distributed.DistContext | None = None,
    global_bn: bool = False,
) -> str:
    d, m, a, o, t = cfg.data, cfg.model, cfg.augment, cfg.optim, cfg.train
    assert d.image_size is not None and a.crop_scale is not None
    return (
        f"dataset {d.dataset} | image size {d.image_size} | {m.arch} x{m.width_multiplier} "
        f"stem {resolve_stem(m.stem, d.image_size)}"
        f"{' | input norm ' + m.input_norm if m.input_norm != 'none' else ''} | head {m.head}"
        f"{'-' + str(m.head_layers) if m.head == 'mlp' else ''} -> {m.proj_dim}\n"
        f"temperature {cfg.loss.temperature} | colour strength {a.color_strength} | "
        f"crop area {a.crop_scale[0]:g}-{a.crop_scale[1]:g} {a.crop_interpolation} | "
        f"blur {'on' if a.blur else 'off'} | "
        f"augment on {a.on}\n"
        f"{o.optimizer} peak lr {peak_lr:.4g} ({'given' if o.lr else f'{o.base_lr} {o.lr_scaling} rule'}) "
        f"| weight decay {o.weight_decay}{' (biases and BN too)' if o.decay_1d else ''} "
        f"| warm-up {o.warmup_epochs} epochs then cosine{' per epoch' if o.lr_schedule == 'epoch' else ''}\n"
        f"batch {t.batch_size} x {steps_per_epoch} steps/epoch x {t.epochs} epochs | "
        f"{t.precision} on {device}"
        + (f" | gradient in chunks of {t.chunk_size} images" if t.chunk_size else "")
        + (" | BN statistics per view" if t.bn_views == "per-view" else "")
        + (
            f"\n{world.world_size} ranks ({distributed.backend()}) x {t.batch_size // world.world_size}"
            f" images each | global BN {'on' if global_bn else 'off'} | negatives from the global batch"
            if world is not None and world.enabled
            else ""
        )
    )


class _StopFlag:
    """SIGINT / SIGTERM ask the loop to checkpoint and stop after the current step."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def pretrain(
    cfg: PretrainConfig, run_dir: str | Path, resume: bool = False, log: TextIO | None = None
) -> PretrainResult:
    """Pretrain with SimCLR into ``run_dir``; returns where it stopped.

    Under torchrun (WORLD_SIZE > 1) this joins the process group: ``batch_size`` is the global
    batch, each rank trains on its share, and rank 0 alone writes the run directory and logs.
    """
    world = distributed.init_from_env(cfg.train.device, cfg.train.dist_backend)
    with contextlib.ExitStack() as stack:
        if not world.is_main:  # one voice: rank 0 logs, the others stay quiet
            log = stack.enter_context(open(os.devnull, "w"))  # noqa: SIM115
        return _pretrain(cfg, Path(run_dir), resume, log or sys.stderr, world)


def _read_checkpoint(ckpt_path: Path) -> dict[str, Any]:
    if not ckpt_path.exists():
        raise SimCLRError(f"--resume: {ckpt_path} does not exist; start without --resume")
    state = safe_load(ckpt_path)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise SimCLRError(f"--resume: {ckpt_path} is not a simclr checkpoint")
    return state


def _grad_norm(model: torch.nn.Module) -> float:
    """The L2 norm of all gradients (one sync; inf or nan when any gradient is not finite)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))


def _prepare_out(out: Path, ckpt_path: Path, resume: bool) -> None:
    if out.exists() and not out.is_dir():
        raise SimCLRError(f"--out {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise SimCLRError(f"--out {out} is not writable: {e.strerror}") from e
    if not resume and ckpt_path.exists():
        raise SimCLRError(f"{out} already holds a run: pass --resume to continue it, or choose a new --out")
    for stale in out.glob(".*.pt.*.tmp"):  # a write cut short by a crash (atomic_save's temporary)
        stale.unlink(missing_ok=True)


def _pretrain(
    cfg: PretrainConfig, out: Path, resume: bool, log: TextIO, world: distributed.DistContext
) -> PretrainResult:
    ckpt_path = out / CHECKPOINT
    state = None
    if resume:
        # rank 0 reads it and hands it to the others (their disks need not hold the run)
        state = distributed.main_first(lambda: _read_checkpoint(ckpt_path))
        saved_model = state["config"]["model"]
        try:
            cfg = resolve(cfg)
        except SimCLRError as e:
            raise distributed.same_on_every_rank(e) from None
        # keys a checkpoint from an older version lacks (e.g. zero_init_residual) cannot conflict
        diff = [k for k in saved_model if saved_model[k] != cfg.to_dict()["model"].get(k)]
        if diff:
            raise distributed.same_on_every_rank(SimCLRError(
                f"--resume: the checkpoint's model differs in {', '.join(diff)}; "
                "resume with the run's own config.yaml (--config) or start a new --out"
            ))
    try:
        cfg = resolve(cfg)
    except SimCLRError as e:  # the same config on every rank: rank 0 alone reports it
        raise distributed.same_on_every_rank(e) from None
    d, o, t = cfg.data, cfg.optim, cfg.train
    assert d.image_size is not None and cfg.loss.temperature is not None and o.warmup_epochs is not None
    device = pick_device(distributed.rank_device(t.device, world))
    if device.type == "cpu":
        retain_freed_memory()  # reuse freed activation / view buffers instead of faulting pages in again
    if t.bn_views == "per-view" and world.enabled:
        raise distributed.same_on_every_rank(SimCLRError(
            "--bn-views per-view runs in one process only (one forward per view would call DDP twice per step); "
            "drop it under torchrun"
        ))
    if t.batch_size % world.world_size:
        raise distributed.same_on_every_rank(SimCLRError(
            f"--batch-size {t.batch_size} (the global batch) does not divide among {world.world_size} ranks; "
            f"use a multiple of {world.world_size}"
        ))
    _check_precision(t.precision, device)

    images = load_images(d.dataset, "pretrain", d.data_dir, d.limit, t.seed, d.image_size)
    if len(images) < t.batch_size:
        raise SimCLRError(
            f"--batch-size {t.batch_size} is larger than the dataset ({len(images)} images): "
            "lower --batch-size or raise --limit"
        )
    distributed.main_first(lambda: _prepare_out(out, ckpt_path, resume))

    torch.manual_seed(t.seed)
    model = _build(cfg).to(device)
    global_bn = world.enabled and (t.global_bn if t.global_bn is not None else True)
    if global_bn:
        model = distributed.convert_global_bn(model)  # type: ignore[assignment]
    channels_last = t.channels_last if t.channels_last is not None else True
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    loader = PretrainLoader(
        images, t.batch_size, cfg.augment.to_augment_config(), d.image_size, t.seed, device, d.workers,
        rank=world.rank, world_size=world.world_size, augment_on=cfg.augment.on,
    )
    steps_per_epoch = len(loader)
    total_steps = steps_per_epoch * t.epochs
    warmup_steps = round(o.warmup_epochs * steps_per_epoch)
    peak_lr = o.lr if o.lr is not None else scaled_lr(o.base_lr or 0.3, t.batch_size, o.lr_scaling)
    optimizer = build_optimizer(o.optimizer, model, peak_lr, o.weight_decay, o.momentum, o.decay_1d)
    epoch_steps = steps_per_epoch if o.lr_schedule == "epoch" else None
    scaler = torch.amp.GradScaler(device.type, enabled=t.precision == "fp16")

    step, epoch, batch_in_epoch = 0, 0, 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and state["rng"].get("cuda") is not None and not world.enabled:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    train_model: torch.nn.Module = model
    if world.enabled:
        # DDP averages gradients over ranks (nt_xent scales each rank's loss to match) and
        # broadcasts rank 0's weights now; global BN keeps the BN buffers equal on every rank.
        train_model = distributed.wrap_ddp(model, device, sync_buffers=not global_bn)
    if t.compile:
        train_model = torch.compile(train_model)
    if world.is_main:
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    print(describe(cfg, peak_lr, steps_per_epoch, device, world, global_bn), file=log)
    n2 = 2 * t.batch_size
    print(f"{len(images)} images; expected first loss about ln(2N-1) = {math.log(n2 - 1):.3f}", file=log)
    if resume:
        print(f"resuming from step {step} (epoch {epoch}, batch {batch_in_epoch})", file=log)

    def save_checkpoint(ep: int, b: int, loss: float) -> None:
        if not world.is_main:
            return
        atomic_save(
            {
                "format": CHECKPOINT_FORMAT,
                "version": 1,
                "config": cfg.to_dict(),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                "step": step,
                "epoch": ep,
                "batch_in_epoch": b,
                "last_loss": loss,
                "train_seconds": seconds_before + time.perf_counter() - started,
                "rng": {
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
                },
            },
            ckpt_path,
        )

    metrics = MetricsLog(out, resume_step=step if resume else None) if world.is_main else None
    stop_at = min(total_steps, t.max_steps) if t.max_steps else total_steps
    progress = Progress(stop_at, step, log)
    last_loss = float(state["last_loss"]) if state else float("nan")
    seconds_before = float(state.get("train_seconds", 0.0)) if state else 0.0  # training time of earlier sessions
    started = time.perf_counter()
    interrupted = stopping = False
    name = "SIGTERM"
    local_batch = t.batch_size // world.world_size
    chunk = t.chunk_size if t.chunk_size is not None and t.chunk_size < local_batch else None

    def prepare(x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    model.train()
    tick, tick_step = time.perf_counter(), step
    try:
        with _StopFlag() as stop:
            while epoch < t.epochs and step < stop_at and not interrupted:
                for b, (v1, v2) in enumerate(loader.batches(epoch, batch_in_epoch), start=batch_in_epoch):
                    lr = lr_at(step, peak_lr, warmup_steps, total_steps, epoch_steps)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    optimizer.zero_grad(set_to_none=True)
                    if chunk is not None:  # exact gradient of the whole batch, chunk by chunk
                        kept: dict[str, torch.Tensor] = {}
                        loss, pos_acc = chunked_step(
                            train_model, v1, v2, chunk, cfg.loss.temperature, prepare=prepare,
                            autocast=lambda: autocast_context(t.precision, device), scale=scaler.scale,
                            no_sync=getattr(train_model, "no_sync", None), keep=kept,
                        )
                        h, z1, z2 = kept["h"], kept["z1"], kept["z2"]
                    else:
                        with autocast_context(t.precision, device):
                            h, z1, z2 = project_views(train_model, v1, v2, t.bn_views, prepare)
                        loss, pos_acc = nt_xent(z1, z2, cfg.loss.temperature)
                    loss_value = loss.item()
                    if not math.isfinite(loss_value):
                        inputs_bad = not (bool(torch.isfinite(v1).all()) and bool(torch.isfinite(v2).all()))
                        raise SimCLRError(
                            f"the loss became {loss_value} at step {step} (last finite loss "
                            f"{last_loss:.4f}); "
                            + ("the input batch itself holds NaN or inf values: check the data. "
                               if inputs_bad else "try a lower --lr, --precision fp32, or check the data. ")
                            + f"The last good checkpoint is kept in {ckpt_path}"
                        )
                    if chunk is None:
                        scaler.scale(loss).backward()
                    if scaler.is_enabled():
                        scale_before = scaler.get_scale()
                        scaler.step(optimizer)  # skips the step when the fp16 gradients overflowed
                        scaler.update()
                        if scaler.get_scale() < scale_before:
                            print(f"\nfp16 gradients overflowed at step {step}: the step was skipped and the "
                                  f"loss scale lowered to {scaler.get_scale():g} (the grad scaler's job)", file=log)
                    else:
                        grad_norm = _grad_norm(model)
                        if not math.isfinite(grad_norm):
                            raise SimCLRError(
                                f"the gradients became {grad_norm} at step {step} (loss {loss_value:.4f}, last "
                                f"finite loss {last_loss:.4f}); try a lower --lr, --precision fp32, or check "
                                f"the data. The last good checkpoint is kept in {ckpt_path}"
                            )
                        optimizer.step()
                    step += 1
                    last_loss = loss_value
                    end_of_epoch = b + 1 == steps_per_epoch
                    record = None
                    if step % t.log_every == 0 or end_of_epoch or step == stop_at:
                        now = time.perf_counter()
                        record = {
                            "step": step,
                            "epoch": epoch + (b + 1) / steps_per_epoch,
                            "loss": loss_value,
                            "pos_acc": float(pos_acc),
                            "lr": lr,
                            "images_per_s": (step - tick_step) * t.batch_size / max(now - tick, 1e-9),
                            "time_s": seconds_before + now - started,
                        }
                        if world.is_main:  # the other ranks log nothing
                            record.update(batch_health(h, z1.detach(), z2.detach()))
                        if metrics is not None:
                            metrics.write(record)
                        tick, tick_step = now, step
                    progress.update(step, record)
                    # every rank stops at the same step, whichever one got the signal
                    stopping = distributed.any_rank(stop.signal is not None, device)
                    name = signal.Signals(stop.signal or signal.SIGTERM).name
                    if stopping and not end_of_epoch:
                        save_checkpoint(epoch, b + 1, last_loss)
                        print(f"\n{name}: checkpoint saved at step {step}; continue with --resume", file=log)
                        interrupted = True
                        break
                    if step >= stop_at and not end_of_epoch:
                        save_checkpoint(epoch, b + 1, last_loss)
                        break
                    if t.checkpoint_every_steps and step % t.checkpoint_every_steps == 0 and not end_of_epoch:
                        save_checkpoint(epoch, b + 1, last_loss)
                else:
                    epoch += 1
                    batch_in_epoch = 0
                    save_checkpoint(epoch, 0, last_loss)
                    if t.save_every_epoch and world.is_main:
                        atomic_save(encoder_payload(model.encoder, d.image_size), out / f"encoder-epoch{epoch}.pt")
                    if stopping:
                        print(f"\n{name}: checkpoint saved at step {step}; continue with --resume", file=log)
                        interrupted = True
                    continue
                break
    finally:
        progress.close()
        if metrics is not None:
            metrics.close()
    if not interrupted:
        if world.is_main:
            atomic_save(encoder_payload(model.encoder, d.image_size), out / ENCODER)
        print(f"done: {step} steps, last loss {last_loss:.4f}; encoder saved to {out / ENCODER}", file=log)
    distributed.barrier()  # no rank leaves before rank 0 has written the run
    return PretrainResult(out, step, epoch, last_loss, interrupted)
