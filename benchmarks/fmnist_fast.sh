#!/usr/bin/env bash
# Issue #4 time to accuracy: `simclr pretrain --preset fmnist-fast` on Fashion-MNIST (60k train),
# keeping the encoder of every epoch, then linear eval (60k / 10k) of each: accuracy against minutes
# of pretraining. Also kNN of the final encoder.
#
# usage: bash benchmarks/fmnist_fast.sh [RUN_DIR] [extra pretrain flags...]
# needs: apt-get install -y dataset-fashion-mnist   (or DATA_DIR pointing at the IDX .gz files)
set -euo pipefail
RUN=${1:-runs/fmnist-fast}
shift || true
DATA=${DATA_DIR:-/usr/share/datasets/fashion-mnist}
COMMON=(--dataset fashion-mnist --data-dir "$DATA")

start=$(date +%s)
simclr pretrain --preset fmnist-fast --data-dir "$DATA" --out "$RUN" --save-every-epoch "$@"
echo "pretrain wall time: $(( $(date +%s) - start )) s"
for enc in $(ls "$RUN"/encoder-epoch*.pt | sort -V); do
  e=$(basename "$enc" .pt); e=${e#encoder-epoch}
  [[ -f "$RUN/linear-epoch$e.json" ]] || simclr linear-eval --run "$enc" "${COMMON[@]}" --out "$RUN/linear-epoch$e.json"
done
simclr knn --run "$RUN" "${COMMON[@]}" --out "$RUN/knn.json"
python benchmarks/report.py curve "$RUN"
