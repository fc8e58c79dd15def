"""End-to-end pretraining step throughput (augment + forward + NT-Xent + backward + step).

Times whole training steps of the issue #2 reference setting (ResNet-18, ImageNet stem,
28 px, SGD) on in-memory Fashion-MNIST-sized data, for each precision, interleaved so that
machine noise hits all of them alike; prints the median images/s per precision.

usage: python benchmarks/throughput.py [--batch-size 256] [--steps 5] [--repeats 3]
       [--precisions fp32 bf16 fp32+compile] [--device cpu]

A setting ``PREC+compile`` runs the model through ``torch.compile`` (inductor), as
``simclr pretrain --compile`` does; its warm-up step includes the compilation, timed apart.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from simclr.augment import AugmentConfig, SimCLRAugment
from simclr.loss import nt_xent
from simclr.models import build_model
from simclr.optim import build_optimizer
from simclr.train import autocast_context


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="channels_last model and input (the trainer's default)")
    args = p.parse_args()
    device = torch.device(args.device)
    images = torch.randint(0, 256, (args.batch_size, 1, 28, 28), dtype=torch.uint8, device=device)
    aug = SimCLRAugment(AugmentConfig(color_strength=0.5, blur=False), args.image_size)
    setups = {}
    for setting in args.precisions:
        torch.manual_seed(0)
        model = build_model("resnet18", 1.0, "imagenet", args.image_size).to(device).train()
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = build_optimizer("sgd", model, 0.06, 5e-4)
        run = torch.compile(model) if setting.endswith("+compile") else model
        setups[setting] = (run, opt)
    rates: dict[str, list[float]] = {prec: [] for prec in args.precisions}
    g = torch.Generator().manual_seed(0)

    def step(setting: str) -> None:
        model, opt = setups[setting]
        prec = setting.partition("+")[0]
        x = torch.cat([aug(images, g), aug(images, g)])
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast_context(prec, device):
            _, z = model(x)
        loss, _ = nt_xent(*z.float().chunk(2), 0.5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for prec in args.precisions:
        t0 = time.perf_counter()
        step(prec)  # warm-up (and compilation)
        step(prec)
        print(f"{prec}: first two steps {time.perf_counter() - t0:.1f} s", flush=True)
    for _ in range(args.repeats):
        for prec in args.precisions:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(prec)
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates[prec].append(args.steps * args.batch_size / (time.perf_counter() - t0))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, "
          f"batch {args.batch_size}, {args.steps} steps x {args.repeats} repeats, "
          f"channels_last {args.channels_last}")
    base = statistics.median(rates[args.precisions[0]])
    for prec in args.precisions:
        med = statistics.median(rates[prec])
        runs = ", ".join(f"{r:.1f}" for r in rates[prec])
        print(f"{prec}: median {med:.1f} images/s ({runs}); ratio to {args.precisions[0]} {med / base:.3f}")


if __name__ == "__main__":
    main()
