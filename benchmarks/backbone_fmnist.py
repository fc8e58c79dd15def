"""Backbone families at equal wall time on Fashion-MNIST: pretrain each for the same ``--time-budget``,
then ``simclr linear-eval`` its run; one JSON with the plan each run made, its steps, wall time and top-1.

Runs the real commands (``simclr pretrain`` / ``simclr linear-eval``) one after the other, so give it an
otherwise idle machine: the budget is wall time, and a busy core costs a run its steps.

usage: python benchmarks/backbone_fmnist.py --data-dir /usr/share/datasets/fashion-mnist --out runs/bb
       [--minutes 8] [--size 32] [--batch-size 256] [--seed 0] [--only resnet18 ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import yaml

# name -> --arch and config-file keys: our ResNet-18 (with the ImageNet stem, as the fmnist-fast preset: the
# CIFAR stem costs about 16x the compute at 32 px), a ConvNeXt and a ViT-tiny at 32 px. ConvNeXt gets the
# ViTs' AdamW recipe: under the LARS default its features collapsed to a constant within 22 steps.
ADAMW = {"optimizer": "adamw", "base_lr": 1.5e-4, "weight_decay": 0.1}
CANDIDATES: dict[str, dict] = {
    "resnet18 (imagenet stem)": {"arch": "resnet18", "yaml": {"model": {"stem": "imagenet"}}},
    "timm/convnext_atto (adamw)": {"arch": "timm/convnext_atto", "yaml": {"optim": ADAMW}},
    "timm/vit_tiny_patch16_224 (patch 8)": {"arch": "timm/vit_tiny_patch16_224",
                                            "yaml": {"model": {"backbone_kwargs": {"patch_size": 8}}}},
}


def commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def cpu() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")
    flags = next((line for line in out.splitlines() if line.startswith("Flags")), "")
    bf16 = [f for f in ("avx512_bf16", "amx_bf16") if f in flags.split()]
    return f"{model} ({', '.join(bf16) or 'no bf16 flags'})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--minutes", type=float, default=8.0)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="*", default=None)
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, cand in CANDIDATES.items():
        if a.only and name not in a.only and cand["arch"] not in a.only:
            continue
        run = out / name.split(" ")[0].replace("/", "_")
        config = out / f"{run.name}.yaml"
        config.write_text(yaml.safe_dump(cand["yaml"]))
        cmd = [sys.executable, "-m", "simclr", "pretrain", "--dataset", "fashion-mnist", "--data-dir", a.data_dir,
               "--image-size", str(a.size), "--arch", cand["arch"], "--batch-size", str(a.batch_size),
               "--time-budget", str(a.minutes), "--seed", str(a.seed), "--config", str(config),
               "--out", str(run), "--log-every", "50"]
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        pretrain_s = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "simclr", "linear-eval", "--run", str(run), "--out",
                        str(run / "linear_eval.json")], check=True)
        eval_s = time.perf_counter() - start
        saved = yaml.safe_load((run / "config.yaml").read_text())
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        result = json.loads((run / "linear_eval.json").read_text())
        rows.append({
            "backbone": name, "arch": cand["arch"], "yaml": cand["yaml"],
            "optimizer": saved["optim"]["optimizer"], "precision": records[-1].get("precision"),
            "planned_steps": saved["train"]["max_steps"], "steps": records[-1]["step"],
            "epochs": round(records[-1]["epoch"], 2), "train_s": round(records[-1]["time_s"], 1),
            "pretrain_wall_s": round(pretrain_s, 1), "linear_eval_wall_s": round(eval_s, 1),
            "last_loss": records[-1]["loss"], "probe_test_top1": records[-1].get("probe_test_top1"),
            "linear_top1": result["top1"],
        })
        print(json.dumps(rows[-1]), flush=True)
        meta = {"machine": cpu(), "python": platform.python_version(), "commit": commit(),
                "date": time.strftime("%Y-%m-%d"), "minutes": a.minutes, "size": a.size,
                "batch_size": a.batch_size, "seed": a.seed, "command": " ".join(sys.argv)}
        (out / "backbone_fmnist.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
