"""``pretrain(cfg, run_dir)``: a SimCLR pretraining run, from its configuration to its run directory.

It resolves and checks the configuration (against the checkpoint's when resuming), loads the images,
prepares the run directory, builds the run (``simclr.train.setup``), and hands it to ``fit_run``
(``simclr.train.run``: the loop with metrics, progress and the checkpoint policy) with SimCLR's own
callbacks: the online probe and the kNN monitor (``simclr.train.monitors``) and the encoder files.
Under torchrun (WORLD_SIZE > 1) it joins the process group: ``batch_size`` is the global batch, each
rank trains on its share, and rank 0 alone writes the run directory and logs::

    torchrun --nproc_per_node=8 -m simclr pretrain --dataset cifar10 --out runs/c10 --batch-size 512
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from torch import nn

from simclr import distributed
from simclr.config import PretrainConfig, apply_overrides, resolve
from simclr.data.images import has_labels
from simclr.data.sources import load_images
from simclr.errors import SimCLRError
from simclr.io import safe_load
from simclr.methods import method_class
from simclr.models.weights import ENCODER, load_encoder, load_library_encoder
from simclr.optim import cosine_progress, run_length
from simclr.train.budget import BudgetReplan, measure_rate, plan_budget, seconds_since
from simclr.train.callbacks import Callback, EncoderSnapshots
from simclr.train.changes import check_resume_changes, describe_resume_changes, differences
from simclr.train.engine import device_for, in_process_group
from simclr.train.monitors import KNNMonitor, OnlineProbe
from simclr.train.run import fit_run
from simclr.train.rundir import RunDir
from simclr.train.setup import (
    Training,
    build_training,
    check_run,
    describe,
    encoder_spec,
    peak_lr_of,
    schedule_of,
)


@dataclass
class PretrainResult:
    run_dir: Path
    step: int
    epoch: int
    last_loss: float
    interrupted: bool


def pretrain(
    cfg: PretrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    log: TextIO | None = None,
    callbacks: Sequence[Callback] = (),
    loss: nn.Module | None = None,
    backbone: nn.Module | None = None,
) -> PretrainResult:
    """Pretrain with SimCLR into ``run_dir``; returns where it stopped.

    ``callbacks`` run after the run's own (``simclr.train.callbacks.Callback``); ``loss`` replaces the
    NT-Xent loss module (any ``loss(z1, z2) -> scalar``). ``backbone``: any module mapping (B, 3, H, W) images
    in [0, 1] to features (or feature maps, average-pooled) as the encoder f, trained in place; its feature
    dimension is found by one dry forward, ``model.arch`` becomes ``module/<its class>``, and ``--resume`` and
    ``load_encoder(..., backbone=...)`` take the same module again.
    """
    if backbone is not None:
        cfg.model.arch = f"module/{type(getattr(backbone, 'model', backbone)).__name__}"
    return in_process_group(cfg, log, lambda world, lg: _pretrain(
        cfg, RunDir(run_dir, resume=resume, main=world.is_main), lg, world, list(callbacks), loss, backbone))


def _resolved(cfg: PretrainConfig, ckpt: dict[str, Any] | None) -> PretrainConfig:
    """``cfg`` with its auto values filled; when resuming, refused if its model differs from the
    checkpoint's (keys a checkpoint of an older version lacks cannot conflict)."""
    try:
        cfg = resolve(cfg)
    except SimCLRError as e:  # the same config on every rank: rank 0 alone reports it
        raise distributed.same_on_every_rank(e) from None
    if ckpt is None and cfg.train.time_budget is not None and cfg.train.max_steps is not None:
        raise distributed.same_on_every_rank(SimCLRError(
            f"--max-steps {cfg.train.max_steps} and --time-budget {cfg.train.time_budget:g}: choose one (the budget "
            "sets the run's steps from its measured rate)"))
    if ckpt is not None and ckpt["config"]["train"].get("time_budget") is not None:
        # a time-budget run keeps its plan: the steps, epochs and warm-up it set when it started
        saved_t, saved_o = ckpt["config"]["train"], ckpt["config"]["optim"]
        cfg.train.time_budget, cfg.train.max_steps = saved_t["time_budget"], saved_t["max_steps"]
        cfg.train.epochs, cfg.optim.warmup_epochs = saved_t["epochs"], saved_o["warmup_epochs"]
        cfg.train.schedule_anchors = saved_t.get("schedule_anchors")
    if ckpt is not None:
        try:
            check_resume_changes(differences(ckpt["config"], cfg.to_dict()))
        except SimCLRError as e:
            raise distributed.same_on_every_rank(e) from None
    return cfg


