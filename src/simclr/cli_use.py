"""Commands that use a trained run: ``embed``, ``search``, ``export``, ``preview-augment``, ``plot``,
``visualize``. Each fails with one ``error:`` line (exit 2) and leaves no partial output file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from simclr.errors import SimCLRError


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="embeddings of every image (.npz or .parquet)")
    p.add_argument("--run", "--run-dir", dest="run", required=True, help="a finished run directory or encoder file")
    _add_image_source(p)
    p.add_argument("--out", required=True, help="FILE.npz or FILE.parquet")
    p.add_argument("--layer", choices=("h", "z"), default="h", help="h = f(x) (default) or z = g(h)")
    p.add_argument("--split", choices=("train", "test"), default="train", help="with --dataset (default train)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers decoding image files")
    p.add_argument("--device", default="auto")

    p = sub.add_parser("search", help="nearest neighbours of query images in an embeddings file")
    p.add_argument("--index", required=True, help="an embeddings file from 'simclr embed'")
    p.add_argument("--query", required=True, help="an image, or a folder of images")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--method", choices=("auto", "exact", "approx"), default="auto",
                   help="exact (chunked), approx (FAISS HNSW), auto: approx above 200k vectors if FAISS is installed")
    p.add_argument("--run", "--run-dir", dest="run", help="the model that built the index (default: recorded in it)")
    p.add_argument("--html", help="also write an offline HTML page of the results")
    p.add_argument("--data-dir", help="where the index's dataset lives (thumbnails of dataset entries)")
    p.add_argument("--device", default="auto")

    p = sub.add_parser("export", help="export the encoder alone (torchscript, onnx, safetensors)")
    p.add_argument("--run", "--run-dir", dest="run", required=True)
    p.add_argument("--format", required=True, choices=("torchscript", "onnx", "safetensors"))
    p.add_argument("--out", required=True)
    p.add_argument("--image-size", type=int, help="example input side for tracing (default: the run's)")

    p = sub.add_parser("preview-augment", help="a PNG grid of originals beside pairs of augmented views")
    _add_image_source(p)
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
    _add_image_source(p)
    p.add_argument("--out", required=True, help="MAP.png")
    p.add_argument("--split", choices=("train", "test"), default="test")
    p.add_argument("--method", choices=("auto", "tsne", "umap"), default="auto")
    p.add_argument("--max-points", type=int, default=3000, help="use the first N images (default 3000)")
    p.add_argument("--device", default="auto")


def _add_image_source(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", help="a folder of images (labels from subfolders when present)")
    src.add_argument("--dataset", help="a dataset name (see simclr pretrain --help)")
    p.add_argument("--data-dir", help="with --dataset: where it lives")
    p.add_argument("--limit", type=int, help="only the first N images")


def _finished_encoder(run: str):  # noqa: ANN202
    from simclr.checkpoint import ENCODER, load_encoder

    p = Path(run)
    if p.is_dir() and not (p / ENCODER).is_file():
        raise SimCLRError(
            f"{run} has no finished encoder ({ENCODER}): let the run finish (simclr pretrain --resume), "
            f"or pass {p / 'checkpoint.pt'} to use its latest checkpoint"
        )
    if not p.exists():
        raise SimCLRError(f"{run} does not exist: pass a run directory or an encoder file")
    return load_encoder(p)


def _source(args: argparse.Namespace, size: int, split: str = "train"):  # noqa: ANN202
    """(images, names) for --images DIR or --dataset NAME."""
    from simclr.data.folder import FolderImages
    from simclr.data.sources import load_images

    if args.images:
        images = FolderImages(args.images, args.limit)
        return images, list(images.paths)
    images = load_images(args.dataset, split, args.data_dir, args.limit, 0, size)
    return images, [f"{args.dataset}:{split}:{i}" for i in range(len(images))]


def _embed(args: argparse.Namespace) -> int:
    import torch

    from simclr.checkpoint import load_head
    from simclr.data.folder import FolderImages
    from simclr.embed_files import embed_images
    from simclr.embedding import Embeddings, fingerprint
    from simclr.train import pick_device

    out = Path(args.out)
    if out.suffix.lower() not in (".npz", ".parquet"):
        raise SimCLRError(f"--out {out}: use a .npz or .parquet file name")
    encoder = _finished_encoder(args.run)
    device = pick_device(args.device)
    size = int(encoder.image_size)  # type: ignore[arg-type]
    head = load_head(args.run, device) if args.layer == "z" else None
    images, names = _source(args, size, args.split)
    vectors, kept = embed_images(encoder.to(device), images, size, device, args.batch_size, args.workers, head)
    labels = torch.as_tensor(images.labels)[kept].numpy()
    if isinstance(images, FolderImages):
        names = [str(Path(n).resolve()) for n in names]
    model = fingerprint(encoder, args.layer) | {"run": str(Path(args.run).resolve())}
    Embeddings(vectors.numpy(), [names[i] for i in kept], labels, model).save(out)
    print(f"{len(kept)} embeddings of dimension {vectors.shape[1]} ({args.layer}) written to {out}")
    return 0


def _query_images(query: str) -> list[str]:
    from simclr.data.folder import _header_ok, scan_folder

    p = Path(query)
    if p.is_dir():
        paths, _, _ = scan_folder(p)  # raises if the folder holds no readable image
        return paths
    if not p.is_file():
        raise SimCLRError(f"--query {query} does not exist")
    why = _header_ok(p)
    if why is not None:
        raise SimCLRError(f"--query {query} is not an image ({why})")
    return [str(p)]


def _search(args: argparse.Namespace) -> int:
    import torch

    from simclr.checkpoint import load_head
    from simclr.data.folder import FolderImages
    from simclr.embed_files import embed_images
    from simclr.embedding import Embeddings, fingerprint
    from simclr.search import Searcher
    from simclr.train import pick_device

    if args.k < 1:
        raise SimCLRError(f"--k must be >= 1, got {args.k}")
    if args.html and Path(args.html).suffix.lower() not in (".html", ".htm"):
        raise SimCLRError(f"--html {args.html}: use a .html file name")
    index = Embeddings.load(args.index)
    run = args.run or index.model.get("run")
    if not run:
        raise SimCLRError("the index does not record its model: pass --run")
    encoder = _finished_encoder(str(run))
    layer = str(index.model.get("layer", "h"))
    recorded = index.model.get("weights_sha256")
    if recorded and fingerprint(encoder, layer)["weights_sha256"] != recorded:
        raise SimCLRError(
            f"{args.index} was built by another model than {run} (its weights differ): "
            "embed the gallery and the queries with the same encoder"
        )
    queries = _query_images(args.query)
    device = pick_device(args.device)
    size = int(encoder.image_size)  # type: ignore[arg-type]
    folder = FolderImages.__new__(FolderImages)
    folder.root, folder.classes, folder._bad = str(args.query), [], set()
    folder.paths, folder.labels = queries, torch.full((len(queries),), -1, dtype=torch.long)
    head = load_head(str(run), device) if layer == "z" else None
    q, kept = embed_images(encoder.to(device), folder, size, device, 64, 0, head, progress=False)
    if not kept:
        raise SimCLRError(f"none of the query images under {args.query} could be read")
    searcher = Searcher(index, method=args.method)
    searcher.check_dim(q)
    hits = searcher.search(q, args.k)
    names = [queries[i] for i in kept]
    for qi, name in enumerate(names):
        print(name)
        for path, score in zip(hits.paths[qi], hits.scores[qi], strict=True):
            print(f"  {score:.4f}  {path}")
    if args.html:
        from simclr.search_html import render
        from simclr.write import atomic_write_text

        thumb = _dataset_thumbs(args.data_dir)
        atomic_write_text(args.html, render(names, hits, thumb, title=f"simclr search in {Path(args.index).name}"))
        print(f"wrote {args.html}", file=sys.stderr)
    return 0


def _dataset_thumbs(data_dir: str | None):  # noqa: ANN202
    """Thumbnails for gallery entries named DATASET:SPLIT:INDEX (loaded once per split)."""
    from simclr.data.sources import load_images
    from simclr.pictures import _to_pil

    cache: dict[tuple[str, str], Any] = {}

    def thumb(name: str):  # noqa: ANN202
        parts = name.split(":")
        if len(parts) != 3 or not parts[2].isdigit():
            return None
        key = (parts[0], parts[1])
        if key not in cache:
            try:
                cache[key] = load_images(parts[0], parts[1], data_dir)
            except SimCLRError:
                cache[key] = None
        images = cache[key]
        if images is None or not hasattr(images, "images"):
            return None
        i = int(parts[2])
        return _to_pil(images.images[i]) if i < len(images) else None

    return thumb


def _export(args: argparse.Namespace) -> int:
    from simclr.export import export_encoder

    encoder = _finished_encoder(args.run)
    out = export_encoder(encoder, args.format, args.out, args.image_size)
    print(f"{args.format} encoder written to {out}")
    return 0


def _preview(args: argparse.Namespace) -> int:
    import torch

    from simclr.config import PretrainConfig, apply_overrides, load_yaml, resolve
    from simclr.data.folder import FolderImages
    from simclr.data.loaders import _center_resize, _pil_to_uint8
    from simclr.pictures import save_augmentation_grid

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
    if args.images:
        folder = FolderImages(args.images, limit)
        # crop source: a larger centre crop, so the random resized crop has room (as training reads files)
        src = max(size, round(size * 8 / 7))
        batch = torch.stack([_pil_to_uint8(_center_resize(folder.get(i)[0], src)) for i in range(len(folder))])
    else:
        from simclr.data.sources import load_images

        batch = load_images(args.dataset, "train", args.data_dir, limit, args.seed, size).images[:limit]
    out = save_augmentation_grid(batch, cfg.augment.to_augment_config(), size, args.out, args.pairs, args.seed)
    print(f"preview of {len(batch)} images x {args.pairs} pairs of views written to {out}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from simclr.pictures import plot_run

    for path in plot_run(args.run, args.out):
        print(path)
    return 0


def _visualize(args: argparse.Namespace) -> int:
    from simclr.embed_files import embed_images
    from simclr.pictures import embedding_map
    from simclr.train import pick_device

    encoder = _finished_encoder(args.run)
    device = pick_device(args.device)
    size = int(encoder.image_size)  # type: ignore[arg-type]
    limit = args.max_points if args.limit is None else min(args.limit, args.max_points)
    args.limit = limit
    images, _ = _source(args, size, args.split)
    vectors, kept = embed_images(encoder.to(device), images, size, device, 256, 0, None)
    import torch

    labels = torch.as_tensor(images.labels)[kept].numpy()
    name = args.dataset or Path(args.images).name
    out = embedding_map(vectors.numpy(), labels, list(images.classes), args.out, method=args.method,
                        title=f"{Path(args.run).name}: {len(kept)} {name} images")
    print(f"map of {len(kept)} embeddings written to {out}")
    return 0


COMMANDS = {
    "embed": _embed,
    "search": _search,
    "export": _export,
    "preview-augment": _preview,
    "plot": _plot,
    "visualize": _visualize,
}
