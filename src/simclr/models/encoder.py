"""ResNet v1 encoders f(x) -> h with a width multiplier and a CIFAR stem.

Follows PAPER.md and the official ``resnet.py``: post-activation ResNet v1, a width
multiplier w scaling every filter count *including the stem* (64w), the last BN of each
residual block with gamma initialised to 0, BN eps 1e-5 and momentum 0.1 (TF's 0.9).
The CIFAR stem (image size <= 32) is a 3x3 stride-1 conv without max-pool.

The encoder takes float images in [0, 1] and returns h of shape (B, feature_dim) after global
average pooling. The official code does not normalise its input (``input_norm="none"``, the
default); ``input_norm="imagenet"`` subtracts the ImageNet mean and divides by its std inside the
encoder, as torchvision-based implementations do in their transforms, so callers still pass [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from simclr.errors import SimCLRError
from simclr.models.conv import Conv2d
from simclr.models.norm import BatchNorm2d

BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def _bn(channels: int, zero_init: bool = False) -> nn.BatchNorm2d:
    bn = BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)
    if zero_init:
        nn.init.zeros_(bn.weight)
    return bn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, ch: int, stride: int, zero_init_residual: bool = True) -> None:
        super().__init__()
        self.conv1 = Conv2d(in_ch, ch, 3, stride, 1, bias=False)
        self.bn1 = _bn(ch)
        self.conv2 = Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.bn2 = _bn(ch, zero_init=zero_init_residual)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != ch:
            self.shortcut = nn.Sequential(Conv2d(in_ch, ch, 1, stride, bias=False), _bn(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_ch: int, ch: int, stride: int, zero_init_residual: bool = True) -> None:
        super().__init__()
        out_ch = ch * self.expansion
        self.conv1 = Conv2d(in_ch, ch, 1, bias=False)
        self.bn1 = _bn(ch)
        # Stride on the 3x3 conv (torchvision "v1.5"), as the official SimCLR resnet.py does.
        self.conv2 = Conv2d(ch, ch, 3, stride, 1, bias=False)
        self.bn2 = _bn(ch)
        self.conv3 = Conv2d(ch, out_ch, 1, bias=False)
        self.bn3 = _bn(out_ch, zero_init=zero_init_residual)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(Conv2d(in_ch, out_ch, 1, stride, bias=False), _bn(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


@dataclass(frozen=True)
class _Spec:
    block: type[BasicBlock] | type[Bottleneck]
    layers: tuple[int, int, int, int]


ARCHS: dict[str, _Spec] = {
    "resnet18": _Spec(BasicBlock, (2, 2, 2, 2)),
    "resnet34": _Spec(BasicBlock, (3, 4, 6, 3)),
    "resnet50": _Spec(Bottleneck, (3, 4, 6, 3)),
    "resnet101": _Spec(Bottleneck, (3, 4, 23, 3)),
    "resnet152": _Spec(Bottleneck, (3, 8, 36, 3)),
}
# cifar: 3x3 stride-1 conv, no max-pool (the paper's CIFAR stem); imagenet: 7x7 stride-2 conv + 3x3 stride-2
# max-pool; nopool: the ImageNet stem without its max-pool (stride 2 in all: a 28 px image gives a 14x14
# first stage, as the ImageNet stem does from 56 px, at a quarter of the stem's cost)
STEMS = ("cifar", "imagenet", "nopool")
INPUT_NORMS = {"none": None, "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))}


class ResNet(nn.Module):
    """f: images (B, 3, H, W) in [0, 1] -> h (B, feature_dim)."""

    def __init__(
        self,
        arch: str = "resnet18",
        width_multiplier: float = 1.0,
        stem: str = "imagenet",
        zero_init_residual: bool = True,
        input_norm: str = "none",
    ):
        """``zero_init_residual``: each block's last BN gamma starts at 0 (official code), so every
        block starts as an identity. False gives a standard init (gamma 1): the fair untrained
        baseline, since the zero-gamma net untrained is a strided pixel subsampler.
        ``input_norm``: ``none`` or ``imagenet`` (per-channel mean/std applied first, inside)."""
        super().__init__()
        if arch not in ARCHS:
            raise SimCLRError(f"unknown arch {arch!r}: choose one of {', '.join(ARCHS)}")
        if input_norm not in INPUT_NORMS:
            raise SimCLRError(f"unknown input normalisation {input_norm!r}: choose one of {', '.join(INPUT_NORMS)}")
        self.input_norm = input_norm
        stats = INPUT_NORMS[input_norm]
        # not persistent: state_dicts keep the same keys with or without it (the metadata says which)
        self.register_buffer("input_mean", torch.tensor(stats[0]).view(1, 3, 1, 1) if stats else None, False)
        self.register_buffer("input_std", torch.tensor(stats[1]).view(1, 3, 1, 1) if stats else None, False)
        if stem not in STEMS:
            raise SimCLRError(f"unknown stem {stem!r}: choose one of auto, {', '.join(STEMS)}")
        if not width_multiplier > 0:
            raise SimCLRError(f"--width-multiplier must be > 0, got {width_multiplier}")
        spec = ARCHS[arch]
        self.arch, self.width_multiplier, self.stem_type = arch, width_multiplier, stem
        widths = [max(1, int(round(c * width_multiplier))) for c in (64, 128, 256, 512)]
        stem_ch = widths[0]
        if stem == "cifar":
            self.stem = nn.Sequential(
                Conv2d(3, stem_ch, 3, 1, 1, bias=False), _bn(stem_ch), nn.ReLU(inplace=True)
            )
        else:
            self.stem = nn.Sequential(
                Conv2d(3, stem_ch, 7, 2, 3, bias=False),
                _bn(stem_ch),
                nn.ReLU(inplace=True),
                *([nn.MaxPool2d(3, 2, 1)] if stem == "imagenet" else []),
            )
        in_ch = stem_ch
        stages = []
        for i, (w, n) in enumerate(zip(widths, spec.layers, strict=False)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(spec.block(in_ch, w, stride, zero_init_residual))
                in_ch = w * spec.block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = in_ch
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_mean is not None:
            x = (x - self.input_mean) / self.input_std
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.pool(x), 1)


def resolve_stem(stem: str, image_size: int) -> str:
    """``auto`` -> ``cifar`` at <= 32 px (PAPER.md: a missing CIFAR stem costs a lot), else imagenet."""
    if stem == "auto":
        return "cifar" if image_size <= 32 else "imagenet"
    if stem not in STEMS:
        raise SimCLRError(f"unknown stem {stem!r}: choose one of auto, {', '.join(STEMS)}")
    return stem


def build_encoder(
    arch: str = "resnet18",
    width_multiplier: float = 1.0,
    stem: str = "auto",
    image_size: int = 224,
    zero_init_residual: bool = True,
    input_norm: str = "none",
) -> ResNet:
    """A randomly initialised encoder f. ``stem='auto'`` picks the CIFAR stem at <= 32 px."""
    return ResNet(arch, width_multiplier, resolve_stem(stem, image_size), zero_init_residual, input_norm)
