"""The few-labels table of ``benchmarks/few_labels.sh``'s output folder, as Markdown.

usage: python benchmarks/few_labels_table.py runs/few-labels
Every cell is the test top-1 of a results JSON (finetune / distill: results.json; linear-eval: its --out),
with the command's wall time in minutes (the .time files the script writes) and "-" where it was not run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = [
    ("v1", "SimCLR fine-tune (v1)", "{c}-{f}/results.json"),
    ("v2", "v2: from head layer 1", "{c}-{f}/results.json"),
    ("linear", "linear eval on the same labels", "{c}-{f}.json"),
    ("scratch", "from scratch, same network", "{c}-{f}/results.json"),
    ("self", "self-distilled", "{c}-{f}/results.json"),
    ("half", "distilled into a half-width student", "{c}-{f}/results.json"),
]


def cell(root: Path, column: str, fraction: str, pattern: str) -> str:
    path = root / pattern.format(c=column, f=fraction)
    if not path.is_file():
        return "-"
    top1 = json.loads(path.read_text())["top1"]
    time = root / f"{column}-{fraction}.time"
    minutes = f" ({int(time.read_text()) / 60:.1f} min)" if time.is_file() else ""
    return f"{100 * top1:.2f}{minutes}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path)
    p.add_argument("--fractions", nargs="+", default=["0.01", "0.1", "1.0"])
    args = p.parse_args()
    print("| labels | " + " | ".join(title for _, title, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for f in args.fractions:
        n = ""
        ft = args.root / f"v1-{f}" / "results.json"
        if ft.is_file():
            n = f" ({json.loads(ft.read_text())['labels']})"
        print(f"| {float(f):.0%}{n} | " + " | ".join(cell(args.root, c, f, pat) for c, _, pat in COLUMNS) + " |")
    supcon = args.root / "linear-supcon.json"
    if supcon.is_file():
        print(f"\nSupCon pretraining, linear eval: {100 * json.loads(supcon.read_text())['top1']:.2f}")


if __name__ == "__main__":
    main()
