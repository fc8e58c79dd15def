"""``simclr preview-augment``, ``plot`` and ``visualize``: pictures of the views, a run's curves and a
2-D map of its embeddings. Each fails with one ``error:`` line (exit 2) and leaves no partial file."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from simclr.cli.use import add_image_source, finished_encoder, image_source
from simclr.config import PretrainConfig, apply_overrides, load_yaml, resolve
from simclr.data.folder import FolderImages
from simclr.data.images import center_resize, pil_to_uint8
from simclr.data.sources import load_images
from simclr.errors import SimCLRError
from simclr.runtime import pick_device
from simclr.use.embeddings import embed_images
from simclr.use.pictures import embedding_map, plot_run, save_augmentation_grid


def add_commands(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    p = sub.add_parser("preview-augment", help="a PNG grid of originals beside pairs of augmented views")
    add_image_source(p)
    p.add_argument("--out", required=True, help="GRID.png")
    p.add_argument("--n", type=int, default=8, help="images (rows), default 8")
    p.add_argument("--pairs", type=int, default=2, help="pairs of views per image, default 2")
    p.add_argument("--run", "--run-dir", dest="run", help="use this run's augmentation settings")
    p.add_argument("--config", help="use this config's augmentation settings")
    p.add_argument("--image-size", type=int)
    p.add_argument("--color-strength", type=float)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("plot", help="PNG curves of a run's metrics")
    p.add_argument("--run", "--run-dir", dest="run", required=True)
    p.add_argument("--out", required=True, help="output directory")

    p = sub.add_parser("visualize", help="a 2-D map (t-SNE or UMAP) of embeddings coloured by label")
    p.add_argument("--run", "--run-dir", dest="run", required=True)
    add_image_source(p)
    p.add_argument("--out", required=True, help="MAP.png")
    p.add_argument("--split", choices=("train", "test"), default="test")
    p.add_argument("--method", choices=("auto", "tsne", "umap"), default="auto")
    p.add_argument("--max-points", type=int, default=3000, help="use the first N images (default 3000)")
    p.add_argument("--device", default="auto")
    return {"preview-augment": preview_command, "plot": plot_command, "visualize": visualize_command}


def preview_command(args: argparse.Namespace) -> int:
    if args.n < 1 or args.pairs < 1:
        raise SimCLRError("--n and --pairs must be >= 1")
    cfg = PretrainConfig()
    config_file = args.config or (str(Path(args.run) / "config.yaml") if args.run else None)
    if config_file:
        saved = load_yaml(config_file)
        apply_overrides(cfg, {k: v for k, v in saved.items() if k == "augment" or k == "data"}, config_file)
    overrides: dict[str, Any] = {}
    if args.dataset:
        overrides["data.dataset"] = args.dataset
    elif args.images:
        overrides["data.dataset"] = "folder"
        overrides["data.data_dir"] = args.images
    if args.image_size:
        overrides["data.image_size"] = args.image_size
    if args.color_strength is not None:
        overrides["augment.color_strength"] = args.color_strength
    apply_overrides(cfg, overrides, "command line")
    cfg = resolve(cfg)
    size = int(cfg.data.image_size)  # type: ignore[arg-type]
    limit = args.n if args.limit is None else min(args.n, args.limit)
    folder_dir = args.images or (args.data_dir if cfg.data.dataset == "folder" else None)
    if folder_dir:  # --images DIR, or --dataset folder --data-dir DIR: the files, read as training reads them
        folder = FolderImages(folder_dir, limit)
        # crop source: a larger centre crop, so the random resized crop has room (as training reads files)
        src = max(size, round(size * 8 / 7))
        batch = torch.stack([pil_to_uint8(center_resize(folder.load(i)[0], src)) for i in range(len(folder))])
    else:
        batch = load_images(args.dataset, "train", args.data_dir, limit, args.seed, size).images[:limit]
    out = save_augmentation_grid(batch, cfg.augment.to_augment_config(), size, args.out, args.pairs, args.seed)
    print(f"preview of {len(batch)} images x {args.pairs} pairs of views written to {out}")
    return 0


def plot_command(args: argparse.Namespace) -> int:
    for path in plot_run(args.run, args.out):
        print(path)
    return 0


def visualize_command(args: argparse.Namespace) -> int:
    encoder = finished_encoder(args.run)
    device = pick_device(args.device)
    size = int(encoder.image_size)  # type: ignore[arg-type]
    limit = args.max_points if args.limit is None else min(args.limit, args.max_points)
    args.limit = limit
    images, _ = image_source(args, size, args.split)
    vectors, kept = embed_images(encoder.to(device), images, size, device, 256, 0, None)
    labels = torch.as_tensor(images.labels)[kept].numpy()
    name = args.dataset or Path(args.images).name
    out = embedding_map(vectors.numpy(), labels, list(images.classes), args.out, method=args.method,
                        title=f"{Path(args.run).name}: {len(kept)} {name} images")
    print(f"map of {len(kept)} embeddings written to {out}")
    return 0