def resume_lines(training: Training, ckpt: dict[str, Any]) -> list[str]:
    """What this resume changes (``simclr.train.changes``), with the schedule's old and new values."""
    cfg = training.cfg
    diffs = differences(ckpt["config"], cfg.to_dict())
    if not diffs:
        return []
    old = PretrainConfig()
    try:
        apply_overrides(old, {k: v for k, v in ckpt["config"].items() if isinstance(v, dict)}, "the checkpoint")
    except SimCLRError:  # a checkpoint of another version: the changes, without their effect on the schedule
        return describe_resume_changes(diffs, int(ckpt["step"]), training.step.lr_at, training.step.lr_at, 0, 0, 0, 0)
    step, epoch, in_epoch = int(ckpt["step"]), int(ckpt["epoch"]), int(ckpt["batch_in_epoch"])
    spe_new = training.steps_per_epoch
    spe_old = (step - in_epoch) // epoch if epoch else max(1, spe_new * cfg.train.batch_size // old.train.batch_size)
    lr_old = schedule_of(old, spe_old, peak_lr_of(old)) if old.optim.warmup_epochs is not None else training.step.lr_at
    return describe_resume_changes(
        diffs, step, lr_old, training.step.lr_at, run_length(spe_old, old.train.epochs, old.train.max_steps),
        run_length(spe_new, cfg.train.epochs, cfg.train.max_steps), spe_old, spe_new)


def _simclr_file(path: Path) -> bool:
    """A file (or folder) simclr wrote: a run, an encoder, a checkpoint, a safetensors export, an hf folder."""
    if path.is_dir() or path.suffix.lower() == ".safetensors":
        return True
    return isinstance(obj := safe_load(path), dict) and "format" in obj


def initial_encoder(cfg: PretrainConfig) -> dict[str, Any] | None:
    """The encoder weights of ``--init-from`` (any file ``load_encoder`` reads, or for a torchvision / timm
    backbone a file in that library's own layout), refused in one line unless they are the configured network."""
    m, d = cfg.model, cfg.data
    if m.init_from is None:
        return None
    assert d.image_size is not None
    spec = encoder_spec(cfg)
    if spec.family in ("torchvision", "timm") and not _simclr_file(Path(m.init_from)):
        return load_library_encoder(m.init_from, spec).state_dict()
    enc = load_encoder(m.init_from)
    want = (m.arch, float(m.width_multiplier), spec.stem, m.input_norm)
    have = (enc.arch, float(enc.width_multiplier), enc.stem_type, enc.input_norm)
    if want != have:
        raise SimCLRError(
            f"--init-from {m.init_from} is a {have[0]} x{have[1]:g} with the {have[2]} stem (input norm {have[3]}); "
            f"the run is configured as a {want[0]} x{want[1]:g} with the {want[2]} stem (input norm {want[3]}): "
            "pass the matching --arch / --width-multiplier / --stem / --input-norm"
        )
    return enc.state_dict()


