"""``simclr embed``, ``search`` and ``export``: using a trained encoder. Each fails with one ``error:``
line (exit 2) and leaves no partial output file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from simclr.data.folder import FolderImages, header_ok, scan_folder
from simclr.data.images import Images
from simclr.data.sources import load_images
from simclr.errors import SimCLRError
from simclr.io import atomic_write_text
from simclr.models.weights import ENCODER, load_encoder, load_head
from simclr.runtime import pick_device, resolve_precision
from simclr.use.embeddings import Embeddings, embed_images, fingerprint
from simclr.use.export import FORMATS, export_encoder, usage_note
from simclr.use.html import render
from simclr.use.pictures import to_pil
from simclr.use.search import Searcher


def add_commands(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    p = sub.add_parser("embed", help="embeddings of every image (.npz or .parquet)")
    p.add_argument("--run", "--run-dir", dest="run", required=True, help="a finished run directory or encoder file")
    add_image_source(p)
    p.add_argument("--out", required=True, help="FILE.npz or FILE.parquet")
    p.add_argument("--layer", choices=("h", "z"), default="h", help="h = f(x) (default) or z = g(h)")
    p.add_argument("--split", choices=("train", "test"), default="train", help="with --dataset (default train)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers decoding image files")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="auto (default: bf16 where the hardware runs it natively, else fp32), fp32 or bf16")

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

    p = sub.add_parser("export", help="export the encoder alone (torchscript, onnx, safetensors, torchvision, timm)")
    p.add_argument("--run", "--run-dir", dest="run", required=True,
                   help="a run directory (the encoder), or a `simclr finetune` directory (torchvision: with its fc)")
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="torchvision / timm: a state dict that torchvision.models.resnetNN() / "
                   "timm.create_model('resnetNN', num_classes=0) loads with strict=True")
    p.add_argument("--out", required=True)
    p.add_argument("--image-size", type=int, help="example input side for tracing (default: the run's)")
    return {"embed": embed_command, "search": search_command, "export": export_command}


def add_image_source(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", help="a folder of images (labels from subfolders when present)")
    src.add_argument("--dataset", help="a dataset name (see simclr pretrain --help)")
    p.add_argument("--data-dir", help="with --dataset: where it lives")
    p.add_argument("--limit", type=int, help="only the first N images")


def finished_encoder(run: str) -> nn.Module:
    """The finished encoder of a run directory or an encoder file (a run still training: one line)."""
    p = Path(run)
    if p.is_dir() and not (p / ENCODER).is_file():
        raise SimCLRError(
            f"{run} has no finished encoder ({ENCODER}): let the run finish (simclr pretrain --resume), "
            f"or pass {p / 'checkpoint.pt'} to use its latest checkpoint"
        )
    if not p.exists():
        raise SimCLRError(f"{run} does not exist: pass a run directory or an encoder file")
    return load_encoder(p)


def image_source(args: argparse.Namespace, size: int, split: str = "train") -> tuple[Images, list[str]]:
    """(images, names) for --images DIR or --dataset NAME. ``--dataset folder --data-dir DIR`` is every image
    of DIR, as ``--images DIR`` (the evaluation's hold-out of every 5th image is for linear-eval and knn),
    unless DIR has train/ and test/ subfolders: then ``--split`` picks one; ``--dataset webdataset`` is
    every sample of the shards."""
    folder = args.images
    if args.dataset == "folder" and args.data_dir and not (
            (Path(args.data_dir) / "train").is_dir() and (Path(args.data_dir) / "test").is_dir()):
        folder = args.data_dir
    if folder:
        images = FolderImages(folder, args.limit)
        return images, list(images.paths)
    if args.dataset == "webdataset":  # every sample of the shards, named shard.tar:key
        shards = load_images("webdataset", "pretrain", args.data_dir, args.limit)
        return shards, list(shards.names)  # type: ignore[attr-defined]
    images = load_images(args.dataset, split, args.data_dir, args.limit, 0, size)
    return images, [f"{args.dataset}:{split}:{i}" for i in range(len(images))]


def embed_command(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in (".npz", ".parquet"):
        raise SimCLRError(f"--out {out}: use a .npz or .parquet file name")
    encoder = finished_encoder(args.run)
    device = pick_device(args.device)
    size = int(encoder.image_size)  # type: ignore[arg-type]
    head = load_head(args.run, device) if args.layer == "z" else None
    images, names = image_source(args, size, args.split)
    precision, line = resolve_precision(args.precision, device)
    if line:
        print(line, file=sys.stderr)
    vectors, kept = embed_images(encoder.to(device), images, size, device, args.batch_size, args.workers, head,
                                 precision=precision)
    labels = torch.as_tensor(images.labels)[kept].numpy()
    if isinstance(images, FolderImages):
        names = [str(Path(n).resolve()) for n in names]
    model = fingerprint(encoder, args.layer) | {"run": str(Path(args.run).resolve())}
    Embeddings(vectors.numpy(), [names[i] for i in kept], labels, model, list(images.classes)).save(out)
    print(f"{len(kept)} embeddings of dimension {vectors.shape[1]} ({args.layer}) written to {out}")
    return 0


def _query_images(query: str) -> list[str]:
    p = Path(query)
    if p.is_dir():
        paths, _, _ = scan_folder(p)  # raises if the folder holds no readable image
        return paths
    if not p.is_file():
        raise SimCLRError(f"--query {query} does not exist")
    why = header_ok(p)
    if why is not None:
        raise SimCLRError(f"--query {query} is not an image ({why})")
    return [str(p)]


def search_command(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise SimCLRError(f"--k must be >= 1, got {args.k}")
    if args.html and Path(args.html).suffix.lower() not in (".html", ".htm"):
        raise SimCLRError(f"--html {args.html}: use a .html file name")
    index = Embeddings.load(args.index)
    run = args.run or index.model.get("run")
    if not run:
        raise SimCLRError("the index does not record its model: pass --run")
    encoder = finished_encoder(str(run))
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
    folder = FolderImages.from_paths(queries, args.query)
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
        for path, score, label in zip(hits.paths[qi], hits.scores[qi], hits.labels[qi], strict=True):
            name = index.classes[label] if 0 <= label < len(index.classes) else ""
            print(f"  {score:.4f}  {path}" + (f"  ({name})" if name else ""))
    if args.html:
        thumb = _dataset_thumbs(args.data_dir)
        atomic_write_text(args.html, render(names, hits, thumb, title=f"simclr search in {Path(args.index).name}",
                                            classes=index.classes))
        print(f"wrote {args.html}", file=sys.stderr)
    return 0


def _dataset_thumbs(data_dir: str | None) -> Callable[[str], Image.Image | None]:
    """Thumbnails for gallery entries named DATASET:SPLIT:INDEX (loaded once per split)."""
    cache: dict[tuple[str, str], Any] = {}

    def thumb(name: str) -> Image.Image | None:
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
        return to_pil(images.images[i]) if i < len(images) else None

    return thumb


def export_command(args: argparse.Namespace) -> int:
    from simclr.models.classifier import CLASSIFIER, load_classifier

    fc = None
    if (Path(args.run) / CLASSIFIER).is_file():  # a fine-tuned classifier: its encoder, and its fc for torchvision
        classifier = load_classifier(args.run)
        encoder = classifier.encoder
        if classifier.head_layers == 0:
            fc = classifier.fc
        elif args.format == "torchvision":
            raise SimCLRError(f"{args.run} keeps {classifier.head_layers} head layers before its classifier: "
                              "torchvision's ResNet has none; export the encoder alone from the pretraining run")
    else:
        encoder = finished_encoder(args.run)
    out = export_encoder(encoder, args.format, args.out, args.image_size, fc=fc, run=args.run)
    print(f"{args.format} encoder written to {out}")
    if args.format in ("torchvision", "timm"):
        print(usage_note(encoder, args.format, fc is not None and args.format == "torchvision"))
    return 0


