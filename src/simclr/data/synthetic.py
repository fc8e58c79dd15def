"""A generated, labelled image dataset where SimCLR's invariances matter.

Classes are shapes (circle, square, triangle, cross, ring, star, half-disc, hexagon).
Everything else is a nuisance drawn independently per image: the shape's colour, the
background colour and its gradient, position, scale, rotation and pixel noise. A random
encoder sees mostly colour and position; SimCLR's crop and colour augmentations teach it to
ignore both, so a short pretraining run beats the random baseline.

Deterministic: image i of a split is a pure function of (seed, split, i), whatever ``limit``.
"""

from __future__ import annotations

import math

import torch

CLASSES = ("circle", "square", "triangle", "cross", "ring", "star", "half-disc", "hexagon")
DEFAULT_TRAIN_SIZE = 10_000
DEFAULT_TEST_SIZE = 2_000
CHUNK = 1024


def _polygon(x: torch.Tensor, y: torch.Tensor, n: int, apothem: float) -> torch.Tensor:
    d = torch.full_like(x, -1e9)
    for k in range(n):
        a = 2 * math.pi * k / n + math.pi / 2
        d = torch.maximum(d, x * math.cos(a) + y * math.sin(a) - apothem)
    return d


def _box(x: torch.Tensor, y: torch.Tensor, a: float, b: float) -> torch.Tensor:
    return torch.maximum(x.abs() - a, y.abs() - b)


def _sdf(cls: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Signed distance (negative inside) of shape ``cls`` in its local unit frame."""
    r = torch.sqrt(x * x + y * y)
    if cls == 0:
        return r - 0.8
    if cls == 1:
        return _box(x, y, 0.68, 0.68)
    if cls == 2:
        return _polygon(x, y, 3, 0.45)
    if cls == 3:
        return torch.minimum(_box(x, y, 0.85, 0.28), _box(x, y, 0.28, 0.85))
    if cls == 4:
        return (r - 0.62).abs() - 0.2
    if cls == 5:
        theta = torch.atan2(y, x)
        return (r - (0.55 + 0.32 * torch.cos(5 * theta))) * 0.7
    if cls == 6:
        return torch.maximum(r - 0.85, -y - 0.1)
    return _polygon(x, y, 6, 0.72)


def _chunk(ids: torch.Tensor, seed: int, split_code: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = ids.numel()
    # One generator per image keeps image i independent of the chunking and of `limit`.
    params = torch.empty(n, 16)
    for row, i in enumerate(ids.tolist()):
        g = torch.Generator().manual_seed((seed * 1_000_003 + split_code * 7_919 + i) % (2**63))
        params[row] = torch.rand(16, generator=g)
    labels = (ids * 5 + (params[:, 15] * len(CLASSES)).long()) % len(CLASSES)
    lin = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")  # (S, S) in [-1, 1]
    scale = 0.55 + 0.3 * params[:, 0]  # shape radius as a fraction of the image
    cx = (params[:, 1] * 2 - 1) * (0.95 - scale)
    cy = (params[:, 2] * 2 - 1) * (0.95 - scale)
    rot = params[:, 3] * 2 * math.pi
    dx = gx[None] - cx[:, None, None]
    dy = gy[None] - cy[:, None, None]
    c, s = torch.cos(rot)[:, None, None], torch.sin(rot)[:, None, None]
    lx = (c * dx + s * dy) / scale[:, None, None]
    ly = (-s * dx + c * dy) / scale[:, None, None]
    sdf = torch.empty(n, size, size)
    for k in range(len(CLASSES)):
        m = labels == k
        if m.any():
            sdf[m] = _sdf(k, lx[m], ly[m])
    pixel = 2.0 / size / scale[:, None, None]  # one pixel in local units: anti-aliased edge
    alpha = (0.5 - sdf / pixel).clamp(0, 1).unsqueeze(1)  # (n, 1, S, S)
    fg = params[:, 4:7]
    bg = params[:, 7:10]
    # Keep the shape visible: push the background's brightness away from the foreground's.
    lum = lambda v: v @ torch.tensor([0.299, 0.587, 0.114])  # noqa: E731
    shift = torch.where(lum(fg) > 0.5, -0.45, 0.45).unsqueeze(1)
    bg = (bg * 0.5 + 0.25 + shift).clamp(0, 1)
    grad_dir = params[:, 10] * 2 * math.pi
    ramp = torch.cos(grad_dir)[:, None, None] * gx + torch.sin(grad_dir)[:, None, None] * gy
    bg_img = bg[:, :, None, None] * (1 + 0.25 * params[:, 11, None, None, None] * ramp[:, None])
    img = alpha * fg[:, :, None, None] + (1 - alpha) * bg_img
    noise_g = torch.Generator().manual_seed((seed * 31 + split_code * 17 + int(ids[0])) % (2**63))
    img = img + 0.04 * params[:, 12, None, None, None] * torch.randn(img.shape, generator=noise_g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8), labels


def generate(n: int, split: str = "train", seed: int = 0, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images (n, 3, size, size) uint8 and labels (n,) int64 of ``split`` ('train'/'test')."""
    split_code = {"train": 1, "test": 2}[split]
    imgs, labels = [], []
    for start in range(0, n, CHUNK):
        ids = torch.arange(start, min(n, start + CHUNK))
        im, lb = _chunk(ids, seed, split_code, size)
        imgs.append(im)
        labels.append(lb)
    if not imgs:
        return torch.empty(0, 3, size, size, dtype=torch.uint8), torch.empty(0, dtype=torch.long)
    return torch.cat(imgs), torch.cat(labels)
