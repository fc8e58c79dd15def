"""Tiny-map convolutions: oneDNN's conv vs simclr's dense matmul form, per layer and per step.

Part 1 times forward + backward of each 3x3 conv shape that ResNet-18 (ImageNet stem) meets at
28 px with 2 x 256 views (layer3 at 2x2, the stride-2 conv into layer4, layer4 at 1x1), both ways.
Part 2 times whole real training steps (``TrainStep``: forward, NT-Xent, backward, guard, SGD step; on
fixed views, no augmentation) of that model with the dense form on or off and channels_last on or off.
Configurations are interleaved so that machine noise hits all alike; medians are printed.

usage: python benchmarks/small_map_conv.py [--batch-size 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from throughput import fake_fashion_mnist, reference_overrides

from simclr.data.loaders import ViewBatch
from simclr.models import conv as conv_mod
from simclr.train.setup import training_from

SHAPES = [  # (in, out, kernel, stride, padding, side)
    (256, 256, 3, 1, 1, 2),
    (256, 512, 3, 2, 1, 2),
    (512, 512, 3, 1, 1, 1),
]


def _once(fn) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    n = 2 * args.batch_size
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {n} views of 28 px")

    print("\nper layer (forward + backward, ms, channels_last):")
    for c, o, k, s, pad, side in SHAPES:
        x = torch.randn(n, c, side, side).contiguous(memory_format=torch.channels_last).requires_grad_()
        w = torch.randn(o, c, k, k).contiguous(memory_format=torch.channels_last).requires_grad_()

        def run(dense: bool, x=x, w=w, s=s, pad=pad) -> None:  # noqa: ANN001
            y = conv_mod.dense_conv2d(x, w, None, (s, s), (pad, pad)) if dense else F.conv2d(x, w, None, s, pad)
            y.backward(torch.ones_like(y))

        times: dict[bool, list[float]] = {False: [], True: []}
        run(False), run(True)  # warm-up
        for _ in range(args.repeats):
            for dense in (False, True):
                times[dense].append(_once(lambda dense=dense: run(dense)))
        a, b = statistics.median(times[False]) * 1e3, statistics.median(times[True]) * 1e3
        print(f"  {c}->{o} {k}x{k} stride {s} at {side}x{side}: conv {a:.1f}  dense {b:.1f}  speed-up {a / b:.2f}x")

    print("\nwhole training step (ResNet-18, ImageNet stem, SGD; the real TrainStep on fixed views), images/s:")
    x0 = torch.rand(n, 3, 28, 28)
    views = ViewBatch(x0[: args.batch_size], x0[args.batch_size :], torch.zeros(args.batch_size, dtype=torch.long))
    real_use_dense = conv_mod.use_dense
    setups = {}
    for dense in (False, True):
        for cl in (False, True):
            overrides = reference_overrides("fp32", args.batch_size, 28, cl, False, "cpu")
            setups[(dense, cl)] = training_from(overrides, fake_fashion_mnist(args.batch_size))

    def step(dense: bool, cl: bool) -> None:
        conv_mod.use_dense = real_use_dense if dense else (lambda x, conv: False)
        try:
            setups[(dense, cl)].step(views, 0)
        finally:
            conv_mod.use_dense = real_use_dense

    rates: dict[tuple[bool, bool], list[float]] = {key: [] for key in setups}
    for key in setups:
        step(*key)  # warm-up
    for _ in range(args.repeats):
        for key in setups:
            rates[key].append(args.batch_size / _once(lambda key=key: step(*key)))
    base = statistics.median(rates[(False, False)])
    for (dense, cl), r in rates.items():
        med = statistics.median(r)
        print(f"  dense {'on ' if dense else 'off'} channels_last {'on ' if cl else 'off'}: "
              f"median {med:.1f} ({', '.join(f'{v:.0f}' for v in r)}); x{med / base:.2f}")


if __name__ == "__main__":
    main()
