#!/usr/bin/env bash
# Issue #21's evidence: the Fashion-MNIST reference run (benchmarks/reference_fashion_mnist.sh) with
# --precision auto against fp32, for each seed, the two arms alternated so that both see the same machine.
# Each arm runs pretraining, linear eval and kNN at its precision; no --random-init baselines.
# Prints per run: the precision auto chose (and why), the pretrain and end-to-end wall times, linear /
# kNN top-1; then the medians and the end-to-end speed-up.
#
# usage: bash benchmarks/precision_auto_vs_fp32.sh [OUT_DIR (runs/precision)] [SEEDS (0 1 2)...]
set -euo pipefail
OUT=${1:-runs/precision}
shift || true
SEEDS=("$@")
[[ ${#SEEDS[@]} -gt 0 ]] || SEEDS=(0 1 2)
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
for seed in "${SEEDS[@]}"; do
  for precision in auto fp32; do
    run="$OUT/$precision-seed$seed"
    if [[ -f "$run/knn.json" ]]; then echo "$run: done, kept"; continue; fi
    rm -rf "$run"
    start=$(date +%s)
    PRECISION=$precision SKIP_BASELINE=1 bash "$HERE/reference_fashion_mnist.sh" "$run" --seed "$seed" \
      > "$OUT/$precision-seed$seed.log" 2>&1
    end=$(date +%s)
    echo "$((end - start))" > "$run/wall_s"
    echo "$run: $((end - start)) s end to end"
  done
done
python "$HERE/report.py" precision "$OUT"
