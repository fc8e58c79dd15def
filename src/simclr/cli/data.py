"""``simclr shards``: a folder of images written as WebDataset tar shards."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from simclr.data.folder import FolderImages
from simclr.data.shards import write_shards
from simclr.errors import SimCLRError


def add_commands(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    p = sub.add_parser(
        "shards", help="write a folder of images as WebDataset tar shards (--dataset webdataset reads them)",
        description="Every image of --data-dir (labels from its first-level subfolders, as --dataset folder) as "
        "WebDataset samples: key.<ext> (the file's own bytes), key.cls and key.json (label, class name, source "
        "path), in shards of --per-shard samples: OUT/shard-000000.tar, ...")
    p.add_argument("--data-dir", required=True, help="the folder of images")
    p.add_argument("--out", required=True, help="the directory to write the shards to (made if missing)")
    p.add_argument("--per-shard", type=int, default=1000, help="samples a shard (default 1000)")
    p.add_argument("--limit", type=int, help="only the first N images")
    return {"shards": shards_command}


def shards_command(args: argparse.Namespace) -> int:
    if args.per_shard < 1:
        raise SimCLRError(f"--per-shard must be >= 1, got {args.per_shard}")
    out = Path(args.out)
    if out.exists() and any(out.glob("shard-*.tar")):
        raise SimCLRError(f"--out {out} already holds shards: choose a new directory")
    images = FolderImages(args.data_dir, args.limit)
    print(images.index_line, file=sys.stderr)
    classes = images.classes
    samples = ((images.paths[i], int(images.labels[i]), classes[int(images.labels[i])] if images.labels[i] >= 0
                else "") for i in range(len(images)))
    n = len(images)

    tty = sys.stderr.isatty()  # a terminal: one line rewritten; a log file: a line each

    def progress(done: int) -> None:
        if done % 1000 == 0 or done == n:
            print(f"\r{done}/{n} images" if tty else f"{done}/{n} images", end="" if tty else "\n",
                  file=sys.stderr, flush=True)

    written = write_shards(samples, out, args.per_shard, progress)
    last = len(written) - 1
    print(f"{chr(10) if tty else ''}{n} images in {len(written)} shards: read them with --dataset webdataset "
          f"--data-dir '{out}/shard-{{000000..{last:06d}}}.tar'", file=sys.stderr)
    return 0


__all__ = ["add_commands", "shards_command"]
