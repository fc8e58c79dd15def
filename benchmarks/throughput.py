"""End-to-end pretraining step throughput: the real step of ``simclr pretrain``, per precision.

Times whole steps of the issue #2 reference setting (ResNet-18, ImageNet stem, 28 px, SGD) exactly
as a run takes them: the loader's batch (uint8 images to the device, the batched augmentation there)
and ``TrainStep`` (forward, NT-Xent, backward, finiteness guard, optimiser step), built by
``simclr.train.setup.training_from`` from the run's configuration, on in-memory Fashion-MNIST-sized
data (random pixels: the speed does not depend on them). Precisions are interleaved so that machine
noise hits all of them alike; prints the median images/s per precision. Excluded: the callbacks
(metrics, checkpoints, monitors) and the one device read of each log step.

usage: python benchmarks/throughput.py [--batch-size 256] [--steps 5] [--repeats 3]
       [--precisions fp32 bf16 fp32+compile] [--device cpu]

A setting ``PREC+compile`` runs the model through ``torch.compile`` (inductor), as
``simclr pretrain --compile`` does; its warm-up step includes the compilation, timed apart.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch

from simclr.data.images import ArrayImages
from simclr.train.setup import Training, training_from


def reference_overrides(precision: str, batch: int, size: int, channels_last: bool, compile_: bool,
                        device: str) -> dict:
    return {
        "data.dataset": "fashion-mnist", "data.image_size": size, "model.arch": "resnet18", "model.stem": "imagenet",
        "augment.color_strength": 0.5, "augment.blur": False, "loss.temperature": 0.5, "optim.optimizer": "sgd",
        "optim.base_lr": 0.06, "optim.weight_decay": 5e-4, "optim.warmup_epochs": 0.0, "train.batch_size": batch,
        "train.epochs": 100, "train.precision": precision, "train.channels_last": channels_last,
        "train.compile": compile_, "train.device": device,
    }


def fake_fashion_mnist(n: int) -> ArrayImages:
    g = torch.Generator().manual_seed(0)
    return ArrayImages(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
                       torch.randint(0, 10, (n,), generator=g), [str(i) for i in range(10)])


class Stepper:
    """Whole steps of one training set-up, batch after batch, as the loop takes them."""

    def __init__(self, training: Training) -> None:
        self.training = training
        self.batches = itertools.chain.from_iterable(training.loader.batches(e) for e in itertools.count())
        self.step = 0

    def __call__(self) -> None:
        self.training.step(next(self.batches), self.step)
        self.step += 1


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


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
    images = fake_fashion_mnist(4 * args.batch_size)
    steppers = {}
    for setting in args.precisions:
        prec, _, extra = setting.partition("+")
        overrides = reference_overrides(prec, args.batch_size, args.image_size, args.channels_last,
                                        extra == "compile", args.device)
        steppers[setting] = Stepper(training_from(overrides, images))
    device = next(iter(steppers.values())).training.device
    rates: dict[str, list[float]] = {s: [] for s in args.precisions}
    for setting, step in steppers.items():
        t0 = time.perf_counter()
        step()  # warm-up (and compilation)
        step()
        sync(device)
        print(f"{setting}: first two steps {time.perf_counter() - t0:.1f} s", flush=True)
    for _ in range(args.repeats):
        for setting, step in steppers.items():
            sync(device)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            sync(device)
            rates[setting].append(args.steps * args.batch_size / (time.perf_counter() - t0))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, "
          f"batch {args.batch_size}, {args.steps} steps x {args.repeats} repeats, "
          f"channels_last {args.channels_last}")
    base = statistics.median(rates[args.precisions[0]])
    for setting in args.precisions:
        med = statistics.median(rates[setting])
        runs = ", ".join(f"{r:.1f}" for r in rates[setting])
        print(f"{setting}: median {med:.1f} images/s ({runs}); ratio to {args.precisions[0]} {med / base:.3f}")


if __name__ == "__main__":
    main()
