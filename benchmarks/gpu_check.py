"""The GPU check: how fast simclr trains on this card, against the common recipe, data path in and out.

Sections, each written to the JSON file as soon as it is done (a run cut short keeps what it measured):

1. ``environment``: the commit, torch / CUDA / cuDNN / driver versions, the device, the CPU cores.
2. ``matmul``: the best bf16 and fp32 rate of large square matmuls (the card's ceiling).
3. ``augmentation``: the same uint8 batch and seed through ``SimCLRAugment`` on the CPU and on the device
   (every random draw is made on the CPU, so the views must agree up to float rounding), then the device
   path's views/s at 32 and 224 px.
4. ``model_step`` (data excluded): fixed views through simclr's real ``TrainStep`` (``training_from``:
   forward, NT-Xent, backward, finiteness guard, LARS; channels_last) and through the common recipe's step
   (``common_baseline.py``: torchvision's ResNet, SGD, NCHW), same network size (ImageNet stem), batch
   and precision: images/s, FLOP per image, fraction of the bf16 matmul rate, host syncs per step.
5. ``in_memory`` (augmentation included, decoding excluded): simclr's loader (uint8 images to the device,
   the batched augmentation there) against torchvision's PIL transforms in DataLoader workers, from the
   same in-memory images (32 px ones for the CIFAR-sized case; 400 px ones cropped to 224).
6. ``jpeg_folder`` (the whole data path): a folder of JPEGs of photo sizes (short side 375-500 px) made
   here, read by simclr's folder loader (decode and crop in workers, the rest on the device) against
   torchvision's ImageFolder + PIL transforms, same workers, ResNet-50 at 224 px.
7. ``pretrain``: a short ``simclr pretrain`` (the loop, its callbacks, the online probe, log steps reading
   the device; one epoch longer than the run, so no checkpoint is written inside the timed steps).
8. ``distributed``: ``torchrun`` over every visible GPU (nccl) against one GPU at the same per-GPU batch,
   when there are several; with ``--device cpu`` two gloo ranks, so the section is tested anywhere.

``--quick`` shrinks every size (a minute on a CPU) so the script is tested before any GPU time is spent;
its figures then mean nothing. Full size fits about 8 minutes on one H100 or H200.

usage: python3 benchmarks/gpu_check.py [--device cuda] [--quick] [--json FILE] [--workers N] [--commit SHA]
(``benchmarks/gpu_check.sh`` runs it with this checkout's src/ on the path.)
"""

from __future__ import annotations

import sys

try:
    import argparse
    import itertools
    import json
    import os
    import platform
    import statistics
    import subprocess
    import tempfile
    import time
    import warnings
    from collections.abc import Callable, Iterator
    from pathlib import Path

    import numpy as np
    import torch
    from PIL import Image
    from torch.utils.flop_counter import FlopCounterMode

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common_baseline import CommonPairs, CommonStep, common_loader, common_view, forever

    from simclr.augment import AugmentConfig, SimCLRAugment
    from simclr.data.folder import FolderImages
    from simclr.data.images import ArrayImages
    from simclr.runtime import cpu_model
    from simclr.train.setup import Training, training_from
except ImportError as e:  # a clear line, not a traceback, where a dependency is missing
    sys.exit(f"gpu_check: cannot import {e.name!r} ({e}); run from the repository root with "
             "PYTHONPATH=src (or pip install -e .) and torch, torchvision, pyyaml, tqdm, pillow, numpy installed")

ROOT = Path(__file__).resolve().parents[1]


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


def rate(step: Callable[[object, int], object], batches: Iterator, images: int, device: torch.device,
         warmup: int, steps: int) -> float:
    """Images/s of ``steps`` steps, each on the next of ``batches`` (``images`` images a step), after ``warmup``
    steps: the data path and the step together, as a run sees them."""
    for i in range(warmup):
        step(next(batches), i)
    sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        step(next(batches), warmup + i)
    sync(device)
    return steps * images / (time.perf_counter() - t0)


