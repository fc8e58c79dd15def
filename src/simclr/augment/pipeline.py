"""The whole view generator: every random draw of a batch on the CPU, one small copy to the device, the ops there."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from simclr.augment.blur import blur_kernel_size, gaussian_blur
from simclr.augment.color import (
    JITTER_OPS,
    adjust_brightness_,
    adjust_contrast_,
    adjust_hue_,
    adjust_saturation_,
    sample_jitter,
    to_gray,
)
from simclr.augment.config import AugmentConfig
from simclr.augment.crop import crop_boxes_apply, sample_crop_boxes, uniform


def _apply_where(x: torch.Tensor, idx: torch.Tensor, fn) -> torch.Tensor:  # noqa: ANN001
    """fn applied to the samples ``idx`` of x (fn gets them and their indices, and may work in place).
    x must be a tensor the caller owns (the pipeline's own intermediate). The indices were found on
    the CPU, where the draws are, so their count is known without reading the device."""
    if idx.numel() == 0:
        return x
    if idx.numel() == x.shape[0]:
        return fn(x, idx)
    return x.index_copy_(0, idx, fn(x[idx], idx))


def _own_rgb(x: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """x with 3 channels, contiguous and never the caller's ``images``: what the in-place ops may write."""
    if x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1).contiguous()
    return x.clone(memory_format=torch.contiguous_format) if x is images else x.contiguous()


def _blur(x: torch.Tensor, t: dict[str, torch.Tensor]) -> torch.Tensor:
    """The blur on its samples; the kernel sized for x's side (the output's, unless the blur comes first)."""
    k, sigma = blur_kernel_size(x.shape[-1]), t["sigma"]
    return _apply_where(x, t["blur"], lambda v, i: gaussian_blur(v, sigma[i], k))


def _where(mask: torch.Tensor) -> torch.Tensor:
    return mask.nonzero().flatten()


