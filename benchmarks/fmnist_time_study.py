"""Issue #33's study: the best Fashion-MNIST representation 2 CPU cores learn in a fixed time.

Each candidate is the ``fmnist-fast`` preset with some settings changed, pretrained with ``--time-budget``
(the run plans its own steps), then scored by ``simclr linear-eval --split val``: a logistic regression fitted
on 50,000 of the 60,000 training images and scored on the other 10,000 (a fixed hold-out), so candidates are
tuned without touching the test set. ``--test`` adds the test-set score (``simclr linear-eval``) of each run:
run it once, at the end, on the chosen candidates.

Runs the real commands (``simclr pretrain`` / ``simclr linear-eval``). ``--parallel 2`` runs two candidates
at once, one thread each (OMP_NUM_THREADS=1): a screening mode in which every candidate sees the same load;
the final timed runs want ``--parallel 1`` on an otherwise idle machine (the budget is wall time).
A run directory that already holds a finished run of the same settings is reused (only its scores are
computed again when missing), so the study can be resumed and extended.

usage: python benchmarks/fmnist_time_study.py --data-dir /usr/share/datasets/fashion-mnist --out runs/study33
       --minutes 10 --seeds 0 [--parallel 2] [--only NAME ...] [--test] [--precision bf16]
       [--results benchmarks/results/fmnist_time_study-DATE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from backbone_fmnist import commit, cpu  # the same machine and commit stamps as the backbone study

# name -> changes to the fmnist-fast preset: "flags" (CLI) and "yaml" (config-file keys, for settings the
# CLI does not expose). The preset itself is the baseline.
CANDIDATES: dict[str, dict] = {
    "preset": {},
    "crop 0.3-1": {"yaml": {"augment": {"crop_scale": [0.3, 1.0]}}},
    "crop 0.2-1": {"yaml": {"augment": {"crop_scale": [0.2, 1.0]}}},
    "crop 0.5-1": {"yaml": {"augment": {"crop_scale": [0.5, 1.0]}}},
    "56 px": {"flags": ["--image-size", "56"]},
    "32 px": {"flags": ["--image-size", "32"]},
    "cifar stem x0.5": {"flags": ["--stem", "cifar", "--width-multiplier", "0.5"]},
    "x0.5": {"flags": ["--width-multiplier", "0.5"]},
    "lars": {"flags": ["--optimizer", "lars", "--base-lr", "0.3"]},
    "adamw": {"flags": ["--optimizer", "adamw", "--base-lr", "1e-3", "--weight-decay", "1e-4"]},
    "tau 0.5": {"flags": ["--temperature", "0.5"]},
    "tau 0.1": {"flags": ["--temperature", "0.1"]},
    "tau 0.05": {"flags": ["--temperature", "0.05"]},
    "tau 0.2": {"flags": ["--temperature", "0.2"]},
    "batch 128": {"flags": ["--batch-size", "128"]},
    "batch 512": {"flags": ["--batch-size", "512"]},
    "colour 1.0": {"flags": ["--color-strength", "1.0"]},
    "colour 1.5": {"flags": ["--color-strength", "1.5"]},
    "colour 0": {"flags": ["--color-strength", "0"]},
    "resnet34 x0.5": {"flags": ["--arch", "resnet34", "--width-multiplier", "0.5"]},
    "no probe": {"yaml": {"monitor": {"online_probe": False}}},
    "warm-up auto": {"yaml": {"optim": {"warmup_epochs": None}}},
    "sgd lr 0.24": {"flags": ["--base-lr", "0.24"]},
    "nopool 28 px": {"flags": ["--image-size", "28", "--stem", "nopool"]},
    "lars sqrt": {"flags": ["--optimizer", "lars", "--lr-scaling", "sqrt", "--base-lr", "0.075",
                            "--weight-decay", "1e-6"]},
}


def combine(*names: str) -> dict:
    """One candidate made of several: flags appended in order, YAML sections merged."""
    flags: list[str] = []
    merged: dict = {}
    for name in names:
        cand = CANDIDATES[name]
        flags += cand.get("flags", [])
        for section, keys in cand.get("yaml", {}).items():
            merged.setdefault(section, {}).update(keys)
    return {"flags": flags, "yaml": merged}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in name)


def run_one(name: str, cand: dict, seed: int, a: argparse.Namespace) -> dict:
    run = Path(a.out) / f"{slug(name)}-s{seed}"
    env = dict(os.environ, OMP_NUM_THREADS="1") if a.parallel > 1 else dict(os.environ)
    settings = {"flags": cand.get("flags", []), "yaml": cand.get("yaml", {}), "minutes": a.minutes,
                "precision": a.precision, "threads": 1 if a.parallel > 1 else os.cpu_count()}
    stamp = run / "study_point.json"
    timing: dict = {}
    if not ((run / "encoder.pt").exists() and stamp.exists()
            and json.loads(stamp.read_text()).get("settings") == settings):
        if run.exists():
            subprocess.run(["rm", "-rf", str(run)], check=True)
        run.mkdir(parents=True)
        config = run.parent / f"{run.name}.yaml"
        config.write_text(yaml.safe_dump(cand.get("yaml", {})))
        cmd = [sys.executable, "-m", "simclr", "pretrain", "--preset", "fmnist-fast", "--data-dir", a.data_dir,
               "--config", str(config), *cand.get("flags", []), "--time-budget", str(a.minutes),
               "--precision", a.precision, "--seed", str(seed), "--out", str(run)]
        start = time.perf_counter()
        with open(run.parent / f"{run.name}.log", "w") as logf:
            subprocess.run(cmd, check=True, env=env, stdout=logf, stderr=subprocess.STDOUT)
        timing = {"pretrain_wall_s": round(time.perf_counter() - start, 1), "machine": cpu(),
                  "date": time.strftime("%Y-%m-%d"), "commit": commit(), "command": " ".join(cmd[1:])}
        stamp.write_text(json.dumps({"settings": settings, **timing}, indent=1))
    timing = json.loads(stamp.read_text())
    scores = {}
    for split in [*([] if a.no_val else ["val"]), *(["test"] if a.test else [])]:
        out = run / f"linear_{split}.json"
        if not out.exists():
            # val: fp32 features (candidates compared without bf16 rounding); test: exactly as a user runs it
            cmd = [sys.executable, "-m", "simclr", "linear-eval", "--run", str(run), "--out", str(out)] + (
                ["--split", "val", "--precision", "fp32"] if split == "val" else [])
            with open(run.parent / f"{run.name}.eval.log", "a") as logf:
                subprocess.run(cmd, check=True, env=env, stdout=logf, stderr=subprocess.STDOUT)
        scores[f"linear_{split}_top1"] = json.loads(out.read_text())["top1"]
    saved = yaml.safe_load((run / "config.yaml").read_text())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last = records[-1]
    row = {"candidate": name, "seed": seed, **settings, "steps": last["step"],
           "planned_steps": saved["train"]["max_steps"], "epochs": round(last["epoch"], 2),
           "train_s": round(last["time_s"], 1), "last_loss": last["loss"], "precision_used": last.get("precision"),
           **scores, **{k: timing[k] for k in ("pretrain_wall_s", "machine", "date", "commit", "command")}}
    print(json.dumps(row), flush=True)
    return row


TITLE = "Time to accuracy: Fashion-MNIST in 20 minutes on 2 CPU cores (issue #33)"
RESULTS_GLOB = "fmnist_time_study-*.json"
# What the rows say, written after reading them (REPRODUCTION.md shows it under the tables, as Markdown).
READING = """\
**Where each setting got, and why** (validation top-1 from the screening rounds; one seed unless two are given;
the screening runs, two or three at a time, bought 0.6-2.6 epochs each):