def environment(device: torch.device, commit: str | None) -> dict:
    def git(*a: str) -> str | None:
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    out = {"commit": commit or git("rev-parse", "HEAD") or os.environ.get("SIMCLR_COMMIT", "unknown"),
           "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
           "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
           "python": platform.python_version(), "cpu": cpu_model(), "cpu_cores": os.cpu_count(),
           "date": time.strftime("%Y-%m-%d")}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        out.update(device=props.name, capability=f"{props.major}.{props.minor}",
                   memory_gb=round(props.total_memory / 2**30, 1), gpus=torch.cuda.device_count())
        try:
            out["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader",
                                            "-i", str(device.index or 0)], capture_output=True, text=True,
                                           check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            out["driver"] = None
    else:
        out.update(device=out["cpu"], capability=None, driver=None, gpus=0)
    return out


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
        x = torch.randint(0, 256, (batch, 3, side + side // 4, side + side // 4), dtype=torch.uint8, device=device)
        a = SimCLRAugment(AugmentConfig(color_strength=1.0, blur=side > 32), side)
        g = torch.Generator().manual_seed(2)
        result[f"{side}px_images_per_s"] = batch / timed(lambda a=a, x=x, g=g: a(x, g), device, 1 if quick else 5)
    return result


class Setting:
    """One comparison: network, image side, batch, steps, and the in-memory source images' side."""

    def __init__(self, name: str, arch: str, size: int, batch: int, steps: int, source: int) -> None:
        self.name, self.arch, self.size, self.batch, self.steps, self.source = name, arch, size, batch, steps, source

    def overrides(self, device: str, precision: str, workers: int = 0) -> dict:
        return {"data.dataset": "synthetic", "data.image_size": self.size, "data.workers": workers,
                "model.arch": self.arch, "model.stem": "imagenet", "model.width_multiplier": 1.0,
                "train.batch_size": self.batch, "train.precision": precision, "train.device": device,
                "train.epochs": 1000, "augment.color_strength": 0.5 if self.size <= 32 else 1.0,
                "augment.blur": self.size > 32, "monitor.online_probe": False}


def settings(quick: bool) -> list[Setting]:
    if quick:
        return [Setting("resnet18-32px", "resnet18", 32, 16, 2, 32), Setting("resnet50-64px", "resnet50", 64, 4, 2, 96)]
    return [Setting("resnet18-32px", "resnet18", 32, 512, 20, 32),
            Setting("resnet50-224px", "resnet50", 224, 256, 12, 400)]


def in_memory(n: int, side: int, seed: int = 0) -> ArrayImages:
    """n photo-like uint8 images (smooth colour fields with texture) of side x side, labelled in 8 classes."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 6, 6, generator=g)
    x = torch.nn.functional.interpolate(low, size=(side, side), mode="bicubic", align_corners=False)
    x = (x * 200 + 28 + torch.randn(n, 3, side, side, generator=g) * 12).clamp(0, 255).to(torch.uint8)
    return ArrayImages(x, torch.randint(0, 8, (n,), generator=g), [str(i) for i in range(8)])


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


def model_step(s: Setting, device: torch.device, precision: str, peak: float) -> dict:
    """Fixed views through simclr's step and the common recipe's (data excluded)."""
    training = training_from(s.overrides(str(device), precision), in_memory(2 * s.batch, s.size))
    views = next(training.loader.batches(0))
    with FlopCounterMode(display=False) as counter:
        training.method.training_step(views).loss.backward()
    flops = counter.get_total_flops()
    steps = itertools.count()
    t = timed(lambda: [training.step(views, next(steps)) for _ in range(s.steps)], device, 3) / s.steps
    common = CommonStep(s.arch, device, precision)
    v1, v2 = views.view1.contiguous(), views.view2.contiguous()
    t_common = timed(lambda: [common(v1, v2) for _ in range(s.steps)], device, 3) / s.steps
    return {"setting": s.name, "batch": s.batch, "precision": precision, "simclr_images_per_s": s.batch / t,
            "common_images_per_s": s.batch / t_common, "ratio": t_common / t,
            "gflop_per_image": flops / s.batch / 1e9, "achieved_tflop_s": flops / t / 1e12,
            "fraction_of_bf16_matmul": flops / t / peak, "host_syncs_per_step": syncs_per_step(training, views, 3)}


def ours_rate(training: Training, s: Setting, device: torch.device, warmup: int) -> float:
    batches = itertools.chain.from_iterable(training.loader.batches(e) for e in itertools.count())
    return rate(training.step, batches, s.batch, device, warmup, s.steps)


def common_rate(pairs: CommonPairs, s: Setting, device: torch.device, precision: str, workers: int,
                warmup: int) -> float:
    step = CommonStep(s.arch, device, precision)
    loader = common_loader(pairs, s.batch, workers, pin=device.type == "cuda")
    return rate(lambda b, i: step(*b), forever(loader), s.batch, device, warmup, s.steps)


def in_memory_check(s: Setting, device: torch.device, precision: str, workers: int, warmup: int) -> dict:
    """Augmentation included, decoding excluded: the same in-memory images through both data paths."""
    n = s.batch * (warmup + s.steps + 1)
    images = in_memory(n, s.source, seed=1)
    arrays = images.images.permute(0, 2, 3, 1).numpy()
    ours = ours_rate(training_from(s.overrides(str(device), precision), images), s, device, warmup)
    pairs = CommonPairs(n, lambda i: Image.fromarray(arrays[i]), common_view(s.size, 0.5 if s.size <= 32 else 1.0,
                                                                                blur=s.size > 32))
    common = common_rate(pairs, s, device, precision, workers, warmup)
    return {"setting": s.name, "batch": s.batch, "source_side": s.source, "workers": workers,
            "simclr_images_per_s": ours, "common_images_per_s": common, "ratio": ours / common,
            "excludes": "decoding (uint8 images in memory)"}


def _write_jpeg(job: tuple[Path, int, int, int]) -> None:
    path, seed, short, quality = job
    rng = np.random.default_rng(seed)
    h, w = (short, short * 4 // 3) if seed % 2 else (short * 4 // 3, short)
    low = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    arr = np.asarray(low, dtype=np.float32) + rng.normal(0, 12, (h, w, 3))
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(path, quality=quality)


def jpeg_folder(root: Path, n: int, short: tuple[int, int], workers: int) -> Path:
    """n JPEGs in 8 class folders, short side in ``short`` (a 4:3 photo), quality 90: photo-sized files."""
    from multiprocessing import Pool

    jobs = []
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / f"class{i % 8}"
        folder.mkdir(parents=True, exist_ok=True)
        jobs.append((folder / f"{i:06d}.jpg", i, int(rng.integers(short[0], short[1] + 1)), 90))
    with Pool(max(1, workers)) as pool:
        pool.map(_write_jpeg, jobs, chunksize=16)
    return root


def jpeg_check(s: Setting, device: torch.device, precision: str, workers: int, warmup: int, quick: bool,
               tmp: Path) -> dict:
    """The whole data path: JPEG files decoded, cropped and augmented, then the step."""
    from torchvision.datasets import ImageFolder

    n = s.batch * (warmup + s.steps + 1)
    short = (48, 64) if quick else (375, 500)
    t0 = time.perf_counter()
    root = jpeg_folder(tmp / "jpegs", n, short, workers)
    made = time.perf_counter() - t0
    mb = sum(p.stat().st_size for p in root.rglob("*.jpg")) / n / 1e6
    training = training_from(s.overrides(str(device), precision, workers), FolderImages(root))
    ours = ours_rate(training, s, device, warmup)
    folder = ImageFolder(str(root))
    pairs = CommonPairs(len(folder), lambda i: folder.loader(folder.samples[i][0]),
                        common_view(s.size, 1.0, blur=s.size > 32))
    common = common_rate(pairs, s, device, precision, workers, warmup)
    return {"setting": s.name, "batch": s.batch, "images": n, "short_side": list(short), "mean_file_mb": mb,
            "workers": workers, "folder_made_s": made, "simclr_images_per_s": ours, "common_images_per_s": common,
            "ratio": ours / common, "includes": "JPEG decoding in DataLoader workers"}


def metrics_rate(run: Path, skip: int) -> float:
    """Images/s over a run's log records after the first ``skip`` steps (from metrics.jsonl)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    later = [r["images_per_s"] for r in rows if r["step"] > skip]
    return statistics.median(later)


def pretrain_args(device: str, quick: bool, batch: int, steps: int, out: Path) -> list[str]:
    """A ``simclr pretrain`` of ``steps`` steps inside one epoch (the checkpoint comes at the end, outside the
    timed steps), ResNet-18 CIFAR stem at 32 px (16 px x0.25 with --quick), bf16 (fp32 on a CPU)."""
    size, width = (16, "0.25") if quick else (32, "1.0")
    return ["pretrain", "--dataset", "synthetic", "--limit", str(batch * (steps + 2)), "--image-size", str(size),
            "--width-multiplier", width, "--stem", "cifar", "--batch-size", str(batch), "--max-steps", str(steps),
            "--epochs", "1", "--log-every", "2" if quick else "10", "--device", device,
            "--precision", "fp32" if device == "cpu" else "bf16", "--out", str(out)]


def pretrain_check(device: str, quick: bool, tmp: Path) -> dict:
    from simclr.cli.main import main as simclr_main

    steps, batch = (4, 16) if quick else (60, 512)
    out = tmp / "pretrain"
    t0 = time.perf_counter()
    if simclr_main(pretrain_args(device, quick, batch, steps, out)) != 0:
        raise RuntimeError("simclr pretrain failed")
    wall = time.perf_counter() - t0
    return {"setting": "resnet18-cifar-32px synthetic in memory" if not quick else "quick", "batch": batch,
            "steps": steps, "images_per_s_median_late": metrics_rate(out, steps // 2), "wall_s": wall,
            "excludes": "decoding (in-memory synthetic images); includes the loop, callbacks and online probe; "
                        "no checkpoint inside the timed steps"}


def distributed_check(device: torch.device, quick: bool, tmp: Path) -> dict | None:
    """torchrun over every visible GPU (nccl) against one GPU at the same per-GPU batch; gloo x 2 on a CPU."""
    if device.type == "cuda":
        ranks = torch.cuda.device_count()
        if ranks < 2:
            return None
    else:
        ranks = 2
    per_rank, steps = (8, 4) if quick else (256, 40)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1" if device.type == "cpu" else os.environ.get("OMP_NUM_THREADS", "4")}
    dev = "cuda" if device.type == "cuda" else "cpu"

    def launch(n: int, name: str) -> float:
        out = tmp / name
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", "-m", "simclr",
               *pretrain_args(dev, quick, per_rank * n, steps, out)]
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
        return metrics_rate(out, steps // 2)

    one = launch(1, "one")
    many = launch(ranks, "many")
    return {"ranks": ranks, "backend": "nccl" if dev == "cuda" else "gloo", "images_per_rank": per_rank,
            "one_images_per_s": one, "all_images_per_s": many, "scaling_efficiency": many / (one * ranks)}


def run(args: argparse.Namespace, out: dict, save: Callable[[], None], tmp: Path) -> None:
    device = torch.device(args.device)
    precision = args.precision or ("bf16" if device.type == "cuda" else "fp32")
    workers = args.workers or (2 if args.quick else max(1, min((os.cpu_count() or 2) - 1, 15)))
    warmup = 1 if args.quick else 3
    out["settings"] = {"precision": precision, "workers": workers, "quick": args.quick}
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
          f"{a['32px_images_per_s']:.0f} views/s at 32 px, {a['224px_images_per_s']:.0f} at 224 px", flush=True)
    out["model_step"], out["in_memory"] = [], []
    for s in settings(args.quick):
        m = model_step(s, device, precision, peak)
        out["model_step"].append(m)
        save()
        print(f"model step {s.name}, batch {s.batch}, {precision}: simclr {m['simclr_images_per_s']:.0f} images/s, "
              f"common recipe {m['common_images_per_s']:.0f} ({m['ratio']:.2f}x); {m['gflop_per_image']:.2f} "
              f"GFLOP/image, {m['fraction_of_bf16_matmul']:.1%} of bf16 matmul, {m['host_syncs_per_step']} host "
              "syncs per step", flush=True)
    for s in settings(args.quick):
        r = in_memory_check(s, device, precision, workers, warmup)
        out["in_memory"].append(r)
        save()
        print(f"in memory {s.name} (from {s.source} px): simclr {r['simclr_images_per_s']:.0f} images/s, common "
              f"recipe ({workers} workers) {r['common_images_per_s']:.0f} ({r['ratio']:.2f}x)", flush=True)
    j = out["jpeg_folder"] = jpeg_check(settings(args.quick)[1], device, precision, workers, warmup, args.quick, tmp)
    save()
    print(f"JPEG folder {j['setting']} ({j['images']} files, {j['mean_file_mb'] * 1000:.0f} KB each, "
          f"{workers} workers): "
          f"simclr {j['simclr_images_per_s']:.0f} images/s, common recipe {j['common_images_per_s']:.0f} "
          f"({j['ratio']:.2f}x)", flush=True)
    p = out["pretrain"] = pretrain_check(args.device, args.quick, tmp)
    save()
    print(f"simclr pretrain ({p['setting']}, batch {p['batch']}, {p['steps']} steps): "
          f"{p['images_per_s_median_late']:.0f} images/s, {p['wall_s']:.0f} s in all", flush=True)
    d = out["distributed"] = distributed_check(device, args.quick, tmp)
    save()
    if d is None:
        print("distributed: one GPU visible, skipped", flush=True)
    else:
        print(f"torchrun x {d['ranks']} ({d['backend']}), {d['images_per_rank']} images per rank: "
              f"{d['all_images_per_s']:.0f} images/s against {d['one_images_per_s']:.0f} on one "
              f"({d['scaling_efficiency']:.0%} scaling efficiency)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny smoke-test sizes (for a CPU)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), help="default: bf16 on CUDA, fp32 on a CPU")
    p.add_argument("--workers", type=int, help="DataLoader workers of both data paths (default: cores - 1, <= 15)")
    p.add_argument("--matmul-size", type=int, default=8192)
    p.add_argument("--commit", help="the commit measured (default: git rev-parse HEAD, else $SIMCLR_COMMIT)")
    p.add_argument("--json", help="write the results here (after every section)")
    args = p.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device visible (torch.cuda.is_available() is False)")
    device = torch.device(args.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
        args.device = str(device)
    out: dict = {"environment": environment(device, args.commit)}
    t_start = time.perf_counter()

    def save() -> None:
        out["wall_s"] = time.perf_counter() - t_start
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=2))

    env = out["environment"]
    print(f"device: {env['device']}, commit {env['commit'][:12]}, torch {env['torch']}, CUDA {env['cuda']}, "
          f"cuDNN {env['cudnn']}, driver {env['driver']}", flush=True)
    save()
    with tempfile.TemporaryDirectory() as tmp:
        run(args, out, save, Path(tmp))
    save()
    print(f"total {out['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
