"""Weights that travel: simclr's ResNet to and from torchvision's (and timm's) state-dict layout.

simclr's ResNet has the same blocks as torchvision's ``resnet18/34/50/101/152`` (post-activation v1,
stride on the 3x3 conv of a bottleneck, BN eps 1e-5) and other names for two things: the stem
(``stem.0`` / ``stem.1`` are torchvision's ``conv1`` / ``bn1``) and the projection shortcut
(``shortcut`` is torchvision's ``downsample``). timm's ``resnetNN`` uses torchvision's names, so one
mapping serves both. torchvision has no width multiplier; a CIFAR stem (3x3 stride-1 ``conv1``, no
max-pool) loads into a torchvision ResNet once those two modules are replaced (docs/guide/use.md).

Import reads a torchvision-layout state dict as other codebases write it: bare, wrapped
(``{"state_dict": ...}``, ``{"model": ...}``) or prefixed (``module.``, ``backbone.``, ``encoder.``,
as DDP, lightly, solo-learn and other SimCLR code write them); the depth, width and stem are read
from the tensors' shapes.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from simclr.errors import SimCLRError
from simclr.models.encoder import ARCHS, Bottleneck

WRAPPERS = ("state_dict", "model", "model_state_dict", "encoder", "backbone", "net")


def to_torchvision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """simclr encoder keys -> torchvision's (no ``fc``)."""
    out = {}
    for k, v in state.items():
        k = re.sub(r"^stem\.0\.", "conv1.", k)
        k = re.sub(r"^stem\.1\.", "bn1.", k)
        out[k.replace(".shortcut.", ".downsample.")] = v
    return out


def from_torchvision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision keys (``fc`` dropped) -> simclr encoder keys."""
    out = {}
    for k, v in state.items():
        if k.startswith("fc."):
            continue
        k = re.sub(r"^conv1\.", "stem.0.", k)
        k = re.sub(r"^bn1\.", "stem.1.", k)
        out[k.replace(".downsample.", ".shortcut.")] = v
    return out


def unwrap_state(obj: Any, where: str = "the file") -> dict[str, torch.Tensor]:  # noqa: ANN401
    """The tensors of a loaded state-dict file, out of its wrappers (``{"state_dict": {"model": ...}}``)."""
    for _ in range(3):  # {"state_dict": {"model": {...}}} and the like
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[w] for w in WRAPPERS if isinstance(obj.get(w), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict):
        raise SimCLRError(f"{where} holds no state dict")
    return {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}


def matching_prefix(tensors: dict[str, torch.Tensor], want: set[str]) -> dict[str, torch.Tensor]:
    """``tensors`` with the prefix stripped (``module.``, ``backbone.``, ...) under which most keys of ``want``
    are found (none: as they are)."""
    best, hits = "", sum(k in want for k in tensors)
    for k in tensors:
        for w in want:
            if k.endswith("." + w):
                prefix = k[: -len(w)]
                n = sum(key[len(prefix):] in want for key in tensors if key.startswith(prefix))
                if n > hits:
                    best, hits = prefix, n
        if hits == len(want):
            break
    return {k[len(best):]: v for k, v in tensors.items() if k.startswith(best)}


def backbone_state(obj: Any, where: str = "the file") -> dict[str, torch.Tensor]:
    """The torchvision-layout ResNet tensors of a loaded file: unwrapped, the prefix stripped. Keys outside
    the backbone's prefix (a projection head, an optimiser) are left out."""
    tensors = unwrap_state(obj, where)
    anchors = [k[: -len("layer1.0.conv1.weight")] for k in tensors if k.endswith("layer1.0.conv1.weight")]
    prefixes = [p for p in anchors if p + "conv1.weight" in tensors]
    if not prefixes:
        sample = ", ".join(list(tensors)[:4]) or "no tensors"
        raise SimCLRError(f"{where} is not a ResNet state dict in torchvision's layout (conv1, layer1.0.conv1, ...): "
                          f"its keys begin {sample}")
    prefix = min(prefixes, key=len)
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def detect(state: dict[str, torch.Tensor]) -> tuple[str, float, str]:
    """(arch, width multiplier, stem) of a torchvision-layout ResNet state dict, from its shapes."""
    bottleneck = "layer1.0.conv3.weight" in state
    blocks = tuple(len({m.group(1) for k in state if (m := re.match(rf"layer{i}\.(\d+)\.", k))}) for i in (1, 2, 3, 4))
    block = Bottleneck if bottleneck else None
    arch = next((name for name, spec in ARCHS.items()
                 if spec.layers == blocks and (spec.block is Bottleneck) == (block is Bottleneck)), None)
    if arch is None:
        raise SimCLRError(f"the ResNet's blocks per stage {blocks} ({'bottleneck' if bottleneck else 'basic'}) "
                          f"match none of {', '.join(ARCHS)}")
    conv1 = state["conv1.weight"]
    width = conv1.shape[0] / 64
    stem = "imagenet" if conv1.shape[-1] == 7 else "cifar"
    return arch, width, stem


__all__ = ["WRAPPERS", "backbone_state", "detect", "from_torchvision", "matching_prefix", "to_torchvision",
           "unwrap_state"]
