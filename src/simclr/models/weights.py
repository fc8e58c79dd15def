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
from simclr.models.backbones import Backbone, EncoderSpec, family, resolve_stem, spec_of
from simclr.models.encoder import ResNet
from simclr.models.heads import build_head
from simclr.models.interop import backbone_state, detect, from_torchvision, matching_prefix, unwrap_state

CHECKPOINT = "checkpoint.pt"
ENCODER = "encoder.pt"
ENCODER_FORMAT = "simclr-encoder"
CHECKPOINT_FORMAT = "simclr-checkpoint"
SAFETENSORS_FORMAT = "simclr-encoder-safetensors-v1"
HF_WEIGHTS = "model.safetensors"  # the weights file of an `export --format hf` folder


def encoder_payload(encoder: nn.Module, image_size: int) -> dict[str, Any]:
    """What ``encoder.pt`` holds: the encoder's spec (``EncoderSpec.to_dict``: arch, width, stem, input
    normalisation, image size, and the backbone's own keyword arguments where given), its feature
    dimension and its weights."""
    spec = spec_of(encoder).to_dict()
    spec["image_size"] = int(image_size)
    return {"format": ENCODER_FORMAT, "version": 1, **spec, "feature_dim": encoder.feature_dim,
            "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()}}


def config_spec(model_cfg: dict[str, Any], image_size: int) -> EncoderSpec:
    """The encoder spec of a run's ``config.yaml`` ``model`` section (keys an older file lacks: defaults)."""
    arch = model_cfg["arch"]
    return EncoderSpec(arch, float(model_cfg.get("width_multiplier", 1.0)),
                       resolve_stem(model_cfg.get("stem", "auto"), image_size, arch),
                       model_cfg.get("input_norm", "none"), int(image_size),
                       dict(model_cfg.get("backbone_kwargs") or {}))


def encoder_from_checkpoint(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The encoder payload (as ``encoder_payload`` writes it) of a training checkpoint."""
    spec = config_spec(ckpt["config"]["model"], ckpt["config"]["data"]["image_size"])
    state = {k[len("encoder.") :]: v for k, v in ckpt["model"].items() if k.startswith("encoder.")}
    return {"format": ENCODER_FORMAT, **spec.to_dict(), "state_dict": state}


def encoder_from_payload(obj: dict[str, Any], where: str, backbone: nn.Module | None = None) -> nn.Module:
    """The encoder of a payload (``encoder_payload``, a checkpoint's, a safetensors file's metadata), its
    weights loaded strict, in eval mode. ``backbone``: the module of a ``module/...`` encoder (one given
    from Python, which no name rebuilds)."""
    spec = EncoderSpec.from_dict(obj)
    if family(spec.arch) == "module":
        if backbone is None:
            raise SimCLRError(f"{where} holds an encoder made from a Python module ({spec.arch}): load it with "
                              "load_encoder(path, backbone=the same module)")
        encoder: nn.Module = Backbone(backbone, spec)
    else:
        encoder = spec.build()
    try:
        encoder.load_state_dict(obj["state_dict"])
    except RuntimeError as e:
        raise SimCLRError(f"{where}: weights do not match {spec.arch}: {str(e).splitlines()[0]}") from e
    encoder.image_size = spec.image_size  # type: ignore[assignment]
    return encoder.eval()


def load_encoder(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                 backbone: nn.Module | None = None) -> nn.Module:
    """The trained encoder f of a run directory, an ``encoder.pt``, an exported ``.safetensors`` (or an
    ``export --format hf`` folder) or a torchvision-layout ResNet state dict (weights trained elsewhere,
    e.g. ``--format torchvision``), in eval mode.

    It takes float RGB images in [0, 1] of shape (B, 3, H, W) and returns h (B, feature_dim).
    ``encoder.image_size`` is the size it was trained at. A run directory without
    ``encoder.pt`` (still training, or interrupted) falls back to its ``checkpoint.pt``. Any backbone
    (simclr's ResNet, torchvision / timm by name) is rebuilt from the file; one made from a Python module
    needs that module as ``backbone``.
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
        return load_safetensors_encoder(p, backbone).to(map_location)
    obj = safe_load(p)
    if "format" not in obj:  # weights trained elsewhere: a torchvision-layout ResNet state dict
        return encoder_from_torchvision(obj, str(p)).to(map_location)
    if obj.get("format") == CHECKPOINT_FORMAT:
        obj = encoder_from_checkpoint(obj)
    if obj.get("format") != ENCODER_FORMAT:
        raise SimCLRError(f"{p} is not a simclr encoder or checkpoint")
    return encoder_from_payload(obj, str(p), backbone).to(map_location)


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


def load_library_encoder(path: str | os.PathLike, spec: EncoderSpec) -> nn.Module:
    """A torchvision / timm encoder of ``spec`` holding a file in that library's own layout (e.g. an ImageNet
    checkpoint a user downloaded: bare, wrapped or prefixed), loaded strict: with its classification layer
    into the whole model (then removed), or without it (a file written by ``export --format torchvision|timm``)."""
    tensors = unwrap_state(safe_load(path), str(path))
    full = spec.library_model(classifier=True)
    state = matching_prefix(tensors, set(full.state_dict()))
    try:
        full.load_state_dict(state)
        model = spec.strip(full)
    except RuntimeError:
        model = spec.strip(spec.library_model(classifier=True))
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise SimCLRError(f"{path} is not a {spec.arch} state dict (loaded strict, with or without its "
                              f"classifier): {str(e).splitlines()[0]}") from e
    return Backbone(model, spec).eval()


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
    feature_dim = config_spec(m, ckpt["config"]["data"]["image_size"]).build().feature_dim
    head = build_head(m["head"], feature_dim, m["proj_dim"], m["head_layers"], m["head_bn"], m.get("head_out_bn", True))
    head.load_state_dict({k[len("head."):]: v for k, v in ckpt["model"].items() if k.startswith("head.")})
    return head.to(map_location).eval()


def load_safetensors_encoder(path: str | os.PathLike, backbone: nn.Module | None = None) -> nn.Module:
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
    spec = {**meta, "backbone_kwargs": json.loads(meta.get("backbone_kwargs") or "{}")}
    return encoder_from_payload({**spec, "state_dict": state}, str(path), backbone)


__all__ = [
    "CHECKPOINT", "CHECKPOINT_FORMAT", "ENCODER", "ENCODER_FORMAT", "HF_WEIGHTS", "SAFETENSORS_FORMAT",
    "config_spec", "encoder_from_checkpoint", "encoder_from_payload", "encoder_from_torchvision", "encoder_payload",
    "load_encoder", "load_head", "load_library_encoder",
    "load_safetensors_encoder", "unwrap",
]
