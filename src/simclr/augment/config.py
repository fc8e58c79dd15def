"""Which augmentation ops run, with what probability and strength (PAPER.md's defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from simclr.errors import SimCLRError

CROP_INTERPOLATIONS = ("bicubic", "bilinear")
# the ops in the order the paper's pipeline runs them (``AugmentConfig.order`` may permute them)
OPS = ("crop", "flip", "color", "grayscale", "blur")


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
    # the order the ops run in: a permutation of OPS ("crop" resizes to the output side where it stands,
    # switched on or not; ops before it run at the input's size). For the paper's Figure 5 (ordered pairs).
    order: tuple[str, ...] = OPS
    # the paper's asymmetric setting of Figure 5: the first view is the image itself (resized), only the
    # second is augmented. For ablations, not training: SimCLR augments both views.
    identity_view: bool = False

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
        if sorted(self.order) != sorted(OPS):
            raise SimCLRError(f"augmentation order must name each of {', '.join(OPS)} once, got {list(self.order)}")


__all__ = ["CROP_INTERPOLATIONS", "OPS", "AugmentConfig"]
