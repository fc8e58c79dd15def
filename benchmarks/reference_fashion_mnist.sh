#!/usr/bin/env bash
# Issue #2 reference run: SimCLR on Fashion-MNIST, ResNet-18 (ImageNet stem) at 28 px,
# batch 256, 5 epochs, SGD lr 0.06 x B/256, wd 5e-4, cosine, tau 0.5, colour 0.5, no blur.
# Then linear eval (60k train / 10k test) and kNN for the trained and the untrained encoder.
#
# usage: bash benchmarks/reference_fashion_mnist.sh [RUN_DIR] [extra pretrain flags...]
#   env: PRECISION (fp32; pretraining, linear eval and kNN all run at it),
#        SKIP_BASELINE=1 (no --random-init evaluations), SKIP_EVAL=1 (pretrain only)
# needs: apt-get install -y dataset-fashion-mnist   (or DATA_DIR pointing at the IDX .gz files)
set -euo pipefail
RUN=${1:-runs/ref-fmnist}
shift || true
DATA=${DATA_DIR:-/usr/share/datasets/fashion-mnist}
COMMON=(--dataset fashion-mnist --data-dir "$DATA")

start=$(date +%s)
simclr pretrain "${COMMON[@]}" --out "$RUN" \
  --arch resnet18 --stem imagenet --image-size 28 --batch-size 256 --epochs 5 \
  --temperature 0.5 --color-strength 0.5 --no-blur \
  --optimizer sgd --base-lr 0.06 --momentum 0.9 --weight-decay 5e-4 --warmup-epochs 0 \
  --precision "${PRECISION:-fp32}" "$@"
end=$(date +%s)
echo "pretrain wall time: $((end - start)) s"
if [[ -n "${SKIP_EVAL:-}" ]]; then exit 0; fi  # timing runs: pretraining only

EVAL=(--precision "${PRECISION:-fp32}")
simclr linear-eval --run "$RUN" "${COMMON[@]}" "${EVAL[@]}" --out "$RUN/linear.json"
simclr knn --run "$RUN" "${COMMON[@]}" "${EVAL[@]}" --out "$RUN/knn.json"
if [[ -z "${SKIP_BASELINE:-}" ]]; then
  simclr linear-eval --run "$RUN" "${COMMON[@]}" --random-init "${EVAL[@]}" --out "$RUN/linear-random.json"
  simclr knn --run "$RUN" "${COMMON[@]}" --random-init "${EVAL[@]}" --out "$RUN/knn-random.json"
fi
python benchmarks/report.py run "$RUN"
