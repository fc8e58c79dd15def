#!/usr/bin/env bash
# Issue #33's final runs: the fmnist-fast preset as a user runs it (its time_budget: 20, precision: auto), one
# seed at a time on an otherwise idle machine, each scored once on the test set by `simclr linear-eval`.
# The rows go to $RESULTS (default benchmarks/results/fmnist_time_study-final.json; REPRODUCTION.md renders them),
# titled $TITLE.
# usage: [RESULTS=FILE] [TITLE=...] bash benchmarks/fmnist_fast_final.sh [OUT=runs/fmnist-fast-final] [SEEDS="0 1"]
set -euo pipefail
OUT=${1:-runs/fmnist-fast-final}
SEEDS=${2:-0 1}
DATA=${DATA_DIR:-/usr/share/datasets/fashion-mnist}
# shellcheck disable=SC2086
python benchmarks/fmnist_time_study.py --data-dir "$DATA" --out "$OUT" --only preset --minutes 20 \
  --precision auto --parallel 1 --seeds $SEEDS --test --no-val \
  --title "${TITLE:-Final: the fmnist-fast preset, 20 minutes, alone on an idle machine}" \
  --results "${RESULTS:-benchmarks/results/fmnist_time_study-final.json}"
