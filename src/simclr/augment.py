"""SimCLR's data augmentation as batched tensor ops with independent randomness per sample.

The pipeline of PAPER.md (ImageNet setting), each op switchable with its probability:

1. random resized crop (area U(0.08, 1), aspect ratio in (3/4, 4/3), 10 attempts then the
   whole image with the ratio clamped, as torchvision) resized bicubic to the output size
   (the paper; ``crop_interpolation="bilinear"`` is torchvision's default), then horizontal
   flip with p = 0.5;
2. colour jitter with strength s, applied with p = 0.8: brightness 0.8s, contrast 0.8s,
   saturation 0.8s, hue 0.2s, in a random order for every sample, clipped to [0, 1] after
   each op; then grayscale with p = 0.2;
3. Gaussian blur with p = 0.5, sigma ~ U(0.1, 2.0), kernel = 10% of the side (23 taps at
   224 px); off by default at <= 32 px.

Inputs are uint8 images (B, C, H, W) with C = 1 or 3; outputs are float (B, 3, S, S) in [0, 1]
(no mean/std normalisation, as in the official code). All random draws come from one
``torch.Generator``, so a batch's views are a pure function of its seed.

Where the paper's v1 and the official code differ, ``AugmentConfig`` has an option:
``brightness="multiplicative"`` (official v2, torchvision) or ``"additive"`` (v1, delta ~
U[-0.8s, 0.8s]); ``contrast="gray-mean"`` (torchvision: blend toward the mean of the grayscale
image) or ``"channel-mean"`` (official: toward each channel's mean).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from simclr.errors import SimCLRError

CROP_INTERPOLATIONS = ("bicubic", "bilinear")


@dataclass(frozen=True)
class AugmentConfig:
    crop: bool = True
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    crop_interpolation: str = "bicubic"
    flip_p: float = 0.5
    color_strength: float = 1.0
    color_p: float = 0.8
    brightness: str = "multiplicative"
    contrast: str = "gray-mean"
    grayscale_p: float = 0.2
    blur: bool = True
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)

    def validate(self) -> None:
        for name in ("flip_p", "color_p", "grayscale_p", "blur_p"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise SimCLRError(f"augmentation {name} must be in [0, 1], got {p}")
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise SimCLRError(f"crop_scale must satisfy 0 < min <= max <= 1, got {self.crop_scale}")
        if not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise SimCLRError(f"crop_ratio must satisfy 0 < min <= max, got {self.crop_ratio}")
        if self.color_strength < 0:
            raise SimCLRError(f"--color-strength must be >= 0, got {self.color_strength}")
        if self.crop_interpolation not in CROP_INTERPOLATIONS:
            raise SimCLRError(
                f"unknown crop interpolation {self.crop_interpolation!r}: choose {' or '.join(CROP_INTERPOLATIONS)}"
            )
        if self.brightness not in ("multiplicative", "additive"):
            raise SimCLRError("brightness must be 'multiplicative' or 'additive'")
        if self.contrast not in ("gray-mean", "channel-mean"):
            raise SimCLRError("contrast must be 'gray-mean' or 'channel-mean'")
        if not 0 < self.blur_sigma[0] <= self.blur_sigma[1]:
            raise SimCLRError(f"blur_sigma must satisfy 0 < min <= max, got {self.blur_sigma}")


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g, dtype=torch.float64) * (hi - lo) + lo


def sample_crop_boxes(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    g: torch.Generator,
    attempts: int = 10,
) -> torch.Tensor:
    """(n, 4) integer boxes (top, left, h, w) drawn as torchvision's RandomResizedCrop does."""
    area = height * width
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    target = area * _uniform(n * attempts, scale[0], scale[1], g).view(n, attempts)
    aspect = torch.exp(_uniform(n * attempts, log_r[0], log_r[1], g)).view(n, attempts)
    w = torch.round(torch.sqrt(target * aspect)).long()
    h = torch.round(torch.sqrt(target / aspect)).long()
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.where(ok.any(1), ok.long().argmax(1), torch.full((n,), -1))
    # Fallback (no attempt fits): the whole image with its aspect ratio clamped to `ratio`.
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        fh, fw = height, int(round(height * ratio[1]))
    else:
        fw, fh = width, height
    rows = torch.arange(n)
    sel = first.clamp(min=0)
    bw = torch.where(first >= 0, w[rows, sel], torch.full((n,), fw))
    bh = torch.where(first >= 0, h[rows, sel], torch.full((n,), fh))
    u_top = torch.rand(n, generator=g, dtype=torch.float64)
    u_left = torch.rand(n, generator=g, dtype=torch.float64)
    top = torch.where(first >= 0, (u_top * (height - bh + 1)).long(), (height - bh) // 2)
    left = torch.where(first >= 0, (u_left * (width - bw + 1)).long(), (width - bw) // 2)
    return torch.stack([top, left, bh, bw], 1)


def _cubic_weights(t: torch.Tensor, a: float = -0.75) -> torch.Tensor:
    """Keys' cubic convolution weights (torch's bicubic, a = -0.75) of the taps at offsets -1, 0,
    1, 2 from floor(u), for the fractional parts ``t`` (..., 4)."""
    d = torch.stack([t + 1, t, 1 - t, 2 - t], -1)
    near = ((a + 2) * d - (a + 3)) * d * d + 1  # |d| <= 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a  # 1 < |d| < 2
    return torch.where(d <= 1, near, far)


def resize_matrices(
    start: torch.Tensor, length: torch.Tensor, in_size: int, out_size: int, mode: str,
    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """(B, out_size, in_size) matrices R with R[b] @ signal = the segment [start, start + length)
    of each signal resized to out_size, as torch's ``interpolate(align_corners=False)`` resizes
    the cropped segment alone: half-pixel centres, taps clamped to the segment's own ends (so
    nothing outside the crop is read), no antialiasing."""
    b = start.shape[0]
    length = length.to(torch.float64).view(b, 1)
    u = (torch.arange(out_size, dtype=torch.float64) + 0.5).view(1, -1) * length / out_size - 0.5
    if mode == "bilinear":
        u = u.clamp(min=0)  # torch clamps the source coordinate at the first centre
        i0 = u.floor()
        frac = u - i0
        taps = torch.stack([i0, i0 + 1], -1)
        weights = torch.stack([1 - frac, frac], -1)
    else:
        i0 = u.floor()
        taps = i0.unsqueeze(-1) + torch.arange(-1, 3, dtype=torch.float64)
        weights = _cubic_weights(u - i0)
    taps = torch.minimum(taps.clamp(min=0), length.view(b, 1, 1) - 1) + start.to(torch.float64).view(b, 1, 1)
    # the taps and weights are small (B, out, <= 4): only they travel; the matrices are built in place
    matrix = torch.zeros(b, out_size, in_size, device=device, dtype=dtype)
    return matrix.scatter_add_(2, taps.long().to(device), weights.to(device=device, dtype=dtype))


def crop_resize_flip(
    x: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor, size: int, mode: str = "bicubic"
) -> torch.Tensor:
    """Crop each image of float ``x`` (B, C, H, W) to its box, resize to ``size``, flip where set.

    Exactly torchvision's ``resized_crop`` on tensors (crop, then ``interpolate`` with half-pixel
    centres, bilinear or bicubic, no antialiasing), as two batched matrix products per batch: only
    the pixels inside each box are read. (Sampling the whole image at the box's coordinates instead
    blends pixels from outside the box into its edge rows and columns: views with more context,
    whose positives are easier: on Fashion-MNIST a trained network's NT-Xent on such views was
    0.015 lower than on torchvision's views of the same images, BENCHMARKS.md.)
    No antialiasing, so it is meant for crops at or above the output size; downscaling by large
    factors should happen before, as the folder loader does.
    """
    b, _, height, width = x.shape
    top, left, bh, bw = boxes.unbind(1)
    rows = resize_matrices(top.cpu(), bh.cpu(), height, size, mode, x.device, x.dtype)
    cols = resize_matrices(left.cpu(), bw.cpu(), width, size, mode, x.device, x.dtype)
    cols = torch.where(flip.to(x.device).view(b, 1, 1), cols.flip(1), cols)
    out = torch.matmul(torch.matmul(rows.unsqueeze(1), x), cols.transpose(1, 2).unsqueeze(1))
    return out.clamp_(0, 1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma, as torchvision: (B, 3, H, W) -> (B, 1, H, W)."""
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


# The colour ops below come in two forms: ``adjust_*`` returns a new tensor (the public, pure
# form, tested against torchvision), ``_*_`` overwrites its argument. The pipeline uses the
# in-place forms on its own intermediate: fresh large temporaries are what costs most on a CPU
# (every new buffer is page-faulted in), 4-7x the arithmetic at 224 px (BENCHMARKS.md).


def _per_sample(factor: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return factor.view(-1, 1, 1, 1).to(x)


def _brightness_(x: torch.Tensor, factor: torch.Tensor, additive: bool = False) -> torch.Tensor:
    f = _per_sample(factor, x)
    return (x.add_(f) if additive else x.mul_(f)).clamp_(0, 1)


def _contrast_(x: torch.Tensor, factor: torch.Tensor, channel_mean: bool = False) -> torch.Tensor:
    f = _per_sample(factor, x)
    mean = x.mean((2, 3), keepdim=True) if channel_mean else _gray(x).mean((1, 2, 3), keepdim=True)
    return x.mul_(f).add_((1 - f) * mean).clamp_(0, 1)


def _saturation_(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    f = _per_sample(factor, x)
    gray = _gray(x).mul_(1 - f)
    return x.mul_(f).add_(gray).clamp_(0, 1)


def _hue_(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
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
    return _brightness_(x.clone(), factor, additive)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor, channel_mean: bool = False) -> torch.Tensor:
    return _contrast_(x.clone(), factor, channel_mean)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _saturation_(x.clone(), factor)


def adjust_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    return _hue_(x.clone(), shift)


def blur_kernel_size(side: int) -> int:
    """Official code: kernel = side // 10 rounded to odd (23 at 224 px, 3 at 32 px)."""
    return (side // 10) // 2 * 2 + 1


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Separable Gaussian blur with a sigma per sample (reflect padding, as torchvision)."""
    b, c, h, w = x.shape
    r = kernel_size // 2
    if r == 0:
        return x
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-(t.view(1, -1) ** 2) / (2 * sigma.to(x).view(-1, 1) ** 2))
    k = k / k.sum(1, keepdim=True)  # (B, K)
    k = k.repeat_interleave(c, 0)  # (B*C, K)
    y = x.reshape(1, b * c, h, w)
    y = F.pad(y, (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(b * c, 1, 1, -1), groups=b * c)
    y = F.conv2d(y, k.view(b * c, 1, -1, 1), groups=b * c)
    return y.view(b, c, h, w)


def _apply_where(x: torch.Tensor, mask: torch.Tensor, fn) -> torch.Tensor:  # noqa: ANN001
    """fn applied to the samples of x where ``mask`` is set (fn gets their indices and may work in
    place). x must be a tensor the caller owns (the pipeline's own intermediate)."""
    idx = mask.nonzero().flatten()
    if idx.numel() == 0:
        return x
    if idx.numel() == x.shape[0]:
        return fn(x, idx)
    return x.index_copy_(0, idx, fn(x[idx], idx))


class SimCLRAugment:
    """Batched SimCLR view generator: ``aug(images_uint8, generator) -> views``.

    Args:
        config: which ops run and with what probability and strength.
        size: output side S.
    """

    def __init__(self, config: AugmentConfig, size: int) -> None:
        config.validate()
        self.cfg = config
        self.size = size

    def __call__(self, images: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        cfg = self.cfg
        n = images.shape[0]
        x = images.float().div_(255) if images.dtype == torch.uint8 else images.float()
        dev = x.device

        def draw(p: float) -> torch.Tensor:
            return (torch.rand(n, generator=g) < p).to(dev)

        if cfg.crop:
            boxes = sample_crop_boxes(n, x.shape[2], x.shape[3], cfg.crop_scale, cfg.crop_ratio, g)
            flip = draw(cfg.flip_p)
            x = crop_resize_flip(x, boxes, flip, self.size, cfg.crop_interpolation)
        else:
            if x.shape[-1] != self.size or x.shape[-2] != self.size:
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True)
            flip = draw(cfg.flip_p)
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        # the colour ops below write in place: make sure x is our own tensor, never the caller's
        x = x.clone(memory_format=torch.contiguous_format) if x is images else x.contiguous()

        s = cfg.color_strength
        if s > 0 and cfg.color_p > 0:
            x = self._color_jitter(x, draw(cfg.color_p), s, g)
        if cfg.grayscale_p > 0:
            x = _apply_where(x, draw(cfg.grayscale_p), lambda v, i: v.copy_(_gray(v).expand_as(v)))
        if cfg.blur and cfg.blur_p > 0:
            k = blur_kernel_size(self.size)
            sigma = _uniform(n, *cfg.blur_sigma, g).float().to(dev)
            x = _apply_where(x, draw(cfg.blur_p), lambda v, i: gaussian_blur(v, sigma[i], k))
        return x

    def _color_jitter(self, x: torch.Tensor, apply: torch.Tensor, s: float, g: torch.Generator):
        p = sample_jitter(x.shape[0], s, g, self.cfg.brightness == "additive")
        dev = x.device
        bright, contrast, sat, hue = (p[k].float().to(dev) for k in ("brightness", "contrast", "saturation", "hue"))
        order = p["order"].to(dev)
        additive = self.cfg.brightness == "additive"
        chan = self.cfg.contrast == "channel-mean"
        ops = (
            lambda v, i: _brightness_(v, bright[i], additive),
            lambda v, i: _contrast_(v, contrast[i], chan),
            lambda v, i: _saturation_(v, sat[i]),
            lambda v, i: _hue_(v, hue[i]),
        )
        for pos in range(4):
            for k, op in enumerate(ops):
                x = _apply_where(x, apply & (order[:, pos] == k), op)
        return x


def sample_jitter(n: int, s: float, g: torch.Generator, additive: bool = False) -> dict[str, torch.Tensor]:
    """Colour jitter parameters of strength s for n samples, as torchvision's ColorJitter(0.8s,
    0.8s, 0.8s, 0.2s): factors U(max(0, 1 - 0.8s), 1 + 0.8s), hue shift U(-0.2s, 0.2s) (at most
    0.5), and ``order`` (n, 4), a uniformly random order of (brightness, contrast, saturation,
    hue) per sample. With ``additive``, brightness is a delta U(-0.8s, 0.8s) (SimCLR v1)."""
    lo, hi = max(0.0, 1 - 0.8 * s), 1 + 0.8 * s
    bright = _uniform(n, -0.8 * s, 0.8 * s, g) if additive else _uniform(n, lo, hi, g)
    return {
        "brightness": bright,
        "contrast": _uniform(n, lo, hi, g),
        "saturation": _uniform(n, lo, hi, g),
        "hue": _uniform(n, -min(0.5, 0.2 * s), min(0.5, 0.2 * s), g),
        "order": torch.argsort(torch.rand(n, 4, generator=g), dim=1),
    }