def plan_run(training: Training, run: RunDir, minutes: float, warmup_auto: bool, log: TextIO,
             started: float) -> BudgetReplan:
    """Fit ``training`` to ``minutes`` from ``started`` (the budget's clock, a perf_counter reading;
    ``simclr.train.budget``): rank 0's measured rate and time spent on every rank. Returns the callback
    that sets the end again from the loop's own rate."""
    rate, spent = distributed.broadcast_object((measure_rate(training), seconds_since(started)))
    cfg = training.cfg
    plan = plan_budget(minutes, rate, training.steps_per_epoch, None if warmup_auto else cfg.optim.warmup_epochs,
                       spent)
    cfg.train.max_steps, cfg.train.epochs, cfg.optim.warmup_epochs = plan.max_steps, plan.epochs, plan.warmup_epochs
    training.step.lr_at = schedule_of(cfg, training.steps_per_epoch, training.peak_lr)
    print(plan.line(training.steps_per_epoch), file=log)

    def apply(max_steps: int, epochs: int, at_step: int) -> None:
        # past the warm-up, the cosine keeps where it stood at at_step (an anchor) and ends on max_steps
        warmup_steps = round(cfg.optim.warmup_epochs * training.steps_per_epoch)
        if at_step > warmup_steps:
            anchors = [tuple(a) for a in cfg.train.schedule_anchors or []]
            t = cosine_progress(at_step, warmup_steps, cfg.train.max_steps, anchors)
            cfg.train.schedule_anchors = [*map(list, anchors), [at_step, t]]
        cfg.train.max_steps, cfg.train.epochs = max_steps, epochs
        training.step.lr_at = schedule_of(cfg, training.steps_per_epoch, training.peak_lr)
        run.write_config(cfg.to_dict())

    return BudgetReplan(minutes, plan.max_steps, training.steps_per_epoch, apply, log, started)


def monitors(training: Training) -> list[Callback]:
    """The online monitors a run asked for (``monitor`` section): the probe, the kNN monitor."""
    mon = training.cfg.monitor
    out: list[Callback] = []
    if mon.online_probe:
        out.append(OnlineProbe(training, mon.probe_lr))
    if mon.knn_every:
        out.append(KNNMonitor(training, mon.knn_every, mon.knn_k, mon.knn_bank, mon.knn_queries))
    return out


def _pretrain(cfg: PretrainConfig, run: RunDir, log: TextIO, world: distributed.DistContext,
              extra: list[Callback], loss: nn.Module | None, backbone: nn.Module | None) -> PretrainResult:
    started = time.perf_counter()  # a --time-budget counts from here: start-up and timed steps included
    ckpt = run.read_checkpoint()
    warmup_auto = cfg.optim.warmup_epochs is None
    cfg = _resolved(cfg, ckpt)
    d, t = cfg.data, cfg.train
    assert d.image_size is not None
    # config.yaml keeps the precision asked (auto); the choice goes to the log, every metrics record and the
    # checkpoint: a resume on the same machine keeps it, on another machine it decides again
    device, precision, precision_line = device_for(cfg, world, ckpt)
    images = load_images(d.dataset, "pretrain", d.data_dir, d.limit, t.seed, d.image_size)
    check_run(cfg, world, device, len(images), has_labels(images), precision)
    init = initial_encoder(cfg) if ckpt is None else None  # refused before the run directory exists
    run.prepare()
    if cfg.monitor.online_probe is None:
        cfg.monitor.online_probe = has_labels(images)
    training = build_training(cfg, images, device, world=world, ckpt=ckpt, loss=loss,
                              guard_where=str(run.checkpoint_path), log=log, init_encoder=init, precision=precision,
                              backbone=backbone)
    replan = plan_run(training, run, t.time_budget, warmup_auto, log, started) \
        if t.time_budget is not None and ckpt is None else None
    if init is not None:
        print(f"encoder initialised from {cfg.model.init_from}", file=log)
    if precision_line:
        print(precision_line, file=log)
    print(describe(training), file=log)
    notes = method_class(cfg.model.method).notes(cfg, t.batch_size)
    if getattr(images, "index_line", ""):  # a folder: where its index came from (walked, or the cache)
        print(images.index_line, file=log)
    print("; ".join([f"{len(images)} images", *notes]), file=log)
    for line in resume_lines(training, ckpt) if ckpt is not None else []:
        print(line, file=log)
    encoder_files = EncoderSnapshots(run, training.model.encoder, d.image_size, every_epoch=t.save_every_epoch)
    state = fit_run(training, run, log, monitors=[*monitors(training), *([replan] if replan else [])],
                    outputs=[encoder_files, *extra])
    if not state.interrupted:
        print(f"done: {state.step} steps, last loss {state.last_loss:.4f}; encoder saved to {run.file(ENCODER)}",
              file=log)
    return PretrainResult(run.path, state.step, state.epoch, state.last_loss, state.interrupted)


__all__ = ["PretrainResult", "initial_encoder", "monitors", "pretrain"]
