"""Trained weights on disk: the run files that hold them, and loading the encoder f and head g.

A run directory holds ``checkpoint.pt`` (the whole training state, ``simclr.train.checkpoint``) and,
once training ends, ``encoder.pt`` (f alone). Both are tensors and plain Python containers, loaded
with ``torch.load(..., weights_only=True)`` (``simclr.io.safe_load``): no pickled code runs. An
exported ``.safetensors`` encoder (``simclr export``) loads here too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from simclr.errors import SimCLRError
from simclr.io import safe_load
from simclr.models.encoder import ResNet, resolve_stem
from simclr.models.heads import build_head
from simclr.models.interop import backbone_state, detect, from_torchvision

CHECKPOINT = "checkpoint.pt"
ENCODER = "encoder.pt"
ENCODER_FORMAT = "simclr-encoder"
CHECKPOINT_FORMAT = "simclr-checkpoint"
SAFETENSORS_FORMAT = "simclr-encoder-safetensors-v1"
HF_WEIGHTS = "model.safetensors"  # the weights file of an `export --format hf` folder


def encoder_payload(encoder: ResNet, image_size: int) -> dict[str, Any]:
    return {
        "format": ENCODER_FORMAT,
        "version": 1,
        "arch": encoder.arch,
        "width_multiplier": encoder.width_multiplier,
        "stem": encoder.stem_type,
        "input_norm": encoder.input_norm,
        "image_size": image_size,
        "feature_dim": encoder.feature_dim,
        "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
    }


def encoder_from_checkpoint(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The encoder payload (as ``encoder_payload`` writes it) of a training checkpoint."""
    model_cfg = ckpt["config"]["model"]
    image_size = ckpt["config"]["data"]["image_size"]
    state = {k[len("encoder.") :]: v for k, v in ckpt["model"].items() if k.startswith("encoder.")}
    return {
        "format": ENCODER_FORMAT,
        "arch": model_cfg["arch"],
        "width_multiplier": model_cfg["width_multiplier"],
        "stem": resolve_stem(model_cfg["stem"], image_size),
        "input_norm": model_cfg.get("input_norm", "none"),  # older checkpoints: none
        "image_size": image_size,
        "state_dict": state,
    }


