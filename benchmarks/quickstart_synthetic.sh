#!/usr/bin/env bash
# The README quickstart on `synthetic`, for several seeds: pretraining time, and linear top-1 of the
# trained encoder against the same architecture untrained (--random-init, standard init).
#
# usage: bash benchmarks/quickstart_synthetic.sh [SEED ...]     (default: seed 0)
set -euo pipefail
seeds=("${@:-0}")
mkdir -p runs
for seed in "${seeds[@]}"; do
  run=runs/quick-seed$seed
  rm -rf "$run"
  start=$(date +%s)
  simclr pretrain --out "$run" --limit 4096 --epochs 30 --width-multiplier 0.25 --seed "$seed" 2>"$run.log" \
    || { cat "$run.log"; exit 1; }
  end=$(date +%s)
  trained=$(simclr linear-eval --run "$run" --limit 4096 2>/dev/null)
  random=$(simclr linear-eval --run "$run" --limit 4096 --random-init 2>/dev/null)
  echo "seed $seed: pretrain $((end - start)) s | $trained | $random"
done
