"""Activation memory of a training step, from the sizes of the tensors autograd keeps for the backward.

Builds the real network of a configuration (``simclr.train.setup.build_network``: encoder f and head g,
channels_last) and runs one forward of a few views under the run's autocast precision inside
``torch.autograd.graph.saved_tensors_hooks``, adding up the bytes of every distinct storage kept for the
backward. That is the part of a step's peak memory that grows with the batch (a GPU adds its kernels'
workspaces and the allocator's rounding on top); parameters, gradients and optimiser state are counted
apart. It runs on the CPU in seconds: the sizes are those a GPU would keep (bf16 autocast keeps bf16
convolution outputs on both).

usage: python benchmarks/activation_memory.py [--preset imagenet-paper] [--views 2] [--precision bf16]
prints MB per view, the estimate for the preset's batch (2 views per image), and the largest
``--chunk-size`` (images per chunk) that keeps the activations within ``--gpu-gb``.
"""

from __future__ import annotations

import argparse
import json

import torch

from simclr.config import PretrainConfig, apply_overrides, load_preset, resolve
from simclr.runtime import autocast_context, to_channels_last
from simclr.train.setup import build_network


def saved_bytes(model: torch.nn.Module, x: torch.Tensor, precision: str) -> int:
    """Bytes of the distinct storages autograd keeps for the backward of ``model(x)``."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast_context(precision, x.device):
        h, z = model(x)
    del h, z
    return sum(seen.values())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="imagenet-paper")
    p.add_argument("--views", type=int, default=2, help="views in the measured forward (per-view bytes are linear)")
    p.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    p.add_argument("--gpu-gb", type=float, default=80.0, help="the card's memory, for the chunk size")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    cfg = PretrainConfig()
    apply_overrides(cfg, load_preset(args.preset), f"preset {args.preset}")
    cfg = resolve(cfg)
    assert cfg.data.image_size is not None
    size, batch = cfg.data.image_size, cfg.train.batch_size
    torch.manual_seed(0)
    model = build_network(cfg).to(memory_format=torch.channels_last).train()
    x = to_channels_last(torch.rand(args.views, 3, size, size))
    per_view = saved_bytes(model, x, args.precision) / args.views
    params = sum(p.numel() for p in model.parameters())
    fixed = params * 4 * 3  # fp32 weights, gradients and one momentum buffer (LARS / SGD)
    total = per_view * 2 * batch + fixed
    budget = args.gpu_gb * 1e9 * 0.85 - fixed  # leave ~15% for workspaces and the allocator
    chunk = int(budget // (2 * per_view))
    out = {
        "preset": args.preset, "arch": cfg.model.arch, "image_size": size, "batch": batch, "precision": args.precision,
        "activation_mb_per_view": per_view / 1e6, "params_m": params / 1e6, "fixed_gb": fixed / 1e9,
        "estimate_gb_whole_batch": total / 1e9, "gpu_gb": args.gpu_gb, "largest_chunk_images": chunk,
        "torch": torch.__version__,
    }
    print(f"{args.preset}: {cfg.model.arch} at {size} px, {args.precision}: {per_view / 1e6:.1f} MB of activations "
          f"per view; batch {batch} (2 x {batch} views): {per_view * 2 * batch / 1e9:.0f} GB of activations + "
          f"{fixed / 1e9:.2f} GB of weights, gradients and momentum = about {total / 1e9:.0f} GB in one step. "
          f"On one {args.gpu_gb:g} GB GPU: --chunk-size {chunk} or less (or that many images per GPU under torchrun).")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
