"""Conv2d that runs tiny-feature-map convolutions as one dense matrix multiply on the CPU.

At small image sizes the last ResNet stages see 2x2 or 1x1 feature maps. There a padded 3x3
convolution is mostly multiplications by the zero padding, and oneDNN's CPU kernels for it are
slow: measured here (ResNet-18, ImageNet stem, 28 px, batch 2x256) the three 3x3 convs at 1x1
took 40 % of a training step. Such a convolution is a linear map from the flattened input
(H*W*C values) to the flattened output (Ho*Wo*O values) whose matrix holds the kernel taps,
each placed where it meets a real input pixel. When H*W < kh*kw that matrix has fewer entries
than the taps the convolution applies to each output pixel, so the matmul does less work, and it
runs at the BLAS rate. The result is the same function with the same parameters (equal up to
floating-point summation order), and its gradient flows to the same weight: state dicts, init
and export are unchanged. GPUs keep cuDNN's kernels (the rule is only applied on the CPU).
"""

from __future__ import annotations

import functools

import torch
from torch import nn


@functools.lru_cache(maxsize=256)
def tap_selector(
    h: int, w: int, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int], device: str = "cpu"
) -> tuple[torch.Tensor, int, int]:
    """A 0/1 matrix S of shape (kh*kw, h*w*ho*wo): S[k, p*ho*wo + q] = 1 when kernel tap k links
    input pixel p to output pixel q (row-major). At most one tap links a pair; pairs that only
    meet the zero padding have none. Returns (S, ho, wo)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    iy = torch.arange(h).view(h, 1, 1, 1)
    ix = torch.arange(w).view(1, w, 1, 1)
    oy = torch.arange(ho).view(1, 1, ho, 1)
    ox = torch.arange(wo).view(1, 1, 1, wo)
    ky, kx = iy - oy * sh + ph, ix - ox * sw + pw
    inside = ((ky >= 0) & (ky < kh) & (kx >= 0) & (kx < kw)).reshape(-1)
    taps = (ky * kw + kx).reshape(-1)
    selector = torch.zeros(kh * kw, taps.numel())
    cols = torch.arange(taps.numel())[inside]
    selector[taps[inside], cols] = 1.0
    return selector.to(device), ho, wo


def dense_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding)`` (groups 1, dilation 1) as one matmul."""
    b, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    # torch.compile traces the (pure) builder itself, without the cache it warns about
    build = tap_selector.__wrapped__ if torch.compiler.is_compiling() else tap_selector
    selector, ho, wo = build(h, w, (kh, kw), stride, padding, str(x.device))
    # Placing the taps is itself a (tiny) matmul, so its backward is one too (no index_put).
    matrix = weight.reshape(o * c, kh * kw) @ selector.to(weight.dtype)  # (o*c, h*w*ho*wo)
    # rows (input pixel, in-channel), columns (output pixel, out-channel)
    matrix = matrix.view(o, c, h * w, ho * wo).permute(2, 1, 3, 0).reshape(h * w * c, ho * wo * o)
    flat = x.permute(0, 2, 3, 1).reshape(b, h * w * c)  # free for channels_last input
    y = flat @ matrix if bias is None else torch.addmm(bias.repeat(ho * wo), flat, matrix)
    return y.view(b, ho, wo, o).permute(0, 3, 1, 2)


def use_dense(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    """The dense form needs fewer multiply-adds than the padded convolution (H*W < kh*kw)."""
    kh, kw = conv.kernel_size
    return (
        x.device.type == "cpu"
        and x.dim() == 4
        and conv.groups == 1
        and conv.dilation == (1, 1)
        and conv.padding_mode == "zeros"
        and isinstance(conv.padding, tuple)
        and x.shape[2] * x.shape[3] < kh * kw
    )


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` that switches to :func:`dense_conv2d` on tiny CPU feature maps
    (``dense_ok = False`` keeps the plain convolution, e.g. for a shape-independent export)."""

    dense_ok: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dense_ok and use_dense(x, self):
            return dense_conv2d(x, self.weight, self.bias, self.stride, self.padding)  # type: ignore[arg-type]
        return super().forward(x)
