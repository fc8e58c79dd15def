"""What every reproduction study shares: its scales, its points, running them and keeping the results.

A study (one module beside this one) lists *points*: one pretraining run each (``simclr pretrain`` on
top of the scale's base recipe, plus the point's own flags and config), then the measurements on it
(``simclr linear-eval`` on h or z, ``simclr knn``, a supervised network trained from scratch with
``simclr finetune --random-init``). Every point runs the real command line in a subprocess, so the
studies measure exactly what a user runs. Points run ``--jobs`` at a time with ``--threads`` each; each
finished point is written at once to ``benchmarks/results/<study>.json``, so a stopped study resumes
where it was (points already there are skipped; ``--redo`` runs them again). A run directory is
reused only when it was made with the point's settings (``<key>.point.json`` beside it records them): a
point whose flags or config changed since is pretrained again, never measured on an old encoder.

The JSON holds the study's name, the scale and its base flags, the machine (CPU model and the flags
that decide bf16), the commit, the command and every point: its varied values, seed, measurements, wall
times, and the commit and machine that made it. ``render.py`` builds REPRODUCTION.md and the plots from
these files alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
RUNS = ROOT / "runs" / "reproduce"
FMNIST_DIR = os.environ.get("DATA_DIR", "/usr/share/datasets/fashion-mnist")

# The recipe every point starts from: the Fashion-MNIST reference run's (BENCHMARKS.md), made small
# enough that a point takes about 3-4 minutes on one core: a 10k-image subset, ResNet-18 at width 0.5,
# 5 epochs. SGD + momentum, not LARS: at batch 256 LARS brings nothing (PAPER.md: LARS is for big batches).
COMMON = ["--stem", "imagenet", "--batch-size", "256", "--optimizer", "sgd", "--base-lr", "0.06",
          "--momentum", "0.9", "--weight-decay", "5e-4", "--warmup-epochs", "0", "--no-blur",
          "--precision", "fp32", "--no-online-probe", "--device", "cpu", "--log-every", "20"]


@dataclass(frozen=True)
class Scale:
    """Dataset, size and length of every point of a study."""

    name: str
    dataset: str
    limit: int  # train images for pretraining and evaluation (the evaluation tests on limit / 5)
    image_size: int
    width: float
    epochs: int
    base: tuple[str, ...]  # pretrain flags besides dataset, size, width, epochs
    eval_batch: int = 256

    def data_flags(self) -> list[str]:
        flags = ["--dataset", self.dataset, "--limit", str(self.limit)]
        if self.dataset == "fashion-mnist":
            flags += ["--data-dir", FMNIST_DIR]
        return flags

    def pretrain_flags(self) -> list[str]:
        return [*self.data_flags(), "--image-size", str(self.image_size), "--width-multiplier", str(self.width),
                "--epochs", str(self.epochs), *self.base]

    def describe(self) -> str:
        test = max(1, self.limit // 5)
        return (f"{self.dataset}, the first {self.limit} train / {test} test images at {self.image_size} px, "
                f"ResNet-18 x{self.width:g} (ImageNet stem), {self.epochs} epoch{'s' if self.epochs > 1 else ''}")


SCALES = {
    # Fashion-MNIST: real images, grayscale (colour distortion can only change brightness / contrast).
    "fmnist": Scale("fmnist", "fashion-mnist", 10_000, 28, 0.5, 5,
                    (*COMMON, "--temperature", "0.2", "--color-strength", "0.5")),
    # synthetic: shapes whose colour, background and position are nuisances (simclr.data.synthetic):
    # the dataset where colour distortion must matter. The README's quickstart recipe (the package's
    # defaults for synthetic: LARS, tau 0.5, colour 1.0, crop area 0.25-1), measured at 0.59 linear
    # top-1 against 0.38 untrained; 5 epochs of 10k images at width 0.5 left SimCLR near the untrained
    # network there (35-42 at colour 1/8 on 2026-12-02), too short to show anything.
    "synthetic": Scale("synthetic", "synthetic", 4096, 32, 0.25, 30,
                       ("--precision", "fp32", "--no-online-probe", "--device", "cpu", "--log-every", "50")),
    # the width / depth study: the same recipe, 3 epochs, so that ResNet-50 and width 2 fit in the hour
    "fmnist-short": Scale("fmnist-short", "fashion-mnist", 10_000, 28, 0.5, 3,
                          (*COMMON, "--temperature", "0.2", "--color-strength", "0.5")),
    # seconds per point: for the tests and for trying a study out
    "smoke": Scale("smoke", "synthetic", 96, 16, 0.25, 1,
                   (*COMMON[:-2], "--batch-size", "32", "--log-every", "1", "--temperature", "0.5"),
                   eval_batch=64),
}


@dataclass
class Point:
    """One pretraining run and what is measured on it.

    ``values``: the settings the study varies (the keys of its table), e.g. ``{"temperature": 0.1}``.
    ``flags``: pretrain flags on top of the scale's. ``config``: a pretrain config for options without a
    flag (written as YAML and passed with ``--config``; flags still win). ``measure``: any of
    ``linear`` (linear eval on h), ``linear_z`` (on z), ``knn``, ``supervised`` (the same network trained
    from scratch on every label of the subset, ``supervised_flags`` added to ``simclr finetune``).
    """

    values: dict[str, Any]
    seed: int
    flags: list[str] = field(default_factory=list)
    config: dict[str, Any] | None = None
    measure: tuple[str, ...] = ("linear",)
    supervised_flags: list[str] = field(default_factory=list)
    scale: str | None = None  # the study's scale unless set

    @property
    def key(self) -> str:
        parts = [f"{k}={v}" for k, v in self.values.items()]
        return "_".join([*parts, f"seed={self.seed}"]).replace("/", "-")


@dataclass
class Study:
    """A study module's description: what it varies, at what scale, and the paper's finding."""

    name: str
    title: str
    paper: str  # the paper's figure or table and its numbers
    finding: str  # the paper's claim, one sentence
    why_fair: str  # why the small scale is a fair small version
    points: Callable[[argparse.Namespace], list[Point]]
    default_scale: str = "fmnist"
    extra_args: Callable[[argparse.ArgumentParser], None] | None = None


def machine() -> dict[str, Any]:
    """CPU model and the flags that decide bf16 (the brief: name the machine beside every figure)."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return {"cpu": model, "cores": os.cpu_count(), "flags": [f for f in wanted if f in flags],
            "python": platform.python_version()}


def commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        # only the code that makes the figures: results files and docs change while a study runs
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "benchmarks/reproduce"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def settings_of(point: Point, flags: Sequence[str]) -> dict[str, Any]:
    """What a point's run directory is made with: its pretrain flags (the scale's and its own), its config
    and its supervised flags. Stored beside the run, so that a changed point never reuses an old run."""
    return {"flags": list(flags), "config": point.config, "supervised_flags": list(point.supervised_flags)}


def stamp_of(run: Path) -> Path:
    """Where the settings a run directory was made with are kept: beside it, as ``<key>.point.json``."""
    return run.parent / f"{run.name}.point.json"


def stale(run: Path, settings: dict[str, Any]) -> bool:
    """Whether ``run`` exists but was not made with ``settings`` (or by a study before they were stored)."""
    if not run.exists():
        return False
    stamp = stamp_of(run)
    return not stamp.exists() or json.loads(stamp.read_text()) != json.loads(json.dumps(settings))


def results_path(study: str, scale: str) -> Path:
    """Where a study's results live: ``<study>.json`` at its default scale, ``<study>-<scale>.json`` else."""
    return RESULTS / f"{study}.json" if scale == "default" else RESULTS / f"{study}-{scale}.json"


class Runner:
    """Runs a study's points through the command line and keeps the results file up to date."""

    def __init__(self, study: Study, args: argparse.Namespace) -> None:
        self.study, self.args = study, args
        self.scale_name = args.scale
        self.path = Path(args.results) if args.results else results_path(study.name, args.scale)
        self.runs = Path(args.runs) / study.name / args.scale
        self.lock = threading.Lock()
        self.data = self._load()

    def scale_of(self, point: Point) -> Scale:
        name = point.scale or self.study.default_scale
        return SCALES["smoke"] if self.scale_name == "smoke" else SCALES[name]

    def _load(self) -> dict[str, Any]:
        if self.path.exists() and not self.args.fresh:
            data = json.loads(self.path.read_text())
            for record in data["points"].values():  # points from before each kept its own: the file's machine
                record.setdefault("machine", data.get("machine"))
            return data
        return {"study": self.study.name, "title": self.study.title, "scale": self.scale_name, "points": {}}

    def _save(self) -> None:
        self.data.update(
            paper=self.study.paper, finding=self.study.finding, why_fair=self.study.why_fair,
            scales={n: {"describe": s.describe(), "pretrain_flags": s.pretrain_flags()} for n, s in SCALES.items()
                    if n == "smoke" or self.scale_name != "smoke"},
            machine=machine(), updated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            command=" ".join(shlex.quote(a) for a in ["python", *sys.argv]),
            jobs=self.args.jobs, threads=self.args.threads,
        )
        self.data.setdefault("commits", [])
        if (c := commit()) not in self.data["commits"]:
            self.data["commits"].append(c)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=1) + "\n")
        tmp.replace(self.path)

    def run(self, points: Sequence[Point]) -> dict[str, Any]:
        keys = [p.key for p in points]
        if len(set(keys)) != len(keys):
            raise SystemExit(f"{self.study.name}: two points share a key")
        todo = [p for p in points if self.args.redo or p.key not in self.data["points"]]
        print(f"{self.study.name}: {len(points)} points, {len(points) - len(todo)} already in {self.path}, "
              f"{len(todo)} to run ({self.args.jobs} at a time, {self.args.threads} threads each)", flush=True)
        self._save()
        start = time.monotonic()
        failures: list[str] = []

        def one(p: Point) -> None:
            try:
                record = self._run_point(p)
            except subprocess.CalledProcessError as e:
                failures.append(f"{p.key}: {' '.join(e.cmd[:4])} ... exited {e.returncode}")
                print(f"  FAILED {p.key}: see {self.runs / p.key / 'log.txt'}", flush=True)
                return
            with self.lock:
                self.data["points"][p.key] = record
                self._save()
                done = sum(1 for q in todo if q.key in self.data["points"])
                shown = " ".join(f"{k} {v:.4f}" for k, v in record["metrics"].items())
                print(f"  [{done}/{len(todo)} {time.monotonic() - start:.0f} s] {p.key}: {shown}", flush=True)

        with ThreadPoolExecutor(self.args.jobs) as pool:
            list(pool.map(one, todo))
        if failures:
            raise SystemExit("failed points:\n  " + "\n  ".join(failures))
        self._baselines(points)
        return self.data

    def _baselines(self, points: Sequence[Point]) -> None:
        """Linear eval of the untrained network (``--random-init``) of each scale's first point: the level
        a trained encoder has to beat. Kept in the results as ``baselines[scale]``."""
        base = self.data.setdefault("baselines", {})
        for p in points:
            scale = self.scale_of(p)
            run = self.runs / p.key
            if scale.name in base or not (run / "encoder.pt").exists():
                continue
            out = run / "linear_random.json"
            self._cli(["linear-eval", "--run", str(run), "--random-init", "--limit", str(scale.limit),
                       "--precision", "fp32", "--device", "cpu", "--seed", "0", "--batch-size",
                       str(scale.eval_batch), "--out", str(out)], run.parent / f"{p.key}.log")
            top1 = float(json.loads(out.read_text())["top1"])
            base[scale.name] = {"linear_random": top1, "run": p.key, "commit": commit()}
            print(f"  untrained {p.key.split('_seed')[0]} ({scale.name}): linear {top1:.4f}", flush=True)
            with self.lock:
                self._save()

    def _cli(self, args: list[str], log: Path) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(self.args.threads), "MKL_NUM_THREADS": str(self.args.threads)}
        with log.open("a") as f:
            f.write("$ simclr " + " ".join(shlex.quote(a) for a in args) + "\n")
            f.flush()
            subprocess.run([sys.executable, "-m", "simclr", *args], stdout=f, stderr=f, env=env, check=True)

    def _run_point(self, p: Point) -> dict[str, Any]:
        scale = self.scale_of(p)
        run = self.runs / p.key
        log = run.parent / f"{p.key}.log"
        flags = [*scale.pretrain_flags(), "--seed", str(p.seed), *p.flags]
        settings = settings_of(p, flags)
        if stale(run, settings):
            print(f"  {p.key}: its run directory was made with other settings; pretraining again", flush=True)
            shutil.rmtree(run)
        if run.exists() and not (run / "encoder.pt").exists():
            shutil.rmtree(run)  # an interrupted pretraining: start it again
        run.parent.mkdir(parents=True, exist_ok=True)
        stamp_of(run).write_text(json.dumps(settings, indent=1) + "\n")
        if p.config:
            cfg = run.parent / f"{p.key}.yaml"
            cfg.write_text(yaml.safe_dump(p.config))
            flags = ["--config", str(cfg), *flags]
        t0 = time.monotonic()
        if not (run / "encoder.pt").exists():
            self._cli(["pretrain", "--out", str(run), *flags], log)
        pretrain_s = time.monotonic() - t0
        metrics: dict[str, float] = {}
        evals = ["--limit", str(scale.limit), "--precision", "fp32", "--device", "cpu", "--seed", str(p.seed),
                 "--batch-size", str(scale.eval_batch)]
        t1 = time.monotonic()
        for m in p.measure:
            out = run / f"{m}.json"
            if m in ("linear", "linear_z"):
                layer = ["--layer", "z"] if m == "linear_z" else []
                self._cli(["linear-eval", "--run", str(run), *evals, *layer, "--out", str(out)], log)
            elif m == "knn":
                self._cli(["knn", "--run", str(run), *evals, "--out", str(out)], log)
            elif m == "supervised":
                sup = run / "supervised"
                if sup.exists() and not (sup / "results.json").exists():
                    shutil.rmtree(sup)
                if not sup.exists():
                    self._cli(["finetune", "--run", str(run), "--random-init", "--label-fraction", "1.0",
                               "--out", str(sup),
                               "--limit", str(scale.limit), "--epochs", str(scale.epochs), "--seed", str(p.seed),
                               "--precision", "fp32", "--device", "cpu", "--log-every", "20",
                               *p.supervised_flags], log)
                shutil.copy(sup / "results.json", out)
            else:
                raise SystemExit(f"unknown measurement {m!r}")
            metrics[m] = float(json.loads(out.read_text())["top1"])
        last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
        return {"values": p.values, "seed": p.seed, "scale": scale.name, "flags": p.flags, "config": p.config,
                "metrics": metrics, "final_loss": last[-1]["loss"] if last else None,
                "pretrain_s": round(pretrain_s, 1), "measure_s": round(time.monotonic() - t1, 1), "commit": commit(),
                "machine": machine(),
                "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def main(study: Study, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The command line of a study module: ``python benchmarks/reproduce/<study>.py [options]``."""
    p = argparse.ArgumentParser(prog=f"benchmarks/reproduce/{study.name}.py", description=study.title)
    p.add_argument("--scale", default="default", choices=("default", "smoke"),
                   help="default: the study's scale (REPRODUCTION.md); smoke: seconds per point, for trying it out")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of every point (default 0 1)")
    p.add_argument("--jobs", type=int, default=2, help="points at a time (default 2)")
    p.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                   help="threads per point (default: cores / 2)")
    p.add_argument("--results", help="results file (default benchmarks/results/<study>[-smoke].json)")
    p.add_argument("--runs", default=str(RUNS), help="where the runs go (default runs/reproduce)")
    p.add_argument("--redo", action="store_true", help="run points already in the results again")
    p.add_argument("--fresh", action="store_true", help="start a new results file")
    p.add_argument("--list", action="store_true", help="print the points and stop")
    if study.extra_args:
        study.extra_args(p)
    args = p.parse_args(argv)
    points = study.points(args)
    if args.list:
        for q in points:
            print(q.key, " ".join(q.flags), json.dumps(q.config) if q.config else "", ",".join(q.measure))
        return {}
    return Runner(study, args).run(points)


def by_group(result: dict[str, Any], metric: str, *keys: str) -> dict[tuple, list[float]]:
    """The values of ``metric`` over the seeds of every group of points (grouped by ``keys`` of values)."""
    groups: dict[tuple, list[float]] = {}
    for rec in result["points"].values():
        if metric in rec["metrics"]:
            groups.setdefault(tuple(rec["values"].get(k) for k in keys), []).append(rec["metrics"][metric])
    return groups


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def beats(a: Sequence[float], b: Sequence[float]) -> bool:
    """Every seed of ``a`` above every seed of ``b``: a difference larger than the seed spread."""
    return bool(a) and bool(b) and min(a) > max(b)


def cell(xs: Sequence[float]) -> str:
    """A table cell: the median in percent, and the range over seeds when there are several."""
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{100 * xs[0]:.1f}"
    return f"{100 * median(xs):.1f} ({100 * min(xs):.1f}-{100 * max(xs):.1f})"


__all__ = ["COMMON", "RESULTS", "SCALES", "Point", "Runner", "Scale", "Study", "beats", "by_group", "cell",
           "commit", "machine", "main", "median", "results_path"]
