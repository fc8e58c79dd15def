"""Colour distortion: brightness, contrast, saturation and hue as torchvision's ColorJitter computes them,
with a factor per sample, the jitter parameters of strength s, and grayscale."""

from __future__ import annotations

import torch

from simclr.augment.crop import uniform

# the colour ops, in the order of sample_jitter's "order" codes
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")


def to_gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma, as torchvision: (B, 3, H, W) -> (B, 1, H, W)."""
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


# The colour ops below come in two forms: ``adjust_*`` returns a new tensor (the pure form, tested
# against torchvision), ``adjust_*_`` overwrites its argument. The pipeline uses the
# in-place forms on its own intermediate: fresh large temporaries are what costs most on a CPU
# (every new buffer is page-faulted in), 4-7x the arithmetic at 224 px (BENCHMARKS.md).


def _per_sample(factor: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return factor.view(-1, 1, 1, 1).to(x)


def adjust_brightness_(x: torch.Tensor, factor: torch.Tensor, additive: bool = False) -> torch.Tensor:
    f = _per_sample(factor, x)
    return (x.add_(f) if additive else x.mul_(f)).clamp_(0, 1)


def adjust_contrast_(x: torch.Tensor, factor: torch.Tensor, channel_mean: bool = False) -> torch.Tensor:
    f = _per_sample(factor, x)
    mean = x.mean((2, 3), keepdim=True) if channel_mean else to_gray(x).mean((1, 2, 3), keepdim=True)
    return x.mul_(f).add_((1 - f) * mean).clamp_(0, 1)


def adjust_saturation_(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = _per_sample(factor, x)
    gray = to_gray(x).mul_(1 - f)
    return x.mul_(f).add_(gray).clamp_(0, 1)


def adjust_hue_(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Hue rotation through HSV as torchvision (same sector tie-breaking: red, then green, then
    blue), written without building the HSV image: with chroma c = max - min and the hue in sixths
    h6, each output channel is max - c * clamp(min(k, 4 - k), 0, 1), k = (n + h6 + 6 shift) mod 6."""
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    chroma = maxc - x.min(1)[0]
    safe = torch.where(chroma == 0, torch.ones_like(chroma), chroma)
    h6 = torch.where(maxc == r, (g - b).div_(safe),
                     torch.where(maxc == g, (b - r).div_(safe).add_(2.0), (r - g).div_(safe).add_(4.0)))
    # torchvision: h = fmod(h6 / 6 + 1, 1), then (h + shift) mod 1; in sixths:
    h6 = torch.fmod(h6.div_(6.0).add_(1.0), 1.0).add_(_per_sample(shift, x).view(-1, 1, 1))
    h6 = torch.remainder(h6, 1.0).mul_(6.0)
    k = torch.empty_like(h6)
    ramp = torch.empty_like(h6)
    for c, n in enumerate((5.0, 3.0, 1.0)):
        torch.remainder(torch.add(h6, n, out=k), 6.0, out=k)
        torch.minimum(k, ramp.copy_(k).neg_().add_(4.0), out=ramp).clamp_(0, 1).mul_(chroma)
        torch.sub(maxc, ramp, out=x[:, c])
    return x.clamp_(0, 1)


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor, additive: bool = False) -> torch.Tensor:
    return adjust_brightness_(x.clone(), factor, additive)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor, channel_mean: bool = False) -> torch.Tensor:
    return adjust_contrast_(x.clone(), factor, channel_mean)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return adjust_saturation_(x.clone(), factor)


def adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    return adjust_hue_(x.clone(), shift)


def sample_jitter(n: int, s: float, g: torch.Generator, additive: bool = False) -> dict[str, torch.Tensor]:
    """Colour jitter parameters of strength s for n samples, as torchvision's ColorJitter(0.8s,
    0.8s, 0.8s, 0.2s): factors U(max(0, 1 - 0.8s), 1 + 0.8s), hue shift U(-0.2s, 0.2s) (at most
    0.5), and ``order`` (n, 4), a uniformly random order of (brightness, contrast, saturation,
    hue) per sample. With ``additive``, brightness is a delta U(-0.8s, 0.8s) (SimCLR v1)."""
    lo, hi = max(0.0, 1 - 0.8 * s), 1 + 0.8 * s
    bright = uniform(n, -0.8 * s, 0.8 * s, g) if additive else uniform(n, lo, hi, g)
    return {
        "brightness": bright,
        "contrast": uniform(n, lo, hi, g),
        "saturation": uniform(n, lo, hi, g),
        "hue": uniform(n, -min(0.5, 0.2 * s), min(0.5, 0.2 * s), g),
        "order": torch.argsort(torch.rand(n, 4, generator=g), dim=1),
    }


__all__ = [
    "JITTER_OPS", "adjust_brightness", "adjust_brightness_", "adjust_contrast", "adjust_contrast_", "adjust_hue",
    "adjust_hue_", "adjust_saturation", "adjust_saturation_", "sample_jitter", "to_gray",
]
