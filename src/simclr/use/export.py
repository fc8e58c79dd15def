"""Export the trained encoder alone: TorchScript, ONNX, safetensors, or a torchvision / timm state dict.

Every format takes float RGB images in [0, 1], (B, 3, H, W), and gives h (B, D), as
``load_encoder`` does. TorchScript and ONNX carry the graph (batch size dynamic; ONNX also dynamic
height and width); safetensors carries the weights and the architecture in its metadata, read back
by ``load_encoder`` (``simclr.models.weights``; no pickle anywhere). ``torchvision`` and ``timm``
write a plain state dict in that library's own key layout. For simclr's ResNet it is torchvision's
layout (``simclr.models.interop``), which ``torchvision.models.resnetNN()`` /
``timm.create_model("resnetNN", num_classes=0)`` load with ``strict=True``: without ``fc`` (set
``model.fc = nn.Identity()`` for torchvision), or, for a fine-tuned classifier without kept head layers,
with its linear layer as ``fc``. For a ``torchvision/<name>`` or ``timm/<name>`` backbone it is the
model's own state dict, classification layer removed, in its own library's format only.
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from pathlib import Path

import torch

from simclr.errors import SimCLRError
from simclr.io import atomic_write
from simclr.models.backbones import Backbone, is_transformer, spec_of
from simclr.models.conv import Conv2d
from simclr.models.interop import to_torchvision
from simclr.models.weights import SAFETENSORS_FORMAT
from simclr.use.hub import export_hub_folder

FORMATS = ("torchscript", "onnx", "safetensors", "torchvision", "timm", "hf")


class _Plain(torch.nn.Module):
    """The encoder with the tiny-map dense convolutions switched to plain ``F.conv2d``: one graph for
    any input size and any device (the dense form is a CPU speed path chosen per input shape)."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


def library_state(encoder: Backbone, fmt: str) -> dict[str, torch.Tensor]:
    """A torchvision / timm backbone's own state dict (classification layer removed), for its own library."""
    fam = encoder.spec.family
    if fam != fmt:
        other = f"--format {fam}" if fam in ("torchvision", "timm") else "--format safetensors"
        raise SimCLRError(f"this encoder is {encoder.arch}: its weights travel in {fam}'s layout, not {fmt}'s; use "
                          f"{other}")
    return {k: v.detach().cpu().contiguous() for k, v in encoder.model.state_dict().items()}


def torchvision_state(encoder: torch.nn.Module, fc: torch.nn.Linear | None = None) -> dict[str, torch.Tensor]:
    """``encoder``'s weights in torchvision's layout (with ``fc`` from ``fc`` when given). Refused where
    torchvision has no equivalent network: a width multiplier other than 1."""
    if encoder.width_multiplier != 1:
        raise SimCLRError(f"torchvision's and timm's ResNets have no width multiplier: this encoder is "
                          f"x{encoder.width_multiplier:g}; use --format safetensors (load_encoder reads it)")
    state = to_torchvision({k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()})
    if fc is not None:
        state["fc.weight"], state["fc.bias"] = fc.weight.detach().cpu().clone(), fc.bias.detach().cpu().clone()
    return state


def usage_note(encoder: torch.nn.Module, fmt: str, with_fc: bool) -> str:
    """What a user of the exported state dict must know, in one line: the input it expects, and the
    module changes a CIFAR stem needs."""
    if isinstance(encoder, Backbone):
        name = encoder.arch.split("/", 1)[1]
        sized = {"img_size": encoder.image_size} if fmt == "timm" and is_transformer(encoder.arch) else {}
        kwargs = "".join(f", {k}={v!r}" for k, v in {**sized, **encoder.spec.kwargs}.items())
        build = (f"torchvision.models.get_model({name!r}{kwargs}) with its final Linear set to nn.Identity()"
                 if fmt == "torchvision" else f"timm.create_model({name!r}, num_classes=0{kwargs})")
        stem = {"cifar": " Small-image stem: set model.conv1 = nn.Conv2d(3, C, 3, 1, 1, bias=False) and model.maxpool "
                         "= nn.Identity() first.",
                "nopool": " No max-pool: set model.maxpool = nn.Identity() first."}.get(encoder.stem_type, "")
        norm = "ImageNet-normalised images" if encoder.input_norm == "imagenet" else "RGB images in [0, 1]"
        return f"{fmt} state dict of {name}: load it strict into {build}; feed {norm}.{stem}"
    norm = ("ImageNet-normalised images (transforms.Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, "
            "0.225)), as torchvision models expect)" if encoder.input_norm == "imagenet"
            else "RGB images in [0, 1], not normalised (the run trained without input normalisation)")
    stem = {"cifar": " CIFAR stem: set model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False) and model.maxpool = "
                     "nn.Identity() before loading.",
            "nopool": " No max-pool: set model.maxpool = nn.Identity() (the weights load either way)."
            }.get(encoder.stem_type, "")
    head = ("fc is the fine-tuned classifier" if with_fc else
            "no fc: set model.fc = nn.Identity() (torchvision) or num_classes=0 (timm) before loading")
    return f"{fmt} state dict of {encoder.arch}: feed {norm}; {head}.{stem}"


