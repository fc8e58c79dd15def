"""The device path against the reference (torchvision, PIL, per image): the crop-and-resize op for
fixed parameters, the distributions of the sampled parameters over many draws, the probabilities
of each op, and the ``--augment-on workers`` loader itself."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.v2.functional as TF2
from PIL import Image

from simclr.augment import AugmentConfig, SimCLRAugment, crop_resize_flip, sample_crop_boxes, sample_jitter
from simclr.data.images import ArrayImages
from simclr.data.loaders import PretrainLoader
from simclr.data.reference import ReferencePairs, reference_transform
from simclr.errors import SimCLRError

N = 20_000
# Two-sample Kolmogorov-Smirnov at alpha = 1e-4: D > c(alpha) sqrt(2 / N), c = sqrt(-ln(alpha / 2) / 2)
KS_LIMIT = math.sqrt(-math.log(1e-4 / 2) / 2) * math.sqrt(2 / N)


def ks(a: torch.Tensor, b: torch.Tensor) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a, b = a.double().sort().values, b.double().sort().values
    grid = torch.cat([a, b])
    fa = torch.searchsorted(a, grid, right=True).double() / len(a)
    fb = torch.searchsorted(b, grid, right=True).double() / len(b)
    return float((fa - fb).abs().max())


def test_ks_detects_a_different_distribution() -> None:
    # the check below must be able to fail: uniform vs log-uniform aspect ratios differ by more
    g = torch.Generator().manual_seed(0)
    lo, hi = 3 / 4, 4 / 3
    uniform = torch.rand(N, generator=g) * (hi - lo) + lo
    log_uniform = torch.exp(torch.rand(N, generator=g) * (math.log(hi) - math.log(lo)) + math.log(lo))
    assert ks(uniform, log_uniform) > KS_LIMIT
    assert ks(log_uniform, torch.exp(torch.rand(N, generator=g) * (math.log(hi) - math.log(lo)) + math.log(lo))) \
        < KS_LIMIT


@pytest.mark.parametrize("side,scale", [(224, (0.08, 1.0)), (28, (0.08, 1.0)), (32, (0.2, 1.0))])
def test_crop_parameters_follow_random_resized_crop(side: int, scale: tuple[float, float]) -> None:
    ratio = (3 / 4, 4 / 3)
    ours = sample_crop_boxes(N, side, side, scale, ratio, torch.Generator().manual_seed(1)).double()
    torch.manual_seed(2)
    img = torch.zeros(1, side, side)
    theirs = torch.tensor([T.RandomResizedCrop.get_params(img, list(scale), list(ratio)) for _ in range(N)],
                          dtype=torch.float64)
    for name, f in {
        "area": lambda b: b[:, 2] * b[:, 3] / side**2,
        "log aspect": lambda b: torch.log(b[:, 3] / b[:, 2]),
        "centre row": lambda b: (b[:, 0] + b[:, 2] / 2) / side,
        "centre column": lambda b: (b[:, 1] + b[:, 3] / 2) / side,
    }.items():
        d = ks(f(ours), f(theirs))
        assert d < KS_LIMIT, f"{name}: KS {d:.4f} >= {KS_LIMIT:.4f}"


@pytest.mark.parametrize("strength", [0.5, 1.0])
def test_jitter_parameters_follow_color_jitter(strength: float) -> None:
    s = strength
    ours = sample_jitter(N, s, torch.Generator().manual_seed(3))
    torch.manual_seed(4)
    jitter = T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)
    draws = [jitter.get_params(jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) for _ in range(N)]
    theirs = {name: torch.tensor([d[k] for d in draws]) for k, name in
              enumerate(["order", "brightness", "contrast", "saturation", "hue"]) if name != "order"}
    for name, values in theirs.items():
        d = ks(ours[name], values)
        assert d < KS_LIMIT, f"{name}: KS {d:.4f} >= {KS_LIMIT:.4f}"
    # the order: each of the 24 permutations about equally often, in ours and in torchvision's
    def counts(orders: torch.Tensor) -> torch.Tensor:
        code = (orders * torch.tensor([64, 16, 4, 1])).sum(1)
        return torch.unique(code, return_counts=True)[1].double()

    theirs_order = torch.stack([d[0] for d in draws])
    for c in (counts(ours["order"]), counts(theirs_order)):
        assert len(c) == 24
        expected = N / 24
        chi2 = float(((c - expected) ** 2 / expected).sum())
        assert chi2 < 60, chi2  # chi-square, 23 degrees of freedom: P(> 60) ~ 3e-5


def _changed(out: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return (out - ref).abs().flatten(1).amax(1) > 1e-3


@pytest.mark.parametrize("op,p", [("flip", 0.5), ("color", 0.8), ("gray", 0.2), ("blur", 0.5)])
def test_op_probabilities_match_the_reference(op: str, p: float) -> None:
    n = 3000
    side = 40 if op == "blur" else 12  # the blur kernel is 10% of the side: 3 taps at 40 px
    img = torch.randint(0, 256, (3, side, side), generator=torch.Generator().manual_seed(5), dtype=torch.uint8)
    cfg = AugmentConfig(
        crop=False, flip_p=p if op == "flip" else 0.0, color_p=p if op == "color" else 0.0, color_strength=1.0,
        grayscale_p=p if op == "gray" else 0.0, blur=op == "blur", blur_p=p,
        blur_sigma=(1.0, 2.0),  # sigma >= 1 always changes the image visibly
    )
    ours = SimCLRAugment(cfg, side)(img.expand(n, -1, -1, -1), torch.Generator().manual_seed(6))
    base = img.float() / 255
    rate_ours = float(_changed(ours, base.expand(n, -1, -1, -1)).float().mean())
    transform = reference_transform(cfg, side)
    pil = TF2.to_pil_image(img)
    torch.manual_seed(7)
    theirs = torch.stack([transform(pil) for _ in range(n)])
    rate_theirs = float(_changed(theirs, base.expand(n, -1, -1, -1)).float().mean())
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(rate_ours - p) < 4.5 * sigma, (rate_ours, p)
    assert abs(rate_theirs - p) < 4.5 * sigma, (rate_theirs, p)


def _inside(start: int, length: int, out: int, taps: int = 4) -> torch.Tensor:
    """Output positions whose ``taps`` interpolation taps (4 bicubic, 2 bilinear) all fall inside
    the crop [start, start + length)."""
    u = start + (torch.arange(out) + 0.5) * length / out - 0.5
    first = torch.floor(u) - (taps // 2 - 1)
    return (first >= start) & (first + taps - 1 <= start + length - 1)


@pytest.mark.parametrize("mode", ["bicubic", "bilinear"])
@pytest.mark.parametrize("flip", [False, True])
def test_crop_resize_matches_torchvision_resized_crop(flip: bool, mode: str) -> None:
    # Fixed box, upscaling (as SimCLR's crops mostly are): bicubic (A = -0.75) or bilinear on float
    # tensors, no antialiasing. Where all taps lie inside the crop the two agree to 1e-4. At the
    # crop's edge torchvision, which crops first, repeats the edge pixel; the device path reads the
    # image's real neighbours beyond the edge (a different but equally valid interpolation).
    x = torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(8))
    boxes = torch.tensor([[3, 5, 10, 12], [0, 0, 20, 14]])
    out = crop_resize_flip(x, boxes, torch.tensor([flip, flip]), 24, mode)
    taps = 4 if mode == "bicubic" else 2
    for i, (top, left, h, w) in enumerate(boxes.tolist()):
        ref = TF2.resized_crop(x[i], top, left, h, w, [24, 24], interpolation=T.InterpolationMode(mode),
                               antialias=False).clamp(0, 1)
        if flip:
            ref = ref.flip(-1)
        rows, cols = _inside(top, h, 24, taps), _inside(left, w, 24, taps)
        if flip:
            cols = cols.flip(0)
        mask = (rows.view(-1, 1) & cols.view(1, -1)).expand(3, -1, -1)
        assert mask.sum() > 3 * 12 * 12
        torch.testing.assert_close(out[i][mask], ref[mask], atol=1e-4, rtol=0)
        assert (out[i] - ref).abs().mean() < 0.03


def test_reference_pairs_are_seeded_per_epoch_and_image() -> None:
    imgs = ArrayImages(torch.randint(0, 256, (6, 1, 16, 16), dtype=torch.uint8), torch.zeros(6, dtype=torch.long), [])
    pairs = ReferencePairs(imgs, AugmentConfig(color_strength=0.5, blur=False), 12, seed=0)
    a1, a2, _ = pairs[0, 3]
    b1, b2, _ = pairs[0, 3]
    assert a1.shape == (3, 12, 12) and a1.min() >= 0 and a1.max() <= 1
    assert torch.equal(a1, b1) and torch.equal(a2, b2)  # the same (epoch, index): the same views
    assert not torch.equal(a1, a2)  # two different views
    state = torch.get_rng_state()
    c1, _, _ = pairs[1, 3]  # epoch 1
    assert not torch.equal(a1, c1)
    assert torch.equal(state, torch.get_rng_state())  # the caller's generator is untouched


def test_workers_loader_yields_views_and_rejects_variants() -> None:
    imgs = ArrayImages(torch.randint(0, 256, (20, 3, 16, 16), dtype=torch.uint8), torch.zeros(20, dtype=torch.long),
                       [])
    loader = PretrainLoader(imgs, 8, AugmentConfig(blur=False), 16, seed=0, device=torch.device("cpu"),
                            workers=0, augment_on="workers")
    batches = list(loader.batches(0))
    assert len(batches) == 2
    v1, v2, _ = batches[0]
    assert v1.shape == v2.shape == (8, 3, 16, 16)
    again = list(loader.batches(0, start=1))
    assert torch.equal(again[0][0], batches[1][0])  # mid-epoch resume sees the same views
    with pytest.raises(SimCLRError, match="augment-on device"):
        reference_transform(AugmentConfig(brightness="additive"), 16)


def test_reference_transform_accepts_grayscale_pil() -> None:
    t = reference_transform(AugmentConfig(), 32)
    out = t(Image.new("L", (40, 40), 128).convert("RGB"))
    assert out.shape == (3, 32, 32)


def test_identity_view_leaves_the_first_view_as_the_image() -> None:
    """augment.identity_view (the paper's Figure 5 setting): the first view of every pair is the image
    itself (as the encoder takes it), the second is augmented; the paper's order and both views otherwise."""
    from simclr.data.loaders import as_float_batch

    imgs = ArrayImages(torch.randint(0, 256, (16, 1, 12, 12), dtype=torch.uint8), torch.arange(16), [])
    cfg = AugmentConfig(crop_scale=(0.2, 0.5), blur=False, identity_view=True)
    loader = PretrainLoader(imgs, 8, cfg, 12, seed=0, device=torch.device("cpu"))
    v1, v2, labels = next(iter(loader.batches(0)))
    assert torch.equal(v1, as_float_batch(imgs.images[labels]))
    assert v2.shape == v1.shape and (v2 - v1).abs().flatten(1).amax(1).min() > 0.05  # every second view changed
    both = PretrainLoader(imgs, 8, AugmentConfig(crop_scale=(0.2, 0.5), blur=False), 12, seed=0,
                          device=torch.device("cpu"))
    w1, _, labels = next(iter(both.batches(0)))
    assert not torch.equal(w1, as_float_batch(imgs.images[labels]))
    with pytest.raises(SimCLRError, match="identity_view needs an in-memory dataset augmented on the device"):
        PretrainLoader(imgs, 8, cfg, 12, seed=0, device=torch.device("cpu"), augment_on="workers")
    with pytest.raises(SimCLRError, match="augment.order and augment.identity_view need --augment-on device"):
        reference_transform(AugmentConfig(order=("flip", "crop", "color", "grayscale", "blur")), 12)
