"""How steady `--precision auto`'s choice is on this CPU: calls the timed step that decides it
(simclr.runtime.measured_bf16_speedup) N times and prints each ratio, their spread, and how many calls
would pick bf16 (ratio >= simclr.runtime.SPEEDUP_NEEDED). Only CPUs with AVX512-BF16 and no AMX time it.

usage: python benchmarks/precision_choice.py [--calls 20] [--load]
  --load: one busy process per core while timing (the choice on a shared machine, or beside another job)
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time

from simclr.runtime import SPEEDUP_NEEDED, measured_bf16_speedup


def spin(stop: float) -> None:
    while time.time() < stop:
        sum(i * i for i in range(10_000))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--load", action="store_true", help="one busy process per core while timing")
    args = p.parse_args()
    procs = []
    if args.load:
        stop = time.time() + 3600
        procs = [mp.Process(target=spin, args=(stop,), daemon=True) for _ in range(os.cpu_count() or 1)]
        for proc in procs:
            proc.start()
    try:
        ratios = [measured_bf16_speedup() for _ in range(args.calls)]
    finally:
        for proc in procs:
            proc.terminate()
    picks = sum(r >= SPEEDUP_NEEDED for r in ratios)
    print("ratios: " + " ".join(f"{r:.2f}" for r in ratios))
    print(f"median {statistics.median(ratios):.2f}  min {min(ratios):.2f}  max {max(ratios):.2f}  "
          f"bf16 chosen {picks}/{len(ratios)} (load: {'one busy process per core' if args.load else 'none'})")


if __name__ == "__main__":
    main()
