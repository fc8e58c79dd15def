"""The SimCLR network: encoder f and projection head g."""

from __future__ import annotations

import torch
from torch import nn

from simclr.models.backbones import EncoderSpec, resolve_stem
from simclr.models.heads import build_head


class SimCLRModel(nn.Module):
    """x -> (h, z): h = f(x) is the representation, z = g(h) feeds the loss."""

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return h, self.head(h)


def model_from_spec(
    spec: EncoderSpec,
    head: str = "mlp",
    head_layers: int = 2,
    head_bn: bool = True,
    proj_dim: int = 128,
    zero_init_residual: bool = True,
    head_out_bn: bool = True,
) -> SimCLRModel:
    """f built from ``spec`` (``simclr.models.backbones``) and a fresh head g on its features."""
    encoder = spec.build(zero_init_residual)
    return SimCLRModel(encoder, build_head(head, encoder.feature_dim, proj_dim, head_layers, head_bn, head_out_bn))


def build_model(
    arch: str = "resnet18",
    width_multiplier: float = 1.0,
    stem: str = "auto",
    image_size: int = 224,
    head: str = "mlp",
    head_layers: int = 2,
    head_bn: bool = True,
    proj_dim: int = 128,
    zero_init_residual: bool = True,
    input_norm: str = "none",
    head_out_bn: bool = True,
) -> SimCLRModel:
    """``model_from_spec`` with the spec given field by field (``stem='auto'``: the CIFAR stem at <= 32 px)."""
    spec = EncoderSpec(arch, width_multiplier, resolve_stem(stem, image_size, arch), input_norm, image_size)
    return model_from_spec(spec, head, head_layers, head_bn, proj_dim, zero_init_residual, head_out_bn)
