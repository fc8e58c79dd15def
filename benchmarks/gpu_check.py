"""GPU check (issue #4): augmentation on the GPU against the CPU values, and training throughput
in bf16 as images/s and as a fraction of the card's bf16 matmul rate measured in the same run.

No network, synthetic data, a few minutes on one GPU. ``benchmarks/gpu_check.sh`` runs it.

1. Augmentation: the same uint8 batch and the same seed through ``SimCLRAugment`` on the CPU and
   on the device; the largest difference of the views (all random draws happen on the CPU, so the
   two must agree up to float rounding). Then the device path's images/s at 32 and 224 px.
2. bf16 matmul rate: the best of several 8192^3 matmuls (``--matmul-size``).
3. Training steps (augmentation + forward + NT-Xent + backward + LARS step, bf16 autocast,
   channels_last) of resnet18 (CIFAR stem, 32 px) and resnet50 (ImageNet stem, 224 px): images/s,
   model FLOP per image (torch.utils.flop_counter, multiply-add = 2), and achieved FLOP/s as a
   fraction of the measured matmul rate.

usage: python benchmarks/gpu_check.py [--device cuda] [--quick] [--json FILE]
``--quick`` shrinks everything (tiny widths and sizes, one step) so the script can be smoke-tested
on a CPU; its figures then mean nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from simclr.augment import AugmentConfig, SimCLRAugment
from simclr.loss import nt_xent
from simclr.models import build_model
from simclr.optim import build_optimizer


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], None], device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls, after one warm-up call."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_rate(device: torch.device, n: int, dtype: torch.dtype, repeats: int) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    t = timed(lambda: a @ b, device, repeats)
    return 2 * n**3 / t


def augmentation_check(device: torch.device, quick: bool) -> dict:
    size = 32 if quick else 224
    n = 8 if quick else 64
    images = torch.randint(0, 256, (n, 3, size + size // 4, size + size // 4), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    aug = SimCLRAugment(AugmentConfig(color_strength=1.0, blur=True), size)
    cpu = aug(images, torch.Generator().manual_seed(1))
    dev = aug(images.to(device), torch.Generator().manual_seed(1)).cpu()
    diff = (cpu - dev).abs()
    result = {"views": n, "size": size, "max_abs_diff": float(diff.max()),
              "fraction_above_1e-3": float((diff > 1e-3).float().mean())}
    rates = {}
    for side in (32, 224):
        batch = 64 if quick else 1024
        if quick and side == 224:
            batch = 4
        x = torch.randint(0, 256, (batch, 3, side, side), dtype=torch.uint8, device=device)
        a = SimCLRAugment(AugmentConfig(color_strength=1.0, blur=side > 32), side)
        g = torch.Generator().manual_seed(2)
        t = timed(lambda a=a, x=x, g=g: a(x, g), device, 1 if quick else 5)
        rates[f"{side}px_images_per_s"] = batch / t
    result.update(rates)
    return result


def train_check(device: torch.device, name: str, arch: str, stem: str, size: int, width: float,
                batch: int, steps: int, peak: float) -> dict:
    torch.manual_seed(0)
    model = build_model(arch, width, stem, size).to(device).to(memory_format=torch.channels_last).train()
    opt = build_optimizer("lars", model, 0.3 * batch / 256, 1e-6)
    aug = SimCLRAugment(AugmentConfig(color_strength=1.0, blur=size > 32), size)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    g = torch.Generator().manual_seed(0)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)

    def forward_backward(x: torch.Tensor) -> None:
        with autocast:
            _, z = model(x)
        loss, _ = nt_xent(*z.float().chunk(2), 0.2)
        opt.zero_grad(set_to_none=True)
        loss.backward()

    def step() -> None:
        x = torch.cat([aug(images, g), aug(images, g)]).contiguous(memory_format=torch.channels_last)
        forward_backward(x)
        opt.step()

    x = torch.rand(2 * batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    with FlopCounterMode(display=False) as counter:
        forward_backward(x)
    flops = counter.get_total_flops()
    t = timed(lambda: [step() for _ in range(steps)], device, 3 if steps > 1 else 1) / steps
    return {"setting": name, "batch": batch, "views_per_step": 2 * batch, "images_per_s": batch / t,
            "gflop_per_image": flops / batch / 1e9, "achieved_tflop_s": flops / t / 1e12,
            "fraction_of_bf16_matmul": flops / t / peak}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny smoke-test sizes (for a CPU)")
    p.add_argument("--matmul-size", type=int, default=8192)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device visible (torch.cuda.is_available() is False)")
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    t_start = time.perf_counter()
    n = 256 if args.quick else args.matmul_size
    peak = matmul_rate(device, n, torch.bfloat16, 2 if args.quick else 10)
    fp32 = matmul_rate(device, n, torch.float32, 2 if args.quick else 5)
    out: dict = {"device": card, "torch": torch.__version__,
                 "bf16_matmul_tflop_s": peak / 1e12, "fp32_matmul_tflop_s": fp32 / 1e12}
    print(f"device: {card}, torch {torch.__version__}")
    print(f"matmul {n}^3: bf16 {peak / 1e12:.1f} TFLOP/s, fp32 {fp32 / 1e12:.1f} TFLOP/s")
    out["augmentation"] = augmentation_check(device, args.quick)
    a = out["augmentation"]
    print(f"augmentation, device vs CPU values ({a['views']} views at {a['size']} px): max |diff| "
          f"{a['max_abs_diff']:.2e}, fraction > 1e-3 {a['fraction_above_1e-3']:.2e}")
    print(f"augmentation alone: {a['32px_images_per_s']:.0f} images/s at 32 px, "
          f"{a['224px_images_per_s']:.0f} at 224 px")
    if args.quick:
        settings = [("resnet18-cifar-16px-x0.25", "resnet18", "cifar", 16, 0.25, 8, 1),
                    ("resnet50-imagenet-32px-x0.25", "resnet50", "imagenet", 32, 0.25, 4, 1)]
    else:
        settings = [("resnet18-cifar-32px", "resnet18", "cifar", 32, 1.0, 512, 10),
                    ("resnet50-imagenet-224px", "resnet50", "imagenet", 224, 1.0, 128, 5)]
    out["training_bf16"] = []
    for name, arch, stem, size, width, batch, steps in settings:
        r = train_check(device, name, arch, stem, size, width, batch, steps, peak)
        out["training_bf16"].append(r)
        print(f"{name}: batch {batch}, {r['images_per_s']:.0f} images/s, {r['gflop_per_image']:.2f} GFLOP/image "
              f"(fwd+bwd), {r['achieved_tflop_s']:.1f} TFLOP/s = {r['fraction_of_bf16_matmul']:.1%} of bf16 matmul")
    out["wall_s"] = time.perf_counter() - t_start
    print(f"total {out['wall_s']:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
