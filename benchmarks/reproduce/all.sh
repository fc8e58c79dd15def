#!/usr/bin/env bash
# Every reproduction study in turn (about 7 hours on 2 cores with two seeds), then REPRODUCTION.md.
# Finished points are kept in benchmarks/results/, so a stopped run picks up where it was.
# usage: bash benchmarks/reproduce/all.sh [options for every study, e.g. --seeds 0 1 --jobs 2 --threads 1]
# needs: apt-get install -y dataset-fashion-mnist (or DATA_DIR pointing at the IDX .gz files)
set -euo pipefail
cd "$(dirname "$0")/../.."
for study in temperature head color_strength composition batch_size width loss; do
  python benchmarks/reproduce/$study.py "$@"
done
python benchmarks/reproduce/render.py
