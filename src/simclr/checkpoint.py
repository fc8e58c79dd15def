"""Checkpoints and encoders on disk: atomic writes, safe loads.

Everything saved is tensors and plain Python containers, so both files load with
``torch.load(..., weights_only=True)`` (no pickled code runs). Writes go to a temporary file in
the same directory, are flushed to disk, then ``os.replace``'d over the old file: a crash
mid-write leaves the previous file intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from simclr.errors import SimCLRError
from simclr.models.encoder import ResNet
from simclr.write import publish

CHECKPOINT = "checkpoint.pt"
ENCODER = "encoder.pt"
ENCODER_FORMAT = "simclr-encoder"
CHECKPOINT_FORMAT = "simclr-checkpoint"


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename over it: ``path`` is
    either the old file or the complete new one, never a partial one. A full disk or a read-only
    directory raises one SimCLRError that says the file on disk is unchanged."""
    path = Path(path)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path)
    except Exception as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        os_error = _os_error_in(e)  # torch's zip writer may re-raise a disk error as RuntimeError
        if os_error is None:
            raise
        state = f"the previous {path.name} is intact" if path.exists() else f"no {path.name} was written"
        raise SimCLRError(
            f"cannot write {path}: {os_error.strerror or os_error}; {state}. Free space or fix the "
            "permissions (or choose another --out), then continue with --resume"
        ) from e
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def _os_error_in(e: BaseException | None) -> OSError | None:
    """The OSError that ``e`` is or was raised while handling, if any."""
    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, OSError):
            return e
        e = e.__cause__ or e.__context__
        seen += 1
    return None


def safe_load(path: str | Path) -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True``; a clear error for unreadable or unsafe files."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise SimCLRError(f"{path} does not exist") from e
    except Exception as e:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SimCLRError(f"cannot load {path} safely (weights_only): {first}") from e
    if not isinstance(obj, dict):
        raise SimCLRError(f"{path} is not a simclr checkpoint or encoder file")
    return obj


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


def _encoder_from_checkpoint(ckpt: dict[str, Any]) -> dict[str, Any]:
    model_cfg = ckpt["config"]["model"]
    image_size = ckpt["config"]["data"]["image_size"]
    from simclr.models.encoder import resolve_stem

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
    """The trained encoder f of a run directory, an ``encoder.pt`` or an exported ``.safetensors``, in eval mode.

    It takes float RGB images in [0, 1] of shape (B, 3, H, W) and returns h (B, feature_dim).
    ``encoder.image_size`` is the size it was trained at. A run directory without
    ``encoder.pt`` (still training, or interrupted) falls back to its ``checkpoint.pt``.
    """
    p = Path(path)
    if p.is_dir():
        if (p / ENCODER).exists():
            p = p / ENCODER
        elif (p / CHECKPOINT).exists():
            p = p / CHECKPOINT
        else:
            raise SimCLRError(f"{path} has neither {ENCODER} nor {CHECKPOINT}: is it a simclr run directory?")
    if p.suffix.lower() == ".safetensors":
        from simclr.export import load_safetensors_encoder

        return load_safetensors_encoder(p).to(map_location)
    obj = safe_load(p)
    if obj.get("format") == CHECKPOINT_FORMAT:
        obj = _encoder_from_checkpoint(obj)
    if obj.get("format") != ENCODER_FORMAT:
        raise SimCLRError(f"{p} is not a simclr encoder or checkpoint")
    encoder = ResNet(obj["arch"], obj["width_multiplier"], obj["stem"], input_norm=obj.get("input_norm", "none"))
    try:
        encoder.load_state_dict(obj["state_dict"])
    except RuntimeError as e:
        raise SimCLRError(f"{p}: weights do not match {obj['arch']}: {str(e).splitlines()[0]}") from e
    encoder.image_size = int(obj["image_size"])  # type: ignore[assignment]
    return encoder.to(map_location).eval()


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under torch.compile / DDP wrappers (save that one)."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def load_head(run: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """The projection head g of a run (from its ``checkpoint.pt``), in eval mode: z = g(h)."""
    from simclr.models.heads import build_head

    p = Path(run)
    ckpt_path = p / CHECKPOINT if p.is_dir() else p
    if not ckpt_path.is_file():
        raise SimCLRError(f"{ckpt_path} does not exist: the head g is kept in a run's {CHECKPOINT}")
    ckpt = safe_load(ckpt_path)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise SimCLRError(f"{ckpt_path} is not a simclr checkpoint (the head g is only in checkpoints)")
    m = ckpt["config"]["model"]
    encoder = _encoder_from_checkpoint(ckpt)
    feature_dim = ResNet(m["arch"], m["width_multiplier"], encoder["stem"]).feature_dim
    head = build_head(m["head"], feature_dim, m["proj_dim"], m["head_layers"], m["head_bn"], m.get("head_out_bn", True))
    head.load_state_dict({k[len("head."):]: v for k, v in ckpt["model"].items() if k.startswith("head.")})
    return head.to(map_location).eval()
