"""The batched SimCLR augmentation: each op against torchvision, crop geometry, shape, range,
seeded determinism, switches."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from simclr.augment import (
    AugmentConfig,
    SimCLRAugment,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    blur_kernel_size,
    crop_resize_flip,
    gaussian_blur,
    sample_crop_boxes,
)
from simclr.errors import SimCLRError


def images(n: int = 6, side: int = 20, channels: int = 3) -> torch.Tensor:
    return torch.randint(0, 256, (n, channels, side, side), generator=torch.Generator().manual_seed(3),
                         dtype=torch.uint8)


@pytest.mark.parametrize(
    "ours,theirs,factors",
    [
        (adjust_brightness, TF.adjust_brightness, [0.6, 1.0, 1.4]),
        (adjust_contrast, TF.adjust_contrast, [0.6, 1.0, 1.4]),
        (adjust_saturation, TF.adjust_saturation, [0.0, 0.6, 1.4]),
        (adjust_hue, TF.adjust_hue, [-0.1, 0.0, 0.1]),
    ],
)
def test_colour_ops_match_torchvision(ours, theirs, factors) -> None:  # noqa: ANN001
    x = images(3).float() / 255
    got = ours(x, torch.tensor(factors))
    for i, f in enumerate(factors):
        torch.testing.assert_close(got[i], theirs(x[i], f), atol=2e-4, rtol=0)  # torchvision luma 0.2989 vs 0.299


def test_additive_brightness_and_channel_mean_contrast() -> None:
    x = images(2).float() / 255
    torch.testing.assert_close(adjust_brightness(x, torch.tensor([0.1, -0.1]), additive=True),
                               torch.cat([(x[:1] + 0.1), (x[1:] - 0.1)]).clamp(0, 1))
    m = x.mean((2, 3), keepdim=True)
    torch.testing.assert_close(adjust_contrast(x, torch.tensor([0.5, 0.5]), channel_mean=True),
                               (0.5 * x + 0.5 * m).clamp(0, 1))


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.0])
def test_blur_matches_torchvision(sigma: float) -> None:
    x = images(2, 40).float() / 255
    k = blur_kernel_size(40)
    got = gaussian_blur(x, torch.tensor([sigma, sigma]), k)
    torch.testing.assert_close(got, TF.gaussian_blur(x, [k, k], [sigma, sigma]), atol=1e-5, rtol=0)


def test_blur_kernel_is_ten_percent_of_side_and_odd() -> None:
    assert blur_kernel_size(224) == 23
    assert blur_kernel_size(96) == 9
    assert blur_kernel_size(32) == 3


def test_crop_boxes_follow_random_resized_crop() -> None:
    g = torch.Generator().manual_seed(0)
    boxes = sample_crop_boxes(4000, 50, 40, (0.08, 1.0), (3 / 4, 4 / 3), g)
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 50).all() and (left + w <= 40).all()
    frac = (h * w).double() / (50 * 40)
    assert frac.min() >= 0.06 and frac.max() <= 1.0
    ratio = w.double() / h.double()
    assert ratio.min() >= 3 / 4 * 0.8 and ratio.max() <= 4 / 3 * 1.25  # rounding to pixels
    # uniform area: the mean area fraction is near (0.08 + 1) / 2 (a bit lower: large crops
    # with extreme aspect do not fit and are redrawn)
    assert 0.42 < float(frac.mean()) < 0.56


def test_crop_fallback_is_the_central_clamped_crop() -> None:
    g = torch.Generator().manual_seed(0)
    # scale >= 1 on a 10x100 image never fits at aspect <= 4/3: whole height, width 13
    boxes = sample_crop_boxes(5, 10, 100, (1.0, 1.0), (3 / 4, 4 / 3), g)
    assert (boxes == torch.tensor([0, (100 - 13) // 2, 10, 13])).all()


def test_identity_crop_and_flip() -> None:
    x = images(2, 16).float() / 255
    boxes = torch.tensor([[0, 0, 16, 16], [0, 0, 16, 16]])
    out = crop_resize_flip(x, boxes, torch.tensor([False, True]), 16)
    torch.testing.assert_close(out[0], x[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], x[1].flip(2), atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_crop_reads_only_the_pixels_inside_the_box(mode: str) -> None:
    # a constant box in a random image: every output pixel, edges included, is the box's value
    x = torch.rand(4, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    boxes = torch.tensor([[4, 4, 4, 4], [0, 10, 7, 5], [17, 0, 7, 9], [3, 2, 20, 21]])
    for top, left, h, w in boxes.tolist():
        x[:, :, top : top + h, left : left + w] = 0.25
    out = crop_resize_flip(x, boxes, torch.tensor([False, True, False, True]), 16, mode)
    torch.testing.assert_close(out, torch.full_like(out, 0.25), atol=1e-6, rtol=0)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("height,width,size", [(28, 28, 28), (32, 40, 24), (20, 20, 32)])
def test_crop_equals_torchvision_resized_crop(mode: str, height: int, width: int, size: int) -> None:
    g = torch.Generator().manual_seed(height + size)
    x = torch.rand(32, 3, height, width, generator=g)
    boxes = sample_crop_boxes(32, height, width, (0.08, 1.0), (3 / 4, 4 / 3), g)
    flip = torch.rand(32, generator=g) < 0.5
    out = crop_resize_flip(x, boxes, flip, size, mode)
    interpolation = TF.InterpolationMode(mode)
    want = torch.stack([
        TF.resized_crop(x[i], *boxes[i].tolist(), [size, size], interpolation, antialias=False) for i in range(32)
    ])
    want = torch.where(flip.view(-1, 1, 1, 1), want.flip(3), want).clamp(0, 1)
    torch.testing.assert_close(out, want, atol=1e-5, rtol=0)


def test_crop_interpolation_reaches_the_resize() -> None:
    # a 2x2 checkerboard crop upscaled 4x: bilinear stays within the pixel values and ramps
    # linearly between pixel centres; bicubic overshoots (then clamps), so the two must differ
    x = torch.tensor([[0.2, 0.8], [0.8, 0.2]]).expand(1, 3, 2, 2).contiguous()
    cfg = AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, color_p=0.0,
                        grayscale_p=0.0, blur=False, crop_interpolation="bilinear")
    lin = SimCLRAugment(cfg, 8)(x, torch.Generator().manual_seed(0))
    cub = SimCLRAugment(dataclasses.replace(cfg, crop_interpolation="bicubic"), 8)(x, torch.Generator().manual_seed(0))
    # output column 2 sits at input coordinate 0.125 between centres 0 and 1 on row 0 (y = -0.375: the border row)
    torch.testing.assert_close(lin[0, 0, 0, 2], torch.tensor(0.2 + 0.125 * 0.6))
    assert lin.min() >= 0.2 - 1e-6 and lin.max() <= 0.8 + 1e-6
    assert (cub - lin).abs().max() > 0.01
    with pytest.raises(SimCLRError, match="bicubic or bilinear"):
        AugmentConfig(crop_interpolation="nearest").validate()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("blur", [True, False])
def test_views_shape_range_and_determinism(channels: int, blur: bool) -> None:
    aug = SimCLRAugment(AugmentConfig(color_strength=1.0, blur=blur), size=24)
    x = images(8, 30, channels)
    a = aug(x, torch.Generator().manual_seed(7))
    b = aug(x, torch.Generator().manual_seed(7))
    c = aug(x, torch.Generator().manual_seed(8))
    assert a.shape == (8, 3, 24, 24) and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_everything_off_is_identity() -> None:
    cfg = AugmentConfig(crop=False, flip_p=0.0, color_p=0.0, grayscale_p=0.0, blur=False)
    x = images(4, 16)
    out = SimCLRAugment(cfg, 16)(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x.float() / 255)


def test_probabilities_are_honoured() -> None:
    # grayscale with p = 1: every view gray; p = 0: colour views stay coloured
    x = images(16, 16)
    gray = SimCLRAugment(AugmentConfig(crop=False, color_p=0.0, grayscale_p=1.0, blur=False), 16)
    out = gray(x, torch.Generator().manual_seed(0))
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 1], out[:, 2])
    flip = SimCLRAugment(AugmentConfig(crop=False, flip_p=1.0, color_p=0.0, grayscale_p=0.0, blur=False), 16)
    torch.testing.assert_close(flip(x, torch.Generator()), x.float().flip(3) / 255)
    # colour jitter with p = 0.8 changes about 80% of the images
    jit = SimCLRAugment(AugmentConfig(crop=False, flip_p=0.0, color_p=0.8, grayscale_p=0.0, blur=False), 8)
    big = images(400, 8)
    changed = (jit(big, torch.Generator().manual_seed(1)) - big.float() / 255).abs().flatten(1).amax(1) > 1e-4
    assert abs(float(changed.float().mean()) - 0.8) < 0.08


def test_invalid_config() -> None:
    with pytest.raises(SimCLRError):
        SimCLRAugment(AugmentConfig(color_p=1.5), 16)
    with pytest.raises(SimCLRError):
        SimCLRAugment(AugmentConfig(crop_scale=(0.5, 0.1)), 16)
    assert math.isclose(AugmentConfig().crop_ratio[1], 4 / 3)


def test_the_draws_pack_into_one_buffer_and_back_exactly() -> None:
    from simclr.augment import pack, unpack

    aug = SimCLRAugment(AugmentConfig(color_strength=1.0, blur=True), 24)
    params = aug.sample(7, 30, 26, torch.Generator().manual_seed(4))
    t = params.tensors
    assert {"flip", "boxes", "hue", "gray", "blur", "sigma"} <= set(t)
    packed, layout = pack(t)
    assert packed.dim() == 1 and packed.dtype == torch.float64
    back = unpack(packed, layout)
    for k, v in t.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and torch.equal(back[k], v), k


@pytest.mark.parametrize("size", [32, 224])
def test_what_travels_to_the_device_is_a_few_numbers_per_view_at_any_size(size: int) -> None:
    """The crops travel as boxes (their resize taps are built on the device): the copy of a batch's draws
    does not grow with the output side. (Taps and weights made on the host were 4 x size x 4 numbers a
    view: 3584 at 224 px, 29 MB for 1024 views.)"""
    from simclr.augment import pack

    n = 64
    aug = SimCLRAugment(AugmentConfig(color_strength=1.0, blur=True), size)
    packed, _ = pack(aug.sample(n, size + 32, size + 48, torch.Generator().manual_seed(0)).tensors)
    assert packed.numel() / n <= 40, packed.numel() / n


def test_sample_then_apply_is_the_call_and_each_op_touches_exactly_its_draws() -> None:
    x = images(9, 20)
    aug = SimCLRAugment(AugmentConfig(color_strength=0.8, blur=True, blur_p=0.5, grayscale_p=0.4), 16)
    whole = aug(x, torch.Generator().manual_seed(2))
    params = aug.sample(9, 20, 20, torch.Generator().manual_seed(2))
    torch.testing.assert_close(aug.apply(x, params), whole, rtol=0, atol=0)
    # the subsets are the samples whose draw fell under the probability, read from the same stream
    g = torch.Generator().manual_seed(2)
    from simclr.augment import sample_crop_boxes, sample_jitter

    sample_crop_boxes(9, 20, 20, aug.cfg.crop_scale, aug.cfg.crop_ratio, g)
    torch.rand(9, generator=g)  # flip
    apply = torch.rand(9, generator=g) < 0.8
    order = sample_jitter(9, 0.8, g)["order"]
    gray = torch.rand(9, generator=g) < 0.4
    for pos in range(4):
        for k in range(4):
            want = torch.nonzero(apply & (order[:, pos] == k)).flatten()
            assert torch.equal(params.tensors[f"jitter{pos}{k}"], want)
    assert torch.equal(params.tensors["gray"], torch.nonzero(gray).flatten())


def _one_op(op: str, x: torch.Tensor, t: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """One op of the pipeline alone, on x, with the draws t: a pipeline whose config runs only that op
    (crop without its flip), given only that op's draws."""
    from simclr.augment import AugmentParams

    no_flip = torch.zeros_like(t["flip"])
    keys = {"crop": ("boxes",), "flip": (), "color": (), "grayscale": ("gray",),
            "blur": ("sigma", "blur")}
    if op == "color":
        keys["color"] = tuple(k for k in t if k in ("brightness", "contrast", "saturation", "hue")
                              or k.startswith("jitter"))
    draws = {k: t[k] for k in keys[op]} | {"flip": t["flip"] if op == "flip" else no_flip}
    side = size if op == "crop" else x.shape[-1]
    one = SimCLRAugment(AugmentConfig(crop=op == "crop"), side)
    return one.apply(x, AugmentParams(draws))


