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

``AugmentConfig.order`` runs the ops in another order (the paper's Figure 5 composes them in both
orders); the random draws do not depend on it.

Inputs are uint8 images (B, C, H, W) with C = 1 or 3; outputs are float (B, 3, S, S) in [0, 1]
(no mean/std normalisation, as in the official code). All random draws come from one
``torch.Generator``, so a batch's views are a pure function of its seed.

Where the paper's v1 and the official code differ, ``AugmentConfig`` has an option:
``brightness="multiplicative"`` (official v2, torchvision) or ``"additive"`` (v1, delta ~
U[-0.8s, 0.8s]); ``contrast="gray-mean"`` (torchvision: blend toward the mean of the grayscale
image) or ``"channel-mean"`` (official: toward each channel's mean).
"""

from simclr.augment.blur import blur_kernel_size, gaussian_blur
from simclr.augment.color import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    sample_jitter,
    to_gray,
)
from simclr.augment.config import CROP_INTERPOLATIONS, OPS, AugmentConfig
from simclr.augment.crop import crop_resize_flip, resize_matrices, sample_crop_boxes
from simclr.augment.pipeline import AugmentParams, SimCLRAugment, pack, unpack

__all__ = [
    "CROP_INTERPOLATIONS", "OPS", "AugmentConfig", "AugmentParams", "SimCLRAugment", "adjust_brightness",
    "adjust_contrast", "adjust_hue", "adjust_saturation", "blur_kernel_size", "crop_resize_flip", "gaussian_blur",
    "pack", "resize_matrices", "sample_crop_boxes", "sample_jitter", "to_gray", "unpack",
]
