"""A classifier on a SimCLR encoder: what fine-tuning and distillation train and ``classifier.pt`` holds.

``Classifier``: images (B, 3, H, W) in [0, 1] -> logits (B, classes) = fc(head(f(x))), with ``head``
the first k hidden layers of the projection head (``--from-head-layer k``: SimCLRv2 fine-tunes from
the first layer of its 3-layer head; k = 0 is v1's classifier on h). ``classifier.pt`` is tensors and
plain containers (``weights_only=True``); ``load_classifier`` rebuilds the network from it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from simclr.errors import SimCLRError
from simclr.io import safe_load
from simclr.models.backbones import EncoderSpec, spec_of
from simclr.models.heads import hidden_layers

CLASSIFIER = "classifier.pt"
CLASSIFIER_FORMAT = "simclr-classifier"


class Classifier(nn.Module):
    """x -> logits: an encoder f, the kept hidden layers of its projection head, a linear layer."""

    def __init__(self, encoder: nn.Module, num_classes: int, head: nn.Sequential | None = None,
                 head_bn: bool = True) -> None:
        super().__init__()
        if num_classes < 2:
            raise SimCLRError(f"a classifier needs at least 2 classes, got {num_classes}")
        self.encoder = encoder
        self.head = head if head is not None else nn.Sequential()
        self.head_bn = head_bn
        self.fc = nn.Linear(encoder.feature_dim, num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)  # the official code's init of its supervised head
        nn.init.zeros_(self.fc.bias)
        self.image_size: int | None = getattr(encoder, "image_size", None)
        self.classes: list[str] = []

    @property
    def head_layers(self) -> int:
        return sum(isinstance(m, nn.ReLU) for m in self.head)

    @property
    def num_classes(self) -> int:
        return self.fc.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.encoder(x)))


def classifier_payload(model: Classifier, image_size: int, info: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``classifier.pt`` holds: the architecture, the class names, the weights, and ``info``
    (how it was trained: plain values)."""
    enc = model.encoder
    spec = spec_of(enc).to_dict()
    spec["image_size"] = int(image_size)
    return {
        "format": CLASSIFIER_FORMAT,
        "version": 1,
        **spec,
        "feature_dim": enc.feature_dim,
        "head_layers": model.head_layers,
        "head_bn": model.head_bn,
        "num_classes": model.num_classes,
        "classes": list(model.classes),
        "info": info or {},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def classifier_from_payload(obj: dict[str, Any], where: str = "classifier") -> Classifier:
    encoder = EncoderSpec.from_dict(obj).build()
    head = hidden_layers(encoder.feature_dim, int(obj["head_layers"]), bool(obj["head_bn"]))
    model = Classifier(encoder, int(obj["num_classes"]), head, bool(obj["head_bn"]))
    try:
        model.load_state_dict(obj["state_dict"])
    except RuntimeError as e:
        raise SimCLRError(f"{where}: weights do not match {obj['arch']}: {str(e).splitlines()[0]}") from e
    model.image_size = int(obj["image_size"])
    model.encoder.image_size = model.image_size  # type: ignore[assignment]
    model.classes = list(obj.get("classes", []))
    return model


def read_classifier(path: str | os.PathLike) -> dict[str, Any]:
    """The payload of a ``classifier.pt`` (or of the one in a fine-tune / distill directory)."""
    p = Path(path)
    if p.is_dir():
        p = p / CLASSIFIER
    if not p.is_file():
        raise SimCLRError(f"{path} holds no {CLASSIFIER}: pass the --out of `simclr finetune` or `simclr distill`")
    obj = safe_load(p)
    if obj.get("format") != CLASSIFIER_FORMAT:
        raise SimCLRError(f"{p} is not a simclr classifier (written by `simclr finetune` or `simclr distill`)")
    return obj


def load_classifier(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Classifier:
    """The classifier of a ``simclr finetune`` / ``simclr distill`` directory (or its ``classifier.pt``),
    in eval mode: float RGB images (B, 3, H, W) in [0, 1] -> logits (B, classes). ``.classes`` names
    the classes, ``.image_size`` is the side it was trained at. Loaded with ``weights_only=True``."""
    return classifier_from_payload(read_classifier(path), str(path)).to(map_location).eval()


__all__ = ["CLASSIFIER", "CLASSIFIER_FORMAT", "Classifier", "classifier_from_payload", "classifier_payload",
           "load_classifier", "read_classifier"]