- **Resolution was the lever.** The ImageNet stem turns a 28 px image into a 7x7 first stage and a 1x1 last one,
  and more epochs of that network barely move it (0.8725 after 5.8 epochs; an earlier 14-epoch run scored 0.873
  on the test set). Upsampled to 56 px (a 14x14 first stage, 4x the compute per image) it passed that after 1.5
  epochs (0.8772) and reached 0.8827 after 2.1.
- **Cheaper ways to a larger feature map lost to it.** The ImageNet stem without its max-pool at the native
  28 px (`--stem nopool`: the same 14x14 first stage, 1.21x the step speed) 0.8797 against 0.8823: the
  upsampled input is worth more than the speed. The CIFAR stem at 28 px (a 28x28 first stage, 16x the compute;
  width 0.5 to pay for it) 0.8625 after 1.7 epochs.
- **Augmentation: a milder crop and stronger brightness / contrast.** Crop area (0.3, 1) 0.8853 against
  (0.08, 1) 0.8827 at 56 px (one seed, kept: it did not hurt). Colour strength 1.0 (on grayscale only
  brightness and contrast act, at 0.8) 0.8802 / 0.8750 against 0.5's 0.8716 / 0.8750 at seeds 0 / 1; 1.5
  0.8784 (seed 1).
- **Temperature 0.1.** 0.8883 against 0.2's 0.8823 at 56 px (one seed, but the only single-seed lead above the
  spread seen between seeds); 0.05 0.8720 against 0.1's 0.8716 (no gain).
- **The optimiser and batch stayed.** SGD lr 0.24 0.8870 against the preset's 0.06 0.8869; LARS with the
  paper's square-root rule (lr 1.2, weight decay 1e-6) 0.8796; batch 128 0.8800 against 256's 0.8827.
