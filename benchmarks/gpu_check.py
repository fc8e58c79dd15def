"""The one-GPU check: simclr's real training step on the card, against the card's own matmul rate.

Sections, each written to the JSON file as soon as it is done (a run cut short keeps what it measured):

1. ``matmul``: the best bf16 and fp32 rate of large square matmuls (``--matmul-size``).
2. ``augmentation``: the same uint8 batch and seed through ``SimCLRAugment`` on the CPU and on the
   device (every random draw happens on the CPU, so the views must agree up to float rounding), then
   the device path's images/s at 32 and 224 px.
3. ``model_step``: the real ``TrainStep`` of ``simclr pretrain`` (``simclr.train.setup.training_from``:
   forward, NT-Xent, backward, finiteness guard, LARS step; bf16 autocast, channels_last) on fixed
   views, i.e. the model alone: images/s, model FLOP per image (torch.utils.flop_counter, multiply-add =
   2), achieved FLOP/s as a fraction of the measured bf16 matmul rate, and the host synchronisations
   per step that ``torch.cuda.set_sync_debug_mode`` reports (expected: 0).
4. ``augmented_step``: the same, each step's batch made by the loader as in a run (uint8 images to the
   GPU, the batched augmentation there). Excludes decoding: the images are in memory.
5. ``pretrain``: a short ``simclr pretrain`` run on in-memory synthetic data (the loop, its callbacks,
   the online probe, log steps reading the device): images/s from its metrics.jsonl. Excludes decoding.

No network, synthetic data, a few minutes on one GPU; ``benchmarks/gpu_check.sh`` runs it.

usage: python3 benchmarks/gpu_check.py [--device cuda] [--quick] [--json FILE]
``--quick`` shrinks everything (tiny widths and sizes, a step or two) so the script can be smoke-tested
on a CPU; its figures then mean nothing.
"""

from __future__ import annotations

import sys

try:
    import argparse
    import itertools
    import json
    import platform
    import statistics
    import tempfile
    import time
    import warnings
    from collections.abc import Callable
    from pathlib import Path

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from simclr.augment import AugmentConfig, SimCLRAugment
    from simclr.data.images import ArrayImages
    from simclr.train.setup import Training, training_from
except ImportError as e:  # a clear line, not a traceback, where a dependency is missing
    sys.exit(f"gpu_check: cannot import {e.name!r} ({e}); run from the repository root with "
             "PYTHONPATH=src (or pip install -e .) and torch, torchvision, pyyaml, tqdm, pillow installed")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
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
    return 2 * n**3 / timed(lambda: a @ b, device, repeats)


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
    for side in (32, 224):
        batch = (64 if side == 32 else 4) if quick else 1024
        x = torch.randint(0, 256, (batch, 3, side, side), dtype=torch.uint8, device=device)
        a = SimCLRAugment(AugmentConfig(color_strength=1.0, blur=side > 32), side)
        g = torch.Generator().manual_seed(2)
        result[f"{side}px_images_per_s"] = batch / timed(lambda a=a, x=x, g=g: a(x, g), device, 1 if quick else 5)
    return result


def setting_overrides(arch: str, stem: str, size: int, width: float, batch: int, device: str) -> dict:
    return {"data.dataset": "synthetic", "data.image_size": size, "model.arch": arch, "model.stem": stem,
            "model.width_multiplier": width, "train.batch_size": batch, "train.precision": "bf16",
            "train.device": device, "train.epochs": 100, "augment.color_strength": 1.0, "augment.blur": size > 32}


def in_memory(n: int, size: int) -> ArrayImages:
    g = torch.Generator().manual_seed(0)
    return ArrayImages(torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g),
                       torch.randint(0, 8, (n,), generator=g), [str(i) for i in range(8)])


def syncs_per_step(training: Training, batch: object, steps: int) -> float | None:
    """Host synchronisations per step that CUDA's sync debug mode reports (None off CUDA: not measured)."""
    if training.device.type != "cuda":
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for s in range(steps):
                training.step(batch, 100 + s)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught) / steps


def step_checks(name: str, overrides: dict, steps: int, peak: float, device: torch.device) -> tuple[dict, dict]:
    """(model_step, augmented_step) figures of one setting."""
    batch_size = overrides["train.batch_size"]
    training = training_from(overrides, in_memory(2 * batch_size, overrides["data.image_size"]))
    views = next(training.loader.batches(0))  # fixed views: the model alone
    with FlopCounterMode(display=False) as counter:
        training.method.training_step(views).loss.backward()
    flops = counter.get_total_flops()
    counter_step = itertools.count()
    t = timed(lambda: [training.step(views, next(counter_step)) for _ in range(steps)], device,
              3 if steps > 1 else 1) / steps
    model = {"setting": name, "batch": batch_size, "views_per_step": 2 * batch_size, "images_per_s": batch_size / t,
             "gflop_per_image": flops / batch_size / 1e9, "achieved_tflop_s": flops / t / 1e12,
             "fraction_of_bf16_matmul": flops / t / peak, "host_syncs_per_step": syncs_per_step(training, views, 3)}
    batches = itertools.chain.from_iterable(training.loader.batches(e) for e in itertools.count())
    t_aug = timed(lambda: [training.step(next(batches), next(counter_step)) for _ in range(steps)], device,
                  3 if steps > 1 else 1) / steps
    augmented = {"setting": name, "batch": batch_size, "images_per_s": batch_size / t_aug,
                 "excludes": "decoding (in-memory uint8 images)"}
    return model, augmented


