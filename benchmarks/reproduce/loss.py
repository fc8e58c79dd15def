"""Study 7, the loss function (the paper's Tables 2 and 4): NT-Xent against NT-Logistic and the margin
triplet loss, each over its temperature or margin, with and without semi-hard negative mining.

    python benchmarks/reproduce/loss.py --seeds 0          # about 30 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study import Point, Study, beats, cell, main, median  # noqa: E402

# (loss, setting name, values, semi-hard variants)
GRID = (
    ("ntxent", "temperature", (0.1, 0.2, 0.5), (False,)),
    ("ntlogistic", "temperature", (0.1, 0.2, 0.5, 1.0), (False, True)),
    ("triplet", "margin", (0.2, 0.5, 1.0), (False, True)),
)
NAMES = {"ntxent": "NT-Xent", "ntlogistic": "NT-Logistic", "triplet": "margin triplet"}
# Table 4 (ImageNet, ResNet-50, linear top-1, each loss at its best setting), as PAPER.md gives it: NT-Xent
# 63.9, the four others (NT-Logistic and margin triplet, with and without semi-hard negatives) 50.9-57.9
PAPER = {("ntxent", False): "63.9"} | {(k, sh): "50.9-57.9 (the four)" for k in ("ntlogistic", "triplet")
                                       for sh in (False, True)}


def points(args: argparse.Namespace) -> list[Point]:
    out = []
    for loss, setting, values, variants in GRID:
        for sh in variants:
            for v in values:
                flags = ["--loss", loss, f"--{setting}", str(v), *(["--semi-hard"] if sh else [])]
                out += [Point({"loss": loss, "semi_hard": sh, setting: v}, s, flags) for s in args.seeds]
    return out


READING = (
    "2026-12-02 and 2026-12-03 results (two seeds): NT-Xent at temperature 0.1-0.2 (81.7 / 81.6) leads every "
    "other loss on both seeds; NT-Logistic's best (80.0, temperature 0.2, seeds 79.4-80.5) and the margin "
    "triplet's best (79.1, seeds 78.9-79.3) stay within a point of the untrained network (79.7), and semi-hard "
    "mining helps neither here (best 79.7 and 79.1). The ordering is the paper's (Table 4: 63.9 against "
    "50.9-57.9); at 5 epochs the other losses have barely learned more than the untrained network already has, "
    "so a longer run would show whether the 1.7-point gap is the losses' or the short run's"
)

STUDY = Study(
    name="loss",
    title="Loss functions: NT-Xent against NT-Logistic and margin triplet (Tables 2 and 4)",
    paper="Table 4 (ImageNet, ResNet-50, linear top-1, each loss at its best temperature or margin): NT-Xent "
          "63.9; NT-Logistic and margin triplet, with or without semi-hard negative mining, 50.9-57.9",
    finding="NT-Xent with a tuned temperature beats the logistic and margin losses, even with semi-hard "
            "negative mining: its cross-entropy weighs each negative by its hardness",
    why_fair="every loss sees the same views, network and 5-epoch recipe, and each gets its own small sweep "
             "(temperature or margin, with and without semi-hard mining) so that none loses to a bad setting; "
             "the negatives' terms are averaged (a sum would swamp the one positive at batch 256)",
    points=points,
)


def setting_of(loss: str) -> str:
    return next(s for name, s, _, _ in GRID if name == loss)


def _groups(result: dict) -> dict[tuple, list[float]]:
    """(loss, semi_hard, value) -> the seeds' linear top-1."""
    out: dict[tuple, list[float]] = {}
    for rec in result["points"].values():
        v = rec["values"]
        if "linear" in rec["metrics"]:
            out.setdefault((v["loss"], v["semi_hard"], v[setting_of(v["loss"])]), []).append(rec["metrics"]["linear"])
    return out


def best(result: dict) -> dict[str, tuple[tuple, list[float]]]:
    """Each loss at its best setting (semi-hard or not): loss -> ((semi_hard, value), seeds)."""
    out: dict[str, tuple[tuple, list[float]]] = {}
    for (loss, sh, v), xs in _groups(result).items():
        if loss not in out or median(xs) > median(out[loss][1]):
            out[loss] = ((sh, v), xs)
    return out


def verdict(result: dict) -> tuple[str, str]:
    b = best(result)
    wanted = sum(len(values) * len(variants) for _, _, values, variants in GRID)
    if len(_groups(result)) < wanted:
        return "inconclusive at this scale", "not every setting has been run"
    xent = b["ntxent"][1]
    rivals = {k: v for k, v in b.items() if k != "ntxent"}
    top = max(rivals, key=lambda k: median(rivals[k][1]))
    text = ", ".join(f"{NAMES[k]} {100 * median(v[1]):.1f}" for k, v in b.items())
    gap = 100 * (median(xent) - median(rivals[top][1]))
    if gap >= 0.5 and (len(xent) < 2 or beats(xent, rivals[top][1])):
        return "holds", f"best settings: {text}: NT-Xent leads by {gap:.1f} points"
    if gap > -0.5:
        return "inconclusive at this scale", f"best settings: {text}: within half a point (or the seed spread)"
    return "does not hold", f"best settings: {text}: {NAMES[top]} beats NT-Xent by {-gap:.1f} points"


def table(result: dict) -> str:
    g = _groups(result)
    rows = ["| loss | negatives | setting | linear top-1 on h, % | paper, best setting (Table 4) |",
            "|---|---|---|---|---|"]
    for loss, setting, values, variants in GRID:
        for sh in variants:
            for v in values:
                rows.append(f"| {NAMES[loss]} | {'semi-hard' if sh else 'all'} | {setting} {v:g} | "
                            f"{cell(g.get((loss, sh, v), []))} | {PAPER.get((loss, sh), '-')} |")
    b = best(result)
    if b:
        rows += ["", "Best setting of each: " + "; ".join(
            f"{NAMES[k]} {cell(xs)} ({'semi-hard, ' if sh else ''}{setting_of(k)} {v:g})"
            for k, ((sh, v), xs) in b.items())]
    return "\n".join(rows)


def plot(result: dict, ax) -> None:  # noqa: ANN001
    g = _groups(result)
    labels, ours, bottoms, heights = [], [], [], []
    for loss, _, values, variants in GRID:
        for sh in variants:
            xs = [g[(loss, sh, v)] for v in values if (loss, sh, v) in g]
            if xs:
                labels.append(NAMES[loss] + (" sh" if sh else ""))
                ours.append(max(100 * median(x) for x in xs))
                lo, hi = (63.9, 63.9) if loss == "ntxent" else (50.9, 57.9)  # the others: Table 4's range
                bottoms.append(lo - 0.3 if lo == hi else lo)
                heights.append(0.6 if lo == hi else hi - lo)
    pos = range(len(labels))
    ax.bar([p - 0.2 for p in pos], ours, 0.4, label="simclr (best setting)")
    ax2 = ax.twinx()
    ax2.bar([p + 0.2 for p in pos], heights, 0.4, bottom=bottoms, color="C1",
            label="paper (ImageNet, right axis; the others' 50.9-57.9 range)")
    ax2.set_ylim(45, 70)
    ax.set_xticks(list(pos), labels, rotation=30, fontsize=7)
    ax.set_ylim(min(ours, default=0) - 5, max(ours, default=1) + 2)
    ax.set_ylabel("linear top-1 % (ours)")
    ax2.set_ylabel("linear top-1 % (paper)")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper center", bbox_to_anchor=(0.5, -0.42), fontsize=6)


if __name__ == "__main__":
    main(STUDY)