def load_encoder(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> ResNet:
    """The trained encoder f of a run directory, an ``encoder.pt``, an exported ``.safetensors`` (or an
    ``export --format hf`` folder) or a torchvision-layout ResNet state dict (weights trained elsewhere,
    e.g. ``--format torchvision``), in eval mode.

    It takes float RGB images in [0, 1] of shape (B, 3, H, W) and returns h (B, feature_dim).
    ``encoder.image_size`` is the size it was trained at. A run directory without
    ``encoder.pt`` (still training, or interrupted) falls back to its ``checkpoint.pt``.
    """
    p = Path(path)
    if p.is_dir():
        if (p / HF_WEIGHTS).exists() and not (p / ENCODER).exists():  # an `export --format hf` folder
            p = p / HF_WEIGHTS
        elif (p / ENCODER).exists():
            p = p / ENCODER
        elif (p / CHECKPOINT).exists():
            p = p / CHECKPOINT
        else:
            raise SimCLRError(f"{path} has neither {ENCODER} nor {CHECKPOINT}: is it a simclr run directory?")
    if p.suffix.lower() == ".safetensors":
        return load_safetensors_encoder(p).to(map_location)
    obj = safe_load(p)
    if "format" not in obj:  # weights trained elsewhere: a torchvision-layout ResNet state dict
        return encoder_from_torchvision(obj, str(p)).to(map_location)
    if obj.get("format") == CHECKPOINT_FORMAT:
        obj = encoder_from_checkpoint(obj)
    if obj.get("format") != ENCODER_FORMAT:
        raise SimCLRError(f"{p} is not a simclr encoder or checkpoint")
    encoder = ResNet(obj["arch"], obj["width_multiplier"], obj["stem"], input_norm=obj.get("input_norm", "none"))
    try:
        encoder.load_state_dict(obj["state_dict"])
    except RuntimeError as e:
        raise SimCLRError(f"{p}: weights do not match {obj['arch']}: {str(e).splitlines()[0]}") from e
    encoder.image_size = int(obj["image_size"])  # type: ignore[assignment]
    return encoder.to(map_location).eval()


def encoder_from_torchvision(obj: dict[str, Any], where: str = "the file", arch: str | None = None) -> ResNet:
    """A simclr encoder (eval mode) holding a torchvision-layout ResNet state dict (bare, wrapped or
    prefixed: ``simclr.models.interop``); depth, width and stem read from the shapes (``arch``, when
    given, must agree). Keys the network lacks or misses are refused, listing the first few."""
    tv = backbone_state(obj, where)
    found, width, stem = detect(tv)
    if arch is not None and arch != found:
        raise SimCLRError(f"{where} holds a {found}, not a {arch}")
    encoder = ResNet(found, width, stem)
    state = from_torchvision(tv)
    want = encoder.state_dict()
    missing, unknown = [k for k in want if k not in state], [k for k in state if k not in want]
    if missing or unknown:
        parts = ([f"missing {', '.join(missing[:4])}"] if missing else []) + (
            [f"unknown {', '.join(unknown[:4])}"] if unknown else [])
        raise SimCLRError(f"{where}: not a {found} as torchvision lays it out ({'; '.join(parts)}); nothing loaded")
    bad = [k for k in want if want[k].shape != state[k].shape]
    if bad:
        raise SimCLRError(f"{where}: {bad[0]} has shape {tuple(state[bad[0]].shape)}, a {found} x{width:g} "
                          f"needs {tuple(want[bad[0]].shape)}; nothing loaded")
    encoder.load_state_dict(state)
    encoder.image_size = 224 if stem == "imagenet" else 32  # type: ignore[assignment]  # unknown: pass --image-size
    return encoder.eval()


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under torch.compile / DDP wrappers (save that one)."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def load_head(run: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """The projection head g of a run (from its ``checkpoint.pt``), in eval mode: z = g(h)."""
    p = Path(run)
    ckpt_path = p / CHECKPOINT if p.is_dir() else p
    if not ckpt_path.is_file():
        raise SimCLRError(f"{ckpt_path} does not exist: the head g is kept in a run's {CHECKPOINT}")
    ckpt = safe_load(ckpt_path)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise SimCLRError(f"{ckpt_path} is not a simclr checkpoint (the head g is only in checkpoints)")
    m = ckpt["config"]["model"]
    encoder = encoder_from_checkpoint(ckpt)
    feature_dim = ResNet(m["arch"], m["width_multiplier"], encoder["stem"]).feature_dim
    head = build_head(m["head"], feature_dim, m["proj_dim"], m["head_layers"], m["head_bn"], m.get("head_out_bn", True))
    head.load_state_dict({k[len("head."):]: v for k, v in ckpt["model"].items() if k.startswith("head.")})
    return head.to(map_location).eval()


def load_safetensors_encoder(path: str | os.PathLike) -> ResNet:
    """An encoder written by ``simclr export --format safetensors``, in eval mode."""
    try:
        from safetensors import safe_open
    except ImportError as e:
        raise SimCLRError("reading .safetensors needs safetensors: pip install safetensors") from e
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
    except Exception as e:  # noqa: BLE001
        raise SimCLRError(f"cannot read {path}: {type(e).__name__}: {e}") from e
    if meta.get("format") != SAFETENSORS_FORMAT:
        raise SimCLRError(f"{path} is not a simclr encoder (safetensors metadata: {json.dumps(meta)[:80]})")
    norm = meta.get("input_norm", "none")  # files written before the option: none
    encoder = ResNet(meta["arch"], float(meta["width_multiplier"]), meta["stem"], input_norm=norm)
    try:
        encoder.load_state_dict(state)
    except RuntimeError as e:
        raise SimCLRError(f"{path}: weights do not match {meta['arch']}: {str(e).splitlines()[0]}") from e
    encoder.image_size = int(meta["image_size"])  # type: ignore[assignment]
    return encoder.eval()


__all__ = [
    "CHECKPOINT", "CHECKPOINT_FORMAT", "ENCODER", "ENCODER_FORMAT", "HF_WEIGHTS", "SAFETENSORS_FORMAT",
    "encoder_from_checkpoint", "encoder_from_torchvision", "encoder_payload", "load_encoder", "load_head",
    "load_safetensors_encoder", "unwrap",
]
