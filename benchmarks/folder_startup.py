"""Start-up of ``simclr pretrain --dataset folder`` on big folders: seconds to the first training step.

Makes folders of ``--files`` images (1000 class folders, every file a hard link to one of 8+ real JPEGs:
Fashion-MNIST images upscaled to 96 px, so a million files cost directory entries, not disk), then
times, in a fresh process each, ``simclr pretrain ... --max-steps 1`` (a tiny network, 16 images, one
step: what remains is finding the images): cold (an empty simclr cache) and warm (the cached index),
and with ``--before DIR`` (a checkout of an earlier commit, e.g. ``git worktree add /tmp/base COMMIT``)
the same cold start of that code. ``--drop-caches`` (root) empties the kernel's file caches before each
cold start; without it the files' metadata and (the hard links share 8+ files) their headers are in
memory, which flatters a header-reading scan. Python + torch + simclr's import alone is timed too, to subtract.
The index's memory: the resident-set growth (now minus before, /proc/self/statm) of a process that only
reads it (from the cache the warm run left), and its arrays' bytes.

usage: python benchmarks/folder_startup.py [--files 10000 100000 1000000] [--root /tmp/simclr-folders]
       [--before /tmp/base] [--before-max 200000] [--json benchmarks/results/folder_startup-DATE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FMNIST = "/usr/share/datasets/fashion-mnist"


def seed_jpegs(where: Path, count: int = 8) -> list[Path]:
    """``count`` real photos' stand-ins: Fashion-MNIST images (random pixels where it is not installed) at 96 px."""
    where.mkdir(parents=True, exist_ok=True)
    try:
        sys.path.insert(0, str(ROOT / "src"))
        from simclr.data.sources import load_images

        imgs = load_images("fashion-mnist", "test", FMNIST, count).images.numpy()[:, 0]  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - any failure: random pixels do for start-up timing
        imgs = np.random.default_rng(0).integers(0, 256, (count, 28, 28), dtype=np.uint8)
    out = []
    for i, arr in enumerate(imgs):
        p = where / f"seed{i}.jpg"
        Image.fromarray(arr).convert("RGB").resize((96, 96), Image.BICUBIC).save(p, quality=90)
        out.append(p)
    return out


def make_folder(root: Path, n: int) -> Path:
    """``root/n{n}``: 1000 class folders (fewer for small n) of hard links, made once (a file takes at most
    50,000 links here: ext4 allows 65,000)."""
    folder = root / f"n{n}"
    seeds = seed_jpegs(root / f"seeds{n}", max(8, -(-n // 50_000)))
    done = folder / ".complete"
    if done.exists():
        return folder
    classes = min(1000, max(1, n // 10))
    for c in range(classes):
        (folder / f"c{c:04d}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        target = folder / f"c{i % classes:04d}" / f"img_{i:08d}.JPEG"
        if not target.exists():
            os.link(seeds[i % len(seeds)], target)
    done.write_text("")
    return folder


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    r = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if r.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{r.stderr[-2000:]}")
    return seconds, r.stderr


def drop_caches() -> bool:
    """Empty the kernel's page, dentry and inode caches (root only), so a cold start reads the disk."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def pretrain_argv(folder: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "simclr", "pretrain", "--dataset", "folder", "--data-dir", str(folder),
            "--out", str(out), "--max-steps", "1", "--epochs", "1", "--batch-size", "16", "--image-size", "32",
            "--width-multiplier", "0.25", "--workers", "0", "--precision", "fp32", "--device", "cpu",
            "--no-online-probe", "--log-every", "1"]


def index_memory(folder: Path, env: dict[str, str]) -> dict[str, float]:
    code = (
        "import sys\n"
        "from simclr.data.index import folder_index\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        "before = rss()\n"
        "index, _ = folder_index(sys.argv[1])\n"
        "print(len(index), index.nbytes(), rss() - before)\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(folder)], env=env, capture_output=True, text=True, check=True)
    n, nbytes, rss = r.stdout.split()
    return {"images": int(n), "index_mb": int(nbytes) / 2**20, "rss_growth_mb": int(rss) / 2**20}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--files", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "simclr-folders")
    p.add_argument("--before", type=Path, help="a checkout of the commit to compare against (cold start only)")
    p.add_argument("--before-max", type=int, default=200_000, help="time the before code up to this many files")
    p.add_argument("--drop-caches", action="store_true",
                   help="before every cold start, empty the kernel's file caches (needs root): a truly cold disk")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base_env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        imports, _ = timed([sys.executable, "-c", "import torch, torchvision, simclr.cli.main"], base_env)
        print(f"python + torch + simclr import: {imports:.1f} s", flush=True)
        for n in a.files:
            start = time.perf_counter()
            folder = make_folder(a.root, n)
            print(f"{n} files: folder ready ({time.perf_counter() - start:.0f} s)", flush=True)
            cache = Path(tmp) / f"cache{n}"
            env = {**base_env, "SIMCLR_CACHE_DIR": str(cache)}
            row: dict = {"files": n}
            row["caches_dropped"] = a.drop_caches and drop_caches()
            row["cold_s"], log = timed(pretrain_argv(folder, Path(tmp) / f"cold{n}"), env)
            m = re.search(r"indexed in ([\d.]+) s", log)
            row["cold_index_s"] = float(m.group(1)) if m else None
            row["warm_s"], log = timed(pretrain_argv(folder, Path(tmp) / f"warm{n}"), env)
            assert "read from the cache" in log, log[-1500:]
            row.update(index_memory(folder, env))
            if a.before is not None and n <= a.before_max:
                benv = {**os.environ, "PYTHONPATH": str(a.before.resolve() / "src"),
                        "SIMCLR_CACHE_DIR": str(Path(tmp) / f"bcache{n}")}
                if a.drop_caches:
                    drop_caches()
                row["before_cold_s"], _ = timed(pretrain_argv(folder, Path(tmp) / f"before{n}"), benv)
                row["before_warm_s"], _ = timed(pretrain_argv(folder, Path(tmp) / f"before2{n}"), benv)
            print(json.dumps(row), flush=True)
            results.append(row)
    if a.json:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        before = (subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=a.before, capture_output=True,
                                 text=True).stdout.strip() if a.before else None)
        a.json.write_text(json.dumps({
            "benchmark": "folder_startup", "command": " ".join(sys.argv), "commit": commit, "before": before,
            "date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(),
            "cpu": _cpu(), "imports_s": imports, "rows": results}, indent=2) + "\n")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
