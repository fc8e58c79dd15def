"""The reference pretraining run of two checkouts side by side: is a change slower end to end?

Runs ``simclr pretrain`` with the issue #2 reference recipe (``common_recipe.run_simclr``: ResNet-18,
ImageNet stem, Fashion-MNIST 28 px, batch 256, SGD, the online probe on, a log record every 5 steps)
for ``--steps`` steps in a fresh process per run, alternating this checkout and ``--before`` (a worktree
of another commit, made with ``git worktree add DIR COMMIT``), ``--repeats`` times per precision; images/s
over the log intervals after ``--warmup`` steps (the loop, the log steps' reads and health signals, the
probe and the augmentation included). Prints each run and the medians with their ratio.

usage: python benchmarks/before_after.py --before /tmp/base [--precisions fp32 bf16] [--steps 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common_recipe import LOG_EVERY, run_simclr  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def commit(tree: Path) -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True)
    return out.stdout.strip()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--before", required=True, type=Path, help="a checkout of the commit to compare against")
    p.add_argument("--precisions", nargs="+", default=["fp32"])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.steps % LOG_EVERY or args.warmup % LOG_EVERY or args.warmup >= args.steps:
        p.error(f"--steps and --warmup must be multiples of {LOG_EVERY}, with --warmup < --steps")
    trees = {"after": ROOT, "before": args.before.resolve()}
    print(f"after {commit(trees['after'])} vs before {commit(trees['before'])}", flush=True)
    rates: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for precision in args.precisions:
                for name, tree in (trees.items() if i % 2 == 0 else reversed(trees.items())):
                    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
                    r = run_simclr(args.steps, args.warmup, Path(tmp) / f"{name}-{precision}-{i}",
                                   ("--precision", precision), env=env)
                    rates.setdefault((name, precision), []).append(r)
                    print(f"repeat {i} {precision} {name}: {r:.1f} images/s", flush=True)
    for precision in args.precisions:
        a, b = (statistics.median(rates[(n, precision)]) for n in ("after", "before"))
        print(f"{precision}: after {a:.1f}, before {b:.1f} images/s (medians of {args.repeats}): ratio {a / b:.3f}")


if __name__ == "__main__":
    main()