def pretrain_check(device: str, quick: bool) -> dict:
    from simclr.config import PretrainConfig, apply_overrides
    from simclr.train import pretrain

    steps, batch = (4, 16) if quick else (60, 512)
    overrides = setting_overrides("resnet18", "cifar", 16 if quick else 32, 0.25 if quick else 1.0, batch, device)
    overrides.update({"data.limit": 4 * batch, "train.max_steps": steps, "train.log_every": 2 if quick else 10})
    cfg = PretrainConfig()
    apply_overrides(cfg, overrides, "gpu_check")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        pretrain(cfg, Path(tmp) / "run")
        wall = time.perf_counter() - t0
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    later = [r["images_per_s"] for r in rows[len(rows) // 2 :]]  # past the warm-up (cuDNN autotuning)
    return {"setting": "resnet18-cifar-32px synthetic in memory" if not quick else "quick", "batch": batch,
            "steps": steps, "images_per_s_median_late": statistics.median(later), "wall_s": wall,
            "excludes": "decoding (in-memory synthetic images); includes the loop, callbacks and online probe"}


def run(args: argparse.Namespace, out: dict, save: Callable[[], None]) -> None:
    device = torch.device(args.device)
    n = 256 if args.quick else args.matmul_size
    peak = matmul_rate(device, n, torch.bfloat16, 2 if args.quick else 10)
    fp32 = matmul_rate(device, n, torch.float32, 2 if args.quick else 5)
    out["matmul"] = {"size": n, "bf16_tflop_s": peak / 1e12, "fp32_tflop_s": fp32 / 1e12}
    save()
    print(f"matmul {n}^3: bf16 {peak / 1e12:.1f} TFLOP/s, fp32 {fp32 / 1e12:.1f} TFLOP/s", flush=True)
    a = out["augmentation"] = augmentation_check(device, args.quick)
    save()
    print(f"augmentation, device vs CPU values ({a['views']} views at {a['size']} px): max |diff| "
          f"{a['max_abs_diff']:.2e}, fraction > 1e-3 {a['fraction_above_1e-3']:.2e}; alone: "
          f"{a['32px_images_per_s']:.0f} images/s at 32 px, {a['224px_images_per_s']:.0f} at 224 px", flush=True)
    if args.quick:
        settings = [("resnet18-cifar-16px-x0.25", "resnet18", "cifar", 16, 0.25, 8, 1),
                    ("resnet50-imagenet-32px-x0.25", "resnet50", "imagenet", 32, 0.25, 4, 1)]
    else:
        settings = [("resnet18-cifar-32px", "resnet18", "cifar", 32, 1.0, 512, 10),
                    ("resnet50-imagenet-224px", "resnet50", "imagenet", 224, 1.0, 128, 5)]
    out["model_step"], out["augmented_step"] = [], []
    for name, arch, stem, size, width, batch, steps in settings:
        overrides = setting_overrides(arch, stem, size, width, batch, args.device)
        model, augmented = step_checks(name, overrides, steps, peak, device)
        out["model_step"].append(model)
        out["augmented_step"].append(augmented)
        save()
        print(f"{name}: batch {batch}, model step {model['images_per_s']:.0f} images/s, "
              f"{model['gflop_per_image']:.2f} GFLOP/image (fwd+bwd), {model['achieved_tflop_s']:.1f} TFLOP/s = "
              f"{model['fraction_of_bf16_matmul']:.1%} of bf16 matmul, {model['host_syncs_per_step']} host syncs "
              f"per step; with the augmentation {augmented['images_per_s']:.0f} images/s", flush=True)
    p = out["pretrain"] = pretrain_check(args.device, args.quick)
    save()
    print(f"simclr pretrain ({p['setting']}, batch {p['batch']}, {p['steps']} steps): "
          f"{p['images_per_s_median_late']:.0f} images/s, {p['wall_s']:.0f} s in all", flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny smoke-test sizes (for a CPU)")
    p.add_argument("--matmul-size", type=int, default=8192)
    p.add_argument("--json", help="write the results here (after every section)")
    args = p.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device visible (torch.cuda.is_available() is False)")
    device = torch.device(args.device)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    out: dict = {"device": card, "torch": torch.__version__}
    t_start = time.perf_counter()

    def save() -> None:
        out["wall_s"] = time.perf_counter() - t_start
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=2))

    print(f"device: {card}, torch {torch.__version__}", flush=True)
    save()
    run(args, out, save)
    save()
    print(f"total {out['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
