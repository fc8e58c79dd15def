"""Build REPRODUCTION.md and its plots from the studies' results files (nothing else is read).

    python benchmarks/reproduce/render.py            # benchmarks/results/*.json -> REPRODUCTION.md, docs/reproduce/
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import textwrap
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from study import ROOT, SCALES, results_path  # noqa: E402

# The studies in the order.
ORDER = ("composition", "color_strength", "temperature", "head", "batch_size", "width", "loss")


def _plot(mod: Any, result: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = getattr(mod, "PANELS", 1)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.2))
    mod.plot(result, axes if panels > 1 else axes)
    fig.suptitle(textwrap.fill(result["title"], 48 * panels), fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _commits(result: dict[str, Any]) -> list[str]:
    """The commits whose code made the points (each point records its own)."""
    found = sorted({p["commit"] for p in result["points"].values() if p.get("commit")})
    return found or result.get("commits", ["not recorded"])


def _machines(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The machines that made the points (each point records its own; older points, the results file's)."""
    found = [p.get("machine", result["machine"]) for p in result["points"].values()] or [result["machine"]]
    return [json.loads(m) for m in sorted({json.dumps(m, sort_keys=True) for m in found})]


def _cost(result: dict[str, Any]) -> str:
    pts = list(result["points"].values())
    per = [p["pretrain_s"] + p["measure_s"] for p in pts]
    seeds = sorted({p["seed"] for p in pts})
    threads, jobs = result.get("threads", 1), result.get("jobs", 1)
    return (f"{len(pts)} points, seeds {', '.join(map(str, seeds))}; {statistics.median(per) / 60:.1f} min a point "
            f"(median, {threads} thread{'s' if threads > 1 else ''} each, {jobs} at a time), "
            f"{sum(per) * threads / 3600:.1f} core-hours in all")


def section(name: str, mod: Any, result: dict[str, Any], png: Path, root: Path) -> tuple[str, str]:
    v, why = mod.verdict(result)
    if result["scale"] == "smoke":  # seconds-long runs test the scripts, not the paper
        v, why = "none (a smoke run)", f"at the smoke scale the verdict would be {v!r}; it is evidence of nothing"
    why = why[:1].upper() + why[1:]
    scales = sorted({p["scale"] for p in result["points"].values()})
    scale_text = "; ".join(SCALES[s].describe() for s in scales if s in SCALES)
    base = result.get("baselines", {})
    untrained = "; ".join(f"{100 * b['linear_random']:.1f} on {s}" for s, b in sorted(base.items()))
    if untrained:
        scale_text += f" (the untrained network, `--random-init`, scores {untrained} by the same linear eval)"
    machines = "; ".join(f"{m['cpu']} ({m['cores']} cores; {', '.join(m['flags']) or 'none of avx2 / avx512 / amx'})"
                         for m in _machines(result))
    rel = png.relative_to(root) if png.is_relative_to(root) else png
    lines = [
        f"## {result['title']}",
        "",
        f"**Paper:** {result['paper']}.  ",
        f"**Finding:** {result['finding']}.",
        "",
        f"**Scale:** {scale_text}. {result['why_fair'][:1].upper()}{result['why_fair'][1:]}.",
        "",
        mod.table(result),
        "",
        f"![{name}]({rel})",
        "",
        f"**Verdict: {v}.** {why}.",
        "",
        *([f"*Reading:* {mod.READING}.", ""] if getattr(mod, "READING", None) and result["scale"] != "smoke" else []),
        f"Measured on {machines}, commit {', '.join(_commits(result))}, "
        f"last point {result.get('updated', '?')}; {_cost(result)}.  ",
        f"Command: `{result['command']}`; results: `{results_path(name, result['scale']).relative_to(ROOT)}`.",
        "",
    ]
    return "\n".join(lines), v


def render(results_dir: Path, out: Path, figures: Path, scale: str = "default") -> str:
    sections, summary = [], []
    for name in ORDER:
        mod = importlib.import_module(name)
        path = results_dir / results_path(name, scale).name
        if not path.exists() or not json.loads(path.read_text())["points"]:
            summary.append(f"| {mod.STUDY.title} | not run yet: `python benchmarks/reproduce/{name}.py` | - |")
            continue
        result = json.loads(path.read_text())
        png = figures / f"{name}.png"
        _plot(mod, result, png)
        text, v = section(name, mod, result, png, out.parent)
        sections.append(text)
        summary.append(f"| [{result['title']}](#{_anchor(result['title'])}) | **{v}** | {mod.STUDY.finding} |")
    doc = "\n".join([
        "# Reproducing SimCLR's findings at small scale",
        "",
        "Each study below re-runs one finding of the paper (Chen et al. 2020) on a laptop-sized budget and says",
        "whether it holds here. Every number is measured by the study's script through `simclr`'s own command",
        "line (`benchmarks/reproduce/<study>.py`), kept in `benchmarks/results/<study>.json`, and this page is",
        "built from those files by `python benchmarks/reproduce/render.py`. Re-run one study with",
        "`python benchmarks/reproduce/<study>.py` or `python -m benchmarks.reproduce.<study>` from the repository",
        "root (finished points are kept; `--seeds`, `--jobs`, `--threads`, `--scale smoke` to try it in seconds)",
        "or all of them with `bash benchmarks/reproduce/all.sh`.",
        "The paper's numbers are ImageNet ResNet-50 figures: compare directions and orderings, not levels.",
        "A verdict of *holds* needs the difference on every seed (each seed of one setting above every seed",
        "of the other), not only in the medians.",
        "",
        "| study | verdict | the paper's finding |",
        "|---|---|---|",
        *summary,
        "",
        *sections,
        time_to_accuracy(results_dir),
    ])
    out.write_text(doc.rstrip() + "\n")
    return doc


def time_to_accuracy(results_dir: Path) -> str:
    """The issue #33 study's section (``benchmarks/fmnist_time_study.py`` renders it from its results)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import fmnist_time_study
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return fmnist_time_study.section(results_dir)


def _anchor(title: str) -> str:
    keep = "".join(c for c in title.lower() if c.isalnum() or c in " -")
    return keep.replace(" ", "-")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--results", default=str(ROOT / "benchmarks" / "results"), help="folder of results JSON")
    p.add_argument("--scale", default="default", choices=("default", "smoke"), help="which results files")
    p.add_argument("--out", default=str(ROOT / "REPRODUCTION.md"), help="the page to write")
    p.add_argument("--figures", default=str(ROOT / "docs" / "reproduce"), help="where the plots go")
    a = p.parse_args()
    render(Path(a.results), Path(a.out), Path(a.figures), a.scale)
    print(f"wrote {a.out} and the plots in {a.figures}")


if __name__ == "__main__":
    main()