def export_encoder(encoder: torch.nn.Module, fmt: str, out: str | os.PathLike, image_size: int | None = None,
                   fc: torch.nn.Linear | None = None, run: str | os.PathLike | None = None) -> Path:
    """Write ``encoder`` to ``out`` in format ``fmt``; returns the path. No partial file on failure.
    ``fc``: the classifier's linear layer (torchvision format only); ``run``: the run directory the model
    card of ``hf`` is filled from."""
    if fmt not in FORMATS:
        raise SimCLRError(f"--format {fmt!r} is not valid: choose one of {', '.join(FORMATS)}")
    out = Path(out)
    if fmt in ("torchvision", "timm"):
        if isinstance(encoder, Backbone):
            if fc is not None:
                raise SimCLRError(f"a fine-tuned {encoder.arch} classifier exports its encoder alone in {fmt}'s "
                                  "layout: export the pretraining run, or use --format torchscript / safetensors")
            state = library_state(encoder, fmt)
        else:
            state = torchvision_state(encoder, fc if fmt == "torchvision" else None)
        return atomic_write(out, lambda tmp: torch.save(state, tmp))
    size = image_size or int(getattr(encoder, "image_size", 224))
    encoder = encoder.cpu().eval()
    example = torch.rand(2, 3, size, size)
    if fmt == "safetensors":
        return atomic_write(out, lambda tmp: _save_safetensors(encoder, size, tmp))
    if fmt == "hf":
        return export_hub_folder(encoder, out, size, run, lambda path: atomic_write(
            path, lambda tmp: _save_safetensors(encoder, size, tmp)))
    with _generic_convs(encoder):
        if fmt == "torchscript":
            with torch.no_grad():
                traced = torch.jit.trace(_Plain(encoder), example, check_trace=False)
            return atomic_write(out, lambda tmp: traced.save(tmp))
        try:
            import onnx  # noqa: F401
        except ImportError as e:
            raise SimCLRError("--format onnx needs the onnx package: pip install 'simclr[onnx]'") from e

        def write_onnx(tmp: str) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # the TorchScript-based exporter; torch < 2.5 has no ``dynamo`` switch and uses it anyway
                legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
                torch.onnx.export(
                    _Plain(encoder), (example,), tmp, input_names=["images"], output_names=["h"],
                    dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "h": {0: "batch"}},
                    opset_version=17, **legacy,
                )

        return atomic_write(out, write_onnx)


class _generic_convs:  # noqa: N801 - a context manager used like a function
    """Temporarily route every simclr Conv2d through ``F.conv2d`` (no shape-dependent dense path)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.convs = [m for m in module.modules() if isinstance(m, Conv2d)]

    def __enter__(self) -> None:
        self.saved = [getattr(m, "dense_ok", True) for m in self.convs]
        for m in self.convs:
            m.dense_ok = False

    def __exit__(self, *exc: object) -> None:
        for m, v in zip(self.convs, self.saved, strict=True):
            m.dense_ok = v


def _save_safetensors(encoder: torch.nn.Module, size: int, path: str) -> None:
    try:
        from safetensors.torch import save_file
    except ImportError as e:
        raise SimCLRError("--format safetensors needs safetensors: pip install safetensors") from e
    spec = spec_of(encoder)
    meta = {"format": SAFETENSORS_FORMAT, "arch": spec.arch, "width_multiplier": str(spec.width_multiplier),
            "stem": spec.stem, "input_norm": spec.input_norm, "image_size": str(size)}
    if spec.kwargs:
        meta["backbone_kwargs"] = json.dumps(spec.kwargs)
    state = {k: v.detach().contiguous() for k, v in encoder.state_dict().items()}
    save_file(state, path, metadata=meta)


__all__ = ["FORMATS", "export_encoder", "library_state", "torchvision_state", "usage_note"]