class SimCLRAugment:
    """Batched SimCLR view generator: ``aug(images_uint8, generator) -> views``.

    Args:
        config: which ops run and with what probability and strength.
        size: output side S.

    A call is ``sample`` (every random draw, on the CPU, from the generator: crop boxes, flips, which
    samples each op touches, the jitter factors and order, blur sigmas: a few dozen numbers per view),
    ``AugmentParams.to`` (one host-to-device copy of all of them, pinned and non-blocking on CUDA),
    then ``apply`` on the device, which builds the crops' resize taps from the boxes there. Which
    samples an op touches is decided on the CPU, so the device path never reads the device back (no
    ``nonzero`` there): every op runs on exactly its samples.
    """

    def __init__(self, config: AugmentConfig, size: int) -> None:
        config.validate()
        self.cfg = config
        self.size = size

    def __call__(self, images: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        params = self.sample(images.shape[0], images.shape[2], images.shape[3], g)
        return self.apply(images, params.to(images.device))

    def sample(self, n: int, height: int, width: int, g: torch.Generator) -> AugmentParams:
        """Every random draw for a batch of n images of height x width, on the CPU."""
        cfg = self.cfg
        t: dict[str, torch.Tensor] = {}

        def draw(p: float) -> torch.Tensor:
            return torch.rand(n, generator=g) < p

        if cfg.crop:
            t["boxes"] = sample_crop_boxes(n, height, width, cfg.crop_scale, cfg.crop_ratio, g)
        t["flip"] = draw(cfg.flip_p)
        if cfg.color_strength > 0 and cfg.color_p > 0:
            apply = draw(cfg.color_p)
            p = sample_jitter(n, cfg.color_strength, g, cfg.brightness == "additive")
            for name in JITTER_OPS:
                t[name] = p[name]
            for pos in range(4):
                for k in range(4):
                    t[f"jitter{pos}{k}"] = _where(apply & (p["order"][:, pos] == k))
        if cfg.grayscale_p > 0:
            t["gray"] = _where(draw(cfg.grayscale_p))
        if cfg.blur and cfg.blur_p > 0:
            t["sigma"] = uniform(n, *cfg.blur_sigma, g).float()
            t["blur"] = _where(draw(cfg.blur_p))
        return AugmentParams(t)

    def apply(self, images: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """The views of uint8 (or float) ``images`` (B, C, H, W) for drawn ``params`` on their device."""
        cfg, t = self.cfg, params.tensors
        x = images.to(torch.get_default_dtype())
        if images.dtype == torch.uint8:
            x = x.div_(255)
        order = cfg.order
        fused_flip = order.index("flip") == order.index("crop") + 1  # the default: one matmul does both
        for op in order:
            if op == "crop":
                x = self._crop(x, t, fused_flip)
            elif op == "flip" and not fused_flip:
                x = torch.where(t["flip"].view(-1, 1, 1, 1), x.flip(3), x)
            elif op == "color" and "brightness" in t:
                x = self._color_jitter(_own_rgb(x, images), t)
            elif op == "grayscale" and "gray" in t:
                x = _apply_where(_own_rgb(x, images), t["gray"], lambda v, i: v.copy_(to_gray(v).expand_as(v)))
            elif op == "blur" and "blur" in t:
                x = _blur(_own_rgb(x, images), t)
        return _own_rgb(x, images)

    def _crop(self, x: torch.Tensor, t: dict[str, torch.Tensor], flip: bool) -> torch.Tensor:
        """The random resized crop (or, switched off, the resize to the output side), with the flip when
        ``flip``."""
        if self.cfg.crop:
            flips = t["flip"] if flip else torch.zeros_like(t["flip"])
            return crop_boxes_apply(x, t["boxes"], flips, self.size, self.cfg.crop_interpolation)
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True)
        return torch.where(t["flip"].view(-1, 1, 1, 1), x.flip(3), x) if flip else x

    def _color_jitter(self, x: torch.Tensor, t: dict[str, torch.Tensor]) -> torch.Tensor:
        bright, contrast, sat, hue = (t[k].to(x.dtype) for k in JITTER_OPS)
        additive = self.cfg.brightness == "additive"
        chan = self.cfg.contrast == "channel-mean"
        ops = (
            lambda v, i: adjust_brightness_(v, bright[i], additive),
            lambda v, i: adjust_contrast_(v, contrast[i], chan),
            lambda v, i: adjust_saturation_(v, sat[i]),
            lambda v, i: adjust_hue_(v, hue[i]),
        )
        for pos in range(4):
            for k, op in enumerate(ops):
                x = _apply_where(x, t[f"jitter{pos}{k}"], op)
        return x


class AugmentParams:
    """The random draws of one batch (``SimCLRAugment.sample``): named tensors, all on one device."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors

    def to(self, device: torch.device) -> AugmentParams:
        """The same draws on ``device``: on the CPU as they are; elsewhere packed into one buffer
        (``pack``), copied once from pinned memory without blocking the host, and unpacked there."""
        if device.type == "cpu" or not self.tensors:
            return self
        packed, layout = pack(self.tensors)
        if device.type == "cuda":
            packed = packed.pin_memory()
        return AugmentParams(unpack(packed.to(device, non_blocking=True), layout))


Layout = list[tuple[str, torch.Size, torch.dtype]]


def pack(tensors: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Layout]:
    """Tensors of any shapes and dtypes as one float64 vector and its layout. Exact for everything the
    augmentation draws: masks, integer indices below 2^53, float32 and float64 values."""
    layout = [(k, t.shape, t.dtype) for k, t in tensors.items()]
    return torch.cat([t.reshape(-1).to(torch.float64) for t in tensors.values()]), layout


def unpack(packed: torch.Tensor, layout: Layout) -> dict[str, torch.Tensor]:
    """``pack``'s tensors back, with their shapes and dtypes, on ``packed``'s device."""
    out, start = {}, 0
    for name, shape, dtype in layout:
        n = shape.numel()
        out[name] = packed[start : start + n].view(shape).to(dtype)
        start += n
    return out


__all__ = ["AugmentParams", "SimCLRAugment", "pack", "unpack"]
