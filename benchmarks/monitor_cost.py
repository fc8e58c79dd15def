"""What the online monitors cost a run: the probe's update per step and one kNN evaluation, against the
real training step, on the reference setting (ResNet-18, ImageNet stem, 28 px, batch 256, SGD).

The probe (``simclr.train.monitors.OnlineProbe.on_train_step``) and the steps are timed alternately, step
after step, so machine noise hits both alike; the kNN monitor (``KNNMonitor.top1``: its bank and
queries encoded, then the vote) is timed ``--repeats`` times. Prints the medians and the share of a
run each monitor adds: probe = probe time / step time; kNN every E epochs = kNN time / (E x
steps per epoch x step time). Uses the real Fashion-MNIST for the kNN monitor's images (its sizes
follow the defaults: bank a tenth of the train split, queries a fifth of the bank).

usage: python benchmarks/monitor_cost.py [--steps 20] [--repeats 3] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import time
from types import SimpleNamespace

import torch
from throughput import reference_overrides

from simclr.data.sources import load_images
from simclr.train.monitors import KNNMonitor, OnlineProbe
from simclr.train.setup import training_from


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    args = p.parse_args()
    overrides = reference_overrides("fp32", args.batch_size, 28, True, False, "cpu")
    overrides["data.data_dir"] = args.data_dir
    images = load_images("fashion-mnist", "pretrain", args.data_dir, None, 0, 28)
    training = training_from(overrides, images)
    steps_per_epoch = len(training.loader)
    probe = OnlineProbe(training)
    knn = KNNMonitor(training, every=1)
    trainer = SimpleNamespace(state=SimpleNamespace(step=0), step_fn=training.step)
    knn.on_fit_start(trainer)  # type: ignore[arg-type]
    batches = iter(training.loader.batches(0))
    step_times, probe_times = [], []
    for s in range(args.steps + 2):
        batch = next(batches)
        t0 = time.perf_counter()
        out = training.step(batch, s)
        t1 = time.perf_counter()
        trainer.state.step = s + 1
        probe.on_train_step(trainer, batch, out)  # type: ignore[arg-type]
        float(out.logs["probe_acc"])  # the probe's work is done (it queues on the CPU anyway)
        t2 = time.perf_counter()
        if s >= 2:  # warm-up
            step_times.append(t1 - t0)
            probe_times.append(t2 - t1)
    knn_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        top1 = knn.top1()
        knn_times.append(time.perf_counter() - t0)
    t_step, t_probe, t_knn = (statistics.median(x) for x in (step_times, probe_times, knn_times))
    assert knn.bank is not None and knn.queries is not None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"{steps_per_epoch} steps per epoch")
    print(f"training step: median {t_step * 1e3:.1f} ms ({args.batch_size / t_step:.1f} images/s)")
    print(f"online probe update: median {t_probe * 1e3:.2f} ms per step = {t_probe / t_step:.2%} of a step")
    print(f"kNN monitor ({len(knn.bank)} bank + {len(knn.queries)} query images, top1 {top1:.4f} on the "
          f"untrained encoder): median {t_knn:.2f} s = {t_knn / (steps_per_epoch * t_step):.2%} of an epoch "
          f"(--knn-every 1)")


if __name__ == "__main__":
    main()
