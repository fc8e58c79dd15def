"""The random resized crop: boxes drawn as torchvision's RandomResizedCrop draws them, and the crop,
resize and flip of a whole batch as two matrix products with per-sample resize matrices."""

from __future__ import annotations

import math

import torch


def uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
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
    target = area * uniform(n * attempts, scale[0], scale[1], g).view(n, attempts)
    aspect = torch.exp(uniform(n * attempts, log_r[0], log_r[1], g)).view(n, attempts)
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


def resize_taps(
    start: torch.Tensor, length: torch.Tensor, in_size: int, out_size: int, mode: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The taps (B, out_size, K) (source indices, int64) and their weights (float64), K = 2 (bilinear)
    or 4 (bicubic), of resizing the segment [start, start + length) of each signal to out_size, as
    torch's ``interpolate(align_corners=False)`` resizes the cropped segment alone: half-pixel
    centres, taps clamped to the segment's own ends (so nothing outside the crop is read), no
    antialiasing. Computed where ``start`` and ``length`` are: on the training device, from the boxes
    (B x 4 numbers a batch instead of B x out_size x K taps and weights to copy there)."""
    b, dev = start.shape[0], start.device
    length = length.to(torch.float64).view(b, 1)
    u = (torch.arange(out_size, dtype=torch.float64, device=dev) + 0.5).view(1, -1) * length / out_size - 0.5
    if mode == "bilinear":
        u = u.clamp(min=0)  # torch clamps the source coordinate at the first centre
        i0 = u.floor()
        frac = u - i0
        taps = torch.stack([i0, i0 + 1], -1)
        weights = torch.stack([1 - frac, frac], -1)
    else:
        i0 = u.floor()
        taps = i0.unsqueeze(-1) + torch.arange(-1, 3, dtype=torch.float64, device=dev)
        weights = _cubic_weights(u - i0)
    taps = torch.minimum(taps.clamp(min=0), length.view(b, 1, 1) - 1) + start.to(torch.float64).view(b, 1, 1)
    return taps.long(), weights


def resize_matrix(taps: torch.Tensor, weights: torch.Tensor, in_size: int, dtype: torch.dtype) -> torch.Tensor:
    """(B, out, in_size) matrices from ``resize_taps``'s taps and weights, built where they are."""
    b, out_size, _ = taps.shape
    matrix = torch.zeros(b, out_size, in_size, device=taps.device, dtype=dtype)
    return matrix.scatter_add_(2, taps, weights.to(dtype))


def resize_matrices(
    start: torch.Tensor, length: torch.Tensor, in_size: int, out_size: int, mode: str,
    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """(B, out_size, in_size) matrices R with R[b] @ signal = the segment [start, start + length)
    of each signal resized to out_size (``resize_taps``, then ``resize_matrix``, on ``device``)."""
    taps, weights = resize_taps(start.to(device), length.to(device), in_size, out_size, mode)
    return resize_matrix(taps, weights, in_size, dtype)


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
    return crop_boxes_apply(x, boxes.to(x.device), flip.to(x.device), size, mode)


def crop_boxes_apply(x: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """``crop_resize_flip`` with ``boxes`` and ``flip`` already on x's device: the taps are built there."""
    top, left, bh, bw = boxes.unbind(1)
    rt, rw = resize_taps(top, bh, x.shape[2], size, mode)
    ct, cw = resize_taps(left, bw, x.shape[3], size, mode)
    return crop_apply(x, rt, rw, ct, cw, flip)


def crop_apply(
    x: torch.Tensor, row_taps: torch.Tensor, row_w: torch.Tensor, col_taps: torch.Tensor, col_w: torch.Tensor,
    flip: torch.Tensor,
) -> torch.Tensor:
    b, _, height, width = x.shape
    rows = resize_matrix(row_taps, row_w, height, x.dtype)
    cols = resize_matrix(col_taps, col_w, width, x.dtype)
    cols = torch.where(flip.view(b, 1, 1), cols.flip(1), cols)
    out = torch.matmul(torch.matmul(rows.unsqueeze(1), x), cols.transpose(1, 2).unsqueeze(1))
    return out.clamp_(0, 1)


__all__ = [
    "crop_apply", "crop_boxes_apply", "crop_resize_flip", "resize_matrices", "resize_matrix", "resize_taps",
    "sample_crop_boxes", "uniform",
]