- **Not run at 20 minutes** (machine time): AdamW; width and depth (the width study's figure is below); other
  backbones (at an equal 10 minutes ResNet-18 0.864, ConvNeXt-atto 0.860, ViT-tiny 0.835: BENCHMARKS.md);
  32-48 px; crop (0.5, 1).

**The final runs** (the preset as a user runs it, alone on an idle machine, scored once on the test set):

| preset, budget | machine, precision | epochs | test top-1 (seeds 0 / 1) |
|---|---|---|---|
| tau 0.2, colour 0.5 (stale), 20 min | AVX512-BF16 EPYC, bf16 | 7.9 / 6.7 | 0.8916 / 0.8935 |
| tau 0.1, colour 0.5 (stale), 20 min | AVX512-BF16 EPYC, bf16 | 7.4 / 7.5 | 0.8936 / 0.8938 |
| tau 0.1, colour 0.5 (stale), 20 min | AVX2-only EPYC, fp32 | 1.5 / 1.5 | 0.8858 / 0.8836 |
| tau 0.1, colour 1.0 (now), 20 min | AVX2-only EPYC, fp32 | 1.6 / 1.75 | 0.8899 / 0.8891 |
| tau 0.1, colour 1.0 (now), 20 min | AMX Xeon, bf16 | 3.7 / 3.3 | 0.8969 / 0.8938 |
| tau 0.1, colour 1.0 (now), 40 min | AMX Xeon, bf16 | 6.2 (seed 0) | 0.8969 (seed 0) |

**Why 0.90 was not reached.** The choices above moved validation top-1 from 0.8725 (the 28 px preset,
10-minute screening) to 0.888 (20-minute screening), each by 0.3-0.6 points. Past that, epochs helped up to about
3.5 and then stopped: the current preset scored 0.8895 (mean of 2 seeds) after 1.7 epochs on the AVX2-only EPYC
and 0.8954 after 3.5 on the AMX Xeon, but given 40 minutes on the AMX Xeon (6.2 epochs, the last table) seed 0
scored 0.8969, exactly its 20-minute score after 3.7; the colour 0.5 preset scored 0.8937 after 7.5 epochs. So
neither a faster CPU nor twice the budget reaches 0.90 with this recipe: this network and these views level off
at 0.895-0.897 within the first 4-8 epochs (one seed at 40 minutes: the seeds' spread is about 0.3 points). The
step itself leaves little to gain: convolutions are most of it on every CPU measured (on the AVX2-only EPYC the
fp32 step runs at 76% of the fp32 matmul peak, convolutions' backward 53% of it: BENCHMARKS.md; on the AMX Xeon
convolutions' backward is 50% of a bf16 step and their forward 14%, torch.profiler, one step), bf16 is on where
the CPU has it, and `torch.compile` measured 0.85x (AVX512-BF16 EPYC). The AMX Xeon, a 2-vCPU VM, ran the bf16
step at 0.54-0.89 steps/s (the rate moved by a third within a run, the re-plans show; bf16 1.4-1.9x fp32 there),
about half the AVX512-BF16 EPYC's 1.5: AMX did not make it the fastest of the three.

**What would close the rest** (not measured). Not more minutes of the same recipe (above). The published 0.90-0.92
on Fashion-MNIST (issue #33's figure) come from long GPU training, far more epochs than a 2-core CPU runs in 20 or
40 minutes. Within the budget, the settings the study did not run at 20 minutes are what is left to try, each a
20-minute screening run at 2 seeds: a wider network for fewer epochs now that epochs past 4 add nothing (the width
study: x2 was 2.2 points above x1 after 3 epochs at 28 px on 10,000 images, for 3.2x the time), AdamW, 32-48 px,
crop (0.5, 1).

**How the study ran.** The first final runs re-measured the rate once: seed 1's first 170 steps ran at
220-340 images/s instead of about 400 (cause not found) and it ended after 17.1 minutes with 6.7 epochs. The
budget has since re-planned every tenth of the run (the cosine continuing from where it stood). Screening round
4's three runs at a time passed 20 minutes of wall time by 47-53 s; since 3898f05 the budget counts from the
command's start (precision choice, data loading, timed steps included): the AMX finals are the first final runs
on that clock and ended at 19.3 / 19.8 minutes of wall time; the 40-minute run ended at 37.0, its
rate recovering in the last tenth, which runs out its plan without re-planning."""


def section(results_dir: Path) -> str:
    """REPRODUCTION.md's section: one table per results file (screening, then the final preset runs)."""
    # screening rounds first, then the final runs, each in the order they were run (their names number them)
    files = sorted(results_dir.glob(RESULTS_GLOB), key=lambda f: ("final" in f.stem, f.stem))
    if not files:
        return ""
    lines = [f"## {TITLE}", "",
             "Not one of the paper's findings: the best representation a 2-core CPU learns in a fixed time. Every "
             "candidate is the `fmnist-fast` preset with a few settings changed, pretrained with `--time-budget` and "
             "scored by `simclr linear-eval --split val` (fitted on 50,000 of the 60,000 training images, scored on "
             "the other 10,000: tuned without the test set); the test set scores each chosen run once, at the end. "
             "Screening runs ran two or three at a time with one thread each (every candidate of a round saw the "
             "same load; their budgets buy about half the steps of an idle 2-core run); the final runs ran alone on "
             "an otherwise idle machine.", ""]
    for f in files:
        data = json.loads(f.read_text())
        rows = data["rows"]
        machines = sorted({r["machine"] for r in rows})
        commits = sorted({r["commit"] for r in rows})
        dates = sorted({r["date"] for r in rows})
        lines += [f"**{data.get('meta', {}).get('title', f.stem)}** (`benchmarks/results/{f.name}`; "
                  f"{'; '.join(machines)}; commit {', '.join(commits)}; {', '.join(dates)})", "", table(rows), ""]
    if READING:
        lines += [READING, ""]
    lines += ["Commands: `python benchmarks/fmnist_time_study.py --data-dir /usr/share/datasets/fashion-mnist --out "
              "runs/study33 --minutes 10 --parallel 2 --only NAME ... --results FILE` (screening; `--test` adds the "
              "test-set score), and the final runs `simclr pretrain --preset fmnist-fast --data-dir DIR --out RUN "
              "--seed S` then `simclr linear-eval --run RUN` (`bash benchmarks/fmnist_fast_final.sh`).", ""]
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    """Markdown: one line per (candidate, budget, threads), seeds side by side, in the order first seen."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["candidate"], r["minutes"], r["threads"]), []).append(r)
    out = ["| candidate | budget | steps (epochs) | val top-1 by seed | mean val | test top-1 | pretrain wall s |",
           "|---|---|---|---|---|---|---|"]
    for (name, minutes, threads), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        vals = [r.get("linear_val_top1") for r in rs]
        tests = [r.get("linear_test_top1") for r in rs]
        out.append(
            f"| {name} | {minutes:g} min, {threads} thread{'s' if threads > 1 else ''} | "
            + ", ".join(f"{r['steps']} ({r['epochs']:.1f})" for r in rs) + " | "
            + (", ".join(f"{v:.4f} (s{r['seed']})" for v, r in zip(vals, rs, strict=True))
               + f" | {sum(vals) / len(vals):.4f} | " if all(v is not None for v in vals) else "- | - | ")
            + (", ".join(f"{t:.4f}" for t in tests) if all(t is not None for t in tests) else "-") + " | "
            + ", ".join(f"{r['pretrain_wall_s']:.0f}" for r in rs) + " |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--precision", default="bf16")
    p.add_argument("--only", nargs="*", default=None, help="candidates by name; A+B combines them")
    p.add_argument("--test", action="store_true", help="also score each run on the test set (once, at the end)")
    p.add_argument("--no-val", action="store_true", help="no validation score (the final runs: test only)")
    p.add_argument("--title", help="the results file's title (REPRODUCTION.md shows it above its table)")
    p.add_argument("--results", help="append the rows to this JSON")
    p.add_argument("--table", nargs="+", metavar="JSON", help="print the rows of these results files as a "
                   "Markdown table (mean over seeds) and exit")
    a = p.parse_args()
    if a.table:
        print(table([r for f in a.table for r in json.loads(Path(f).read_text())["rows"]]))
        return
    names = a.only or list(CANDIDATES)
    jobs = [(n, combine(*n.split("+")), s) for n in names for s in a.seeds]
    with ThreadPoolExecutor(a.parallel) as pool:
        rows = list(pool.map(lambda job: run_one(*job, a), jobs))
    if a.results:
        path = Path(a.results)
        old = json.loads(path.read_text()) if path.exists() else {"rows": []}
        key = lambda r: (r["candidate"], r["seed"], r["minutes"], r["threads"])  # noqa: E731
        fresh = {key(r) for r in rows}
        old["rows"] = [r for r in old["rows"] if key(r) not in fresh] + rows
        old["meta"] = {**old.get("meta", {}), "python": platform.python_version(), "study": "issue #33",
                       "data": "fashion-mnist",
                       "val": "linear-eval --split val: fit on 50,000 train images, scored on a fixed 10,000"}
        if a.title:
            old["meta"]["title"] = a.title
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(old, indent=1) + "\n")


if __name__ == "__main__":
    main()
