"""Gaussian blur with a sigma per sample, as the official code sizes its kernel."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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


__all__ = ["blur_kernel_size", "gaussian_blur"]
