#!/usr/bin/env bash
# Issue #4 GPU check: one GPU, no network, synthetic data, under 5 minutes.
# GPU augmentation vs CPU values, augmentation images/s, and bf16 training throughput of
# resnet18 (CIFAR stem, 32 px) and resnet50 (224 px) against the card's measured bf16 matmul rate.
#
# usage: bash benchmarks/gpu_check.sh [OUT_DIR]     (writes OUT_DIR/gpu_check.json; default $OUT or .)
# Record the printed figures in BENCHMARKS.md with the card's name and the date.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-.}}
mkdir -p "$OUT_DIR"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 290 python benchmarks/gpu_check.py --device cuda --json "$OUT_DIR/gpu_check.json" | tee "$OUT_DIR/gpu_check.txt"
