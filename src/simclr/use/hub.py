"""``simclr export --format hf``: a folder a user pushes to a model hub, as it is.

The folder holds ``model.safetensors`` (the encoder, with its architecture in the metadata, which
``load_encoder(FOLDER)`` reads), ``config.json`` (architecture, width, stem, image size, input
normalisation, feature dimension, how it was trained) and ``README.md``, a model card filled from the
run: the recipe of its ``config.yaml``, the steps of its ``metrics.jsonl``, and the linear-eval / kNN
figures of the run's ``linear.json`` / ``knn.json`` when they exist. Nothing is uploaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from simclr.config import load_yaml
from simclr.errors import SimCLRError
from simclr.io import atomic_write_text
from simclr.models.backbones import spec_of
from simclr.models.weights import HF_WEIGHTS

METHOD_REFS = {
    "SimCLR": 'SimCLR: Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations"',
    "SupCon": 'SupCon: Khosla et al. 2020, "Supervised Contrastive Learning"',
}
RESULT_FILES = {"linear.json": "linear evaluation", "knn.json": "kNN (k 200)"}


def _last_step(run: Path) -> int | None:
    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        return None
    lines = [line for line in metrics.read_text().splitlines() if line.strip()]
    return int(json.loads(lines[-1])["step"]) if lines else None


def _results(run: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for name, label in RESULT_FILES.items():
        path = run / name
        if path.is_file():
            r = json.loads(path.read_text())
            if not r.get("random_init"):
                out[label] = r
    return out


def hub_config(encoder: Any, image_size: int, run: Path | None) -> dict[str, Any]:  # noqa: ANN401
    cfg = load_yaml(run / "config.yaml") if run is not None and (run / "config.yaml").is_file() else {}
    kwargs = spec_of(encoder).kwargs
    return {
        "library": "simclr",
        "architecture": encoder.arch,
        "width_multiplier": encoder.width_multiplier,
        "stem": encoder.stem_type,
        "image_size": image_size,
        "input": "RGB in [0, 1], (B, 3, H, W)",
        "input_norm": encoder.input_norm,
        "feature_dim": encoder.feature_dim,
        **({"backbone_kwargs": dict(kwargs)} if kwargs else {}),
        "training": {
            "method": "SupCon" if cfg.get("loss", {}).get("name") == "supcon" else "SimCLR",
            "dataset": cfg.get("data", {}).get("dataset"),
            "steps": _last_step(run) if run is not None else None,
            "config": cfg,
        },
        "results": _results(run) if run is not None else {},
    }


def model_card(config: dict[str, Any]) -> str:
    t, c = config["training"], config["training"]["config"]
    m, a, lo, o, tr = (c.get(k, {}) for k in ("model", "augment", "loss", "optim", "train"))
    dataset = t["dataset"] or "unknown"
    rows = [
        ("encoder", f"{config['architecture']} x{config['width_multiplier']:g}, {config['stem']} stem, "
                    f"h of {config['feature_dim']} dimensions"),
        ("input", f"{config['image_size']} px RGB in [0, 1]"
                  + (", ImageNet mean/std applied inside" if config["input_norm"] == "imagenet" else "")),
        ("projection head", f"{m.get('head', '?')}" + (f", {m.get('head_layers')} layers" if m.get("head") == "mlp"
                                                       else "") + f" -> {m.get('proj_dim', '?')} (not included)"),
        ("loss", f"{t['method']}, temperature {lo.get('temperature', '?')}"),
        ("augmentation", f"crop area {a.get('crop_scale', '?')}, colour strength {a.get('color_strength', '?')}, "
                         f"blur {'on' if a.get('blur') else 'off'}"),
        ("optimiser", f"{o.get('optimizer', '?')}, base lr {o.get('base_lr', '?')}, weight decay "
                      f"{o.get('weight_decay', '?')}, warm-up {o.get('warmup_epochs', '?')} epochs + cosine"),
        ("training", f"batch {tr.get('batch_size', '?')}, {tr.get('epochs', '?')} epochs"
                     + (f", {t['steps']} steps" if t["steps"] is not None else "") + f", {tr.get('precision', '?')}"),
    ]
    results = "".join(f"| {label} | {100 * r['top1']:.2f} | "
                      + (f"{100 * r['top5']:.2f}" if "top5" in r else "-") + " |\n"
                      for label, r in config["results"].items())
    results_block = ("| protocol (test split) | top-1 % | top-5 % |\n|---|---|---|\n" + results if results
                     else "No evaluation was recorded with the run (`simclr linear-eval --out RUN/linear.json`).\n")
    size, dim = config["image_size"], config["feature_dim"]
    return f"""---
library_name: simclr
tags: [simclr, self-supervised-learning, contrastive-learning, image-feature-extraction]
datasets: [{dataset}]
---

# {config['architecture']} {t['method']} encoder, {dataset}

An encoder f ({config['architecture']}) trained with the `simclr` library ({METHOD_REFS[t['method']]}). It maps
images to the representation h used for linear evaluation, fine-tuning, search and transfer.

## Use

```python
from simclr import load_encoder

encoder = load_encoder("path/to/this/folder")  # eval mode
h = encoder(images)  # RGB in [0, 1], (B, 3, {size}, {size}) -> (B, {dim})
```

## Training

| setting | value |
|---|---|
""" + "".join(f"| {k} | {v} |\n" for k, v in rows) + f"""
## Results

{results_block}"""


def export_hub_folder(encoder: Any, out: str | os.PathLike, image_size: int, run: str | os.PathLike | None,
                      write_weights: Any) -> Path:
    """Write the hub folder ``out``: the weights (``write_weights(path)``), config.json, README.md."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise SimCLRError(f"--out {out} exists and is not a folder (--format hf writes a folder)")
    folder.mkdir(parents=True, exist_ok=True)
    run_dir = Path(run) if run is not None and Path(run).is_dir() else None
    config = hub_config(encoder, image_size, run_dir)
    write_weights(folder / HF_WEIGHTS)
    atomic_write_text(folder / "config.json", json.dumps(config, indent=2) + "\n")
    atomic_write_text(folder / "README.md", model_card(config))
    return folder


__all__ = ["export_hub_folder", "hub_config", "model_card"]
