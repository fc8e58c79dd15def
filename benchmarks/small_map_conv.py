"""Tiny-map convolutions: oneDNN's conv vs simclr's dense matmul form, per layer and per step.

Part 1 times forward + backward of each 3x3 conv shape that ResNet-18 (ImageNet stem) meets at
28 px with 2 x 256 views (layer3 at 2x2, the stride-2 conv into layer4, layer4 at 1x1), both ways.
Part 2 times whole training steps (forward, NT-Xent, backward, SGD step; no augmentation) of that
model with the dense form on or off and channels_last on or off. Configurations are interleaved
so that machine noise hits all alike; medians are printed.

usage: python benchmarks/small_map_conv.py [--batch-size 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from simclr.loss import nt_xent
from simclr.models import build_model
from simclr.models import conv as conv_mod
from simclr.optim import build_optimizer

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

    print("\nwhole training step (ResNet-18, ImageNet stem, SGD), images/s:")
    x0 = torch.rand(n, 3, 28, 28)
    real_use_dense = conv_mod.use_dense
    setups = {}
    for dense in (False, True):
        for cl in (False, True):
            torch.manual_seed(0)
            model = build_model("resnet18", 1.0, "imagenet", 28).train()
            x = x0
            if cl:
                model = model.to(memory_format=torch.channels_last)
                x = x0.contiguous(memory_format=torch.channels_last)
            setups[(dense, cl)] = (model, build_optimizer("sgd", model, 0.06, 5e-4), x)

    def step(dense: bool, cl: bool) -> None:
        model, opt, x = setups[(dense, cl)]
        conv_mod.use_dense = real_use_dense if dense else (lambda x, conv: False)
        try:
            _, z = model(x)
            loss, _ = nt_xent(*z.float().chunk(2), 0.5)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
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