@pytest.mark.parametrize("order", [("blur", "crop", "color", "flip", "grayscale"),
                                   ("grayscale", "color", "flip", "blur", "crop")])
def test_order_runs_the_ops_one_after_another_in_that_order(order: tuple[str, ...]) -> None:
    """The pipeline with ``order`` equals its single ops composed by hand in that order, on the same draws
    (the draws do not depend on the order); and it differs from the paper's order."""
    cfg = AugmentConfig(color_strength=1.0, color_p=1.0, grayscale_p=0.5, blur=True, blur_p=1.0, order=order)
    aug = SimCLRAugment(cfg, 16)
    x = images(6, 40)
    params = aug.sample(6, 40, 40, torch.Generator().manual_seed(5))
    default = SimCLRAugment(dataclasses.replace(cfg, order=AugmentConfig().order), 16)
    assert {k: v.tolist() for k, v in params.tensors.items()} == {
        k: v.tolist() for k, v in default.sample(6, 40, 40, torch.Generator().manual_seed(5)).tensors.items()}
    want = x.float() / 255
    for op in order:
        want = _one_op(op, want, params.tensors, 16)
    got = aug.apply(x, params)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert (got - default.apply(x, params)).abs().max() > 1e-2


def test_flip_commutes_with_every_op_after_the_crop() -> None:
    """The composition study runs one order of the pairs with flip, since flip commutes with colour,
    grayscale and blur (a mirror image has the same colours and the blur kernel is symmetric)."""
    cfg = AugmentConfig(color_strength=1.0, blur=True, blur_p=1.0)
    x = images(8, 24)
    params = SimCLRAugment(cfg, 20).sample(8, 24, 24, torch.Generator().manual_seed(1))
    paper = SimCLRAugment(cfg, 20).apply(x, params)
    flip_last = SimCLRAugment(dataclasses.replace(cfg, order=("crop", "color", "grayscale", "blur", "flip")), 20)
    torch.testing.assert_close(flip_last.apply(x, params), paper, rtol=0, atol=1e-5)


def test_order_must_name_every_op_once() -> None:
    for order in (("crop", "flip", "color", "grayscale"), ("crop", "crop", "color", "grayscale", "blur"),
                  ("crop", "flip", "colour", "grayscale", "blur")):
        with pytest.raises(SimCLRError, match="order must name each of crop, flip, color, grayscale, blur once"):
            SimCLRAugment(AugmentConfig(order=order), 16)
