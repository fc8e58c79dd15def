"""Study 2, colour distortion strength (the paper's Table 1): s in {1/8, 1/4, 1/2, 1}, SimCLR's linear
top-1 beside a supervised network trained from scratch with the same colour distortion.

    python benchmarks/reproduce/color_strength.py            # about 45 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study import Point, Study, beats, by_group, cell, main, median  # noqa: E402

STRENGTHS = (0.125, 0.25, 0.5, 1.0)
# Table 1 of the paper (v1), ImageNet, ResNet-50: linear top-1 of SimCLR, top-1 of supervised training
PAPER_SIMCLR = {0.125: 59.6, 0.25: 61.0, 0.5: 62.6, 1.0: 63.2}
PAPER_SUPERVISED = {0.125: 77.0, 0.25: 76.7, 0.5: 76.5, 1.0: 75.7}

READING = (
    "2026-12-02 results: SimCLR's linear top-1 rises at every step from s = 1/8 to 1 (44.7 to 57.1, +12.5), "
    "while the supervised network peaks at 1/4 (91.9) and loses 8.8 points by s = 1 (its seeds spread 75.2-85.1 "
    "there): the paper's contrast, larger than in Table 1 because colour is this dataset's main nuisance"
)

def points(args: argparse.Namespace) -> list[Point]:
    return [Point({"strength": s}, seed, ["--color-strength", str(s)], measure=("linear", "supervised"),
                  supervised_flags=["--color-strength", str(s)], scale="synthetic")
            for s in STRENGTHS for seed in args.seeds]


STUDY = Study(
    name="color_strength",
    title="Colour distortion strength, contrastive against supervised (Table 1)",
    paper="Table 1 (ImageNet, ResNet-50): s = 1/8, 1/4, 1/2, 1 -> SimCLR linear 59.6 / 61.0 / 62.6 / 63.2, "
          "supervised 77.0 / 76.7 / 76.5 / 75.7",
    finding="stronger colour distortion helps contrastive learning, while it does not help supervised learning "
            "(in Table 1 it slightly hurts)",
    why_fair="on `synthetic` the class is the shape and colour is a pure nuisance, the situation colour "
             "distortion is for; Fashion-MNIST is grayscale, where colour jitter can only move brightness and "
             "contrast, so it would test little. The supervised network is the same ResNet trained from "
             "scratch (`simclr finetune --random-init`) for as many epochs on every label, with the same "
             "crop, flip and colour distortion",
    points=points,
    default_scale="synthetic",
)


def _groups(result: dict) -> tuple[dict, dict]:
    c = {k[0]: v for k, v in by_group(result, "linear", "strength").items()}
    s = {k[0]: v for k, v in by_group(result, "supervised", "strength").items()}
    return c, s


def verdict(result: dict) -> tuple[str, str]:
    c, s = _groups(result)
    lo, hi = STRENGTHS[0], STRENGTHS[-1]
    if any(k not in c or k not in s for k in (lo, hi)):
        return "inconclusive at this scale", "the weakest and strongest colour have not both been run"
    gain_c = 100 * (median(c[hi]) - median(c[lo]))
    gain_s = 100 * (median(s[hi]) - median(s[lo]))
    paper_c, paper_s = PAPER_SIMCLR[hi] - PAPER_SIMCLR[lo], PAPER_SUPERVISED[hi] - PAPER_SUPERVISED[lo]
    text = (f"from s = 1/8 to 1, SimCLR moves {gain_c:+.1f} points, supervised {gain_s:+.1f} "
            f"(paper: {paper_c:+.1f} and {paper_s:+.1f})")
    if beats(c[hi], c[lo]) and gain_c > gain_s:
        return "holds", text + "; SimCLR's gain is larger than the seed spread"
    if gain_c <= gain_s or gain_c <= 0:
        return "does not hold", text
    return "inconclusive at this scale", text + "; SimCLR's gain is within the seed spread"


def table(result: dict) -> str:
    c, s = _groups(result)
    rows = ["| colour strength s | SimCLR linear top-1, % | supervised top-1, % | paper SimCLR | paper supervised |",
            "|---|---|---|---|---|"]
    rows += [f"| {x:g} | {cell(c.get(x, []))} | {cell(s.get(x, []))} | {PAPER_SIMCLR[x]} | {PAPER_SUPERVISED[x]} |"
             for x in STRENGTHS]
    return "\n".join(rows)


def plot(result: dict, ax) -> None:  # noqa: ANN001
    c, s = _groups(result)
    for g, name, color in ((c, "SimCLR linear eval", "C0"), (s, "supervised", "C2")):
        xs = [x for x in STRENGTHS if x in g]
        ax.plot(xs, [100 * median(g[x]) for x in xs], "o-", color=color, label=name)
        for x in xs:
            ax.scatter([x] * len(g[x]), [100 * v for v in g[x]], color=color, s=10, alpha=0.5)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(STRENGTHS), ["1/8", "1/4", "1/2", "1"])
    ax.set_xlabel("colour distortion strength s")
    ax.set_ylabel("top-1 % (synthetic)")
    ax.legend(fontsize=7)


if __name__ == "__main__":
    main(STUDY)
