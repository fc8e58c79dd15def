"""``simclr linear-eval`` and ``simclr knn``: the evaluation protocols on a trained run."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _add_eval(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    # --run-dir: the same, for torchrun, whose parser takes --run for an abbreviation of its --run-path
    p.add_argument("--run", "--run-dir", dest="run", required=True, help="a run directory or an encoder.pt")
    p.add_argument("--dataset", help="dataset to evaluate on (default: the run's)")
    p.add_argument("--data-dir", help="where the dataset lives (default: the run's)")
    p.add_argument("--limit", type=int, help="use only the first N train images (and N/5 test)")
    p.add_argument("--image-size", type=int, help="input size (default: the run's)")
    p.add_argument("--random-init", action="store_true", help="same architecture, untrained: the baseline")
    p.add_argument("--batch-size", type=int, default=256, help="feature extraction batch (default 256)")
    p.add_argument("--workers", type=int, default=2, help="loader workers for folder datasets")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="feature extraction: auto (default: bf16 where the hardware runs it natively, else fp32), "
                   "fp32 or bf16")
    p.add_argument("--label-fraction", type=float,
                   help="fit on this fraction of the train labels only (class-balanced, drawn with --seed, as "
                   "`simclr finetune` draws them)")
    p.add_argument("--subset-file", help="fit on the train images this file names only (e.g. a finetune's subset.txt)")
    p.add_argument("--layer", default="h", choices=("h", "z"),
                   help="h (default: the encoder's output, the representation) or z (after the projection head "
                   "g; needs a run directory, whose checkpoint holds g)")
    p.add_argument("--split", default="test", choices=("test", "val"),
                   help="score on: test (default) or val, a fixed sixth of the train split held out (the rest "
                        "fitted): tune on val, score the test split once at the end")
    p.add_argument("--seed", type=int, default=0, help="seed of --random-init weights and of --label-fraction")
    p.add_argument("--out", help="write the result as JSON here")
    return p


def add_commands(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    _add_eval(sub, "linear-eval", "linear evaluation: logistic regression on frozen features h (or z)")
    knn = _add_eval(sub, "knn", "weighted kNN on frozen features h or z (cosine similarity)")
    knn.add_argument("--k", type=int, default=200, help="neighbours (default 200)")
    knn.add_argument("--knn-temperature", type=float, default=0.1, help="vote weight exp(sim/t) (default 0.1)")
    return {"linear-eval": linear_eval_command, "knn": knn_command}


def _feature_args(args: argparse.Namespace) -> dict[str, Any]:
    return dict(dataset=args.dataset, data_dir=args.data_dir, limit=args.limit, image_size=args.image_size,
                random_init=args.random_init, batch_size=args.batch_size, workers=args.workers,
                device=args.device, precision=args.precision, label_fraction=args.label_fraction,
                subset_file=args.subset_file, layer=args.layer, split=args.split)


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def _write_result(result: dict[str, Any] | None, args: argparse.Namespace, kind: str) -> int:
    if result is None:  # a rank other than 0 under torchrun: rank 0 reports
        return 0
    on = f" on {args.layer}" if args.layer != "h" else ""
    on += " (validation split)" if args.split == "val" else ""
    line = f"{kind}{on}{' (random init)' if args.random_init else ''}: " + " ".join(
        f"{k} {v:.4f}" for k, v in result.items() if k.startswith("top")
    )
    print(line)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def linear_eval_command(args: argparse.Namespace) -> int:
    from simclr.eval.protocol import evaluate_linear

    return _write_result(evaluate_linear(args.run, seed=args.seed, log=_log, **_feature_args(args)), args,
                         "linear-eval")


def knn_command(args: argparse.Namespace) -> int:
    from simclr.eval.protocol import evaluate_knn

    result = evaluate_knn(args.run, k=args.k, temperature=args.knn_temperature, seed=args.seed, log=_log,
                          **_feature_args(args))
    return _write_result(result, args, "knn")
