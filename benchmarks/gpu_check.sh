#!/usr/bin/env bash
# The GPU check: no network, generated data, about 8 minutes on one H100 / H200 (benchmarks/gpu_check.py
# says what each section measures and excludes; with several GPUs it also runs torchrun over all of them). Run it from anywhere; it uses this checkout's src/.
#
# usage: bash benchmarks/gpu_check.sh [OUT_DIR]     (writes OUT_DIR/gpu_check.json after each section,
#        and OUT_DIR/gpu_check.txt; default $OUT or .). Record the printed figures in BENCHMARKS.md with
#        the card's name, the date and the commit.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-${OUT:-.}}
mkdir -p "$OUT_DIR"
command -v python3 >/dev/null || { echo "gpu_check: python3 is not on PATH" >&2; exit 2; }
python3 -c "import torch, torchvision, yaml, tqdm, PIL" 2>/dev/null || {
  echo "gpu_check: python3 lacks a dependency: pip install torch torchvision pyyaml tqdm pillow" >&2; exit 2; }
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
COMMIT=$(git rev-parse HEAD 2>/dev/null || echo "${SIMCLR_COMMIT:-unknown}")
timeout 540 python3 benchmarks/gpu_check.py --device cuda --commit "$COMMIT" --json "$OUT_DIR/gpu_check.json" 2>&1 \
  | tee "$OUT_DIR/gpu_check.txt"
