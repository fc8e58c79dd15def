"""Fuzz the image-loading path (issue #6): mutated image files through what a folder dataset does.

A seeded mutation fuzzer: it starts from small valid PNG, JPEG, GIF, BMP, TIFF and WebP files (RGB,
grayscale, palette, RGBA, 16-bit) and a PNG whose header claims 100000 x 100000 pixels, applies random
byte flips, overwrites, insertions, deletions, truncations and header-size edits, writes each result to
a file, and runs the loading path on it: the folder's walk (``scan_folder``: empty files left out, no
file opened), then ``FolderImages.load`` (decode, mode conversion, a file that fails named once) and
the centre resize used for evaluation, in one process for the whole run (its own simclr cache).

A crash is any exception escaping that path (it must skip bad files with a warning, never raise
anything but SimCLRError "no readable images"); a hang is one input taking over ``--hang-s``; a leak is
resident memory growing by more than 5% between the end of the first minute and the end.

usage: python benchmarks/fuzz_images.py [--minutes 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from simclr.data.folder import FolderImages, scan_folder
from simclr.data.images import center_resize, pil_to_uint8
from simclr.errors import SimCLRError


def seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (19, 23, 3), dtype=np.uint8))
    out = []
    for img, fmt in [(rgb, "PNG"), (rgb, "JPEG"), (rgb.convert("P"), "GIF"), (rgb, "BMP"), (rgb, "TIFF"),
                     (rgb, "WEBP"), (rgb.convert("L"), "PNG"), (rgb.convert("RGBA"), "PNG"),
                     (Image.fromarray(rng.integers(0, 65535, (9, 7), dtype=np.uint16)), "PNG")]:
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        out.append(buf.getvalue())
    bomb = bytearray(out[0])
    bomb[16:24] = (100_000).to_bytes(4, "big") + (100_000).to_bytes(4, "big")  # IHDR width, height
    out.append(bytes(bomb))
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(6)
        if not b:
            b = bytearray(rng.randbytes(rng.randint(1, 64)))
        i = rng.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.randrange(256)
        elif op == 2:
            b[i:i] = rng.randbytes(rng.randint(1, 32))
        elif op == 3:
            del b[i : i + rng.randint(1, 32)]
        elif op == 4:
            b = b[: rng.randrange(len(b) + 1)]
        else:  # a size field near the start: huge dimensions, odd values
            j = rng.randrange(min(len(b), 32))
            b[j : j + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff",
                                       rng.randbytes(4)])
    return bytes(b)


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hang-s", type=float, default=5.0)
    args = p.parse_args()
    rng = random.Random(args.seed)
    corpus = seeds()
    exts = [".png", ".jpg", ".gif", ".bmp", ".tif", ".webp"]
    tried = skipped_scan = skipped_decode = decoded = 0
    crashes: list[str] = []
    hangs: list[float] = []
    slowest = 0.0
    t_end = time.monotonic() + 60 * args.minutes
    rss_after_1min = None
    t_start = time.monotonic()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        root.mkdir()
        os.environ["SIMCLR_CACHE_DIR"] = str(Path(tmp) / "cache")  # the folder indexes stay in the run's temp
        while time.monotonic() < t_end:
            data = mutate(rng.choice(corpus), rng)
            f = root / f"x{rng.choice(exts)}"
            for old in root.iterdir():
                old.unlink()
            f.write_bytes(data)
            tried += 1
            t0 = time.monotonic()
            try:
                try:
                    paths, _, _ = scan_folder(root)
                except SimCLRError:
                    skipped_scan += 1
                    paths = []
                if paths:
                    images = FolderImages(root)
                    try:
                        img, _ = images.load(0)
                        pil_to_uint8(center_resize(img, 32))
                        decoded += 1
                    except SimCLRError:
                        skipped_decode += 1
            except Exception as e:  # noqa: BLE001 - a crash: record it with the input
                keep = Path("runs/fuzz-crashes")
                keep.mkdir(parents=True, exist_ok=True)
                (keep / f"crash{len(crashes)}{f.suffix}").write_bytes(data)
                crashes.append(f"{type(e).__name__}: {e}")
            dt = time.monotonic() - t0
            slowest = max(slowest, dt)
            if dt > args.hang_s:
                hangs.append(dt)
            if rss_after_1min is None and time.monotonic() - t_start > 60:
                rss_after_1min = current_rss_mib()
    rss_end = current_rss_mib()
    growth = (rss_end - rss_after_1min) / rss_after_1min if rss_after_1min else float("nan")
    print(f"{tried} inputs in {args.minutes:g} min: {decoded} decoded, {skipped_scan} skipped by the walk "
          f"(empty), {skipped_decode} skipped at decode; crashes {len(crashes)}, hangs (> {args.hang_s:g} s) "
          f"{len(hangs)}, slowest input {slowest:.2f} s; RSS {rss_after_1min or 0:.0f} MiB after 1 min -> "
          f"{rss_end:.0f} MiB at the end ({growth:+.1%}), peak {rss_mib():.0f} MiB")
    for c in crashes[:10]:
        print("  crash:", c)


if __name__ == "__main__":
    main()
