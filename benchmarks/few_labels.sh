#!/usr/bin/env bash
# Issue #20's few-labels table on Fashion-MNIST: for each label fraction, the same subset for every column:
# SimCLR fine-tune (v1, from h), v2 (from head layer 1 of a 3-layer-head run), linear eval on the same labels,
# the same network from scratch, self-distillation and a half-width student distilled from the v1 fine-tune.
# Then SupCon pretraining with all labels, judged by linear eval.
#
# usage: bash benchmarks/few_labels.sh V1_RUN V3HEAD_RUN [OUT]
#   V1_RUN: the reference run (benchmarks/reference_fashion_mnist.sh), V3HEAD_RUN: the same with --head-layers 3
#   env: FRACTIONS ("0.01 0.1 1.0"), FULL_EPOCHS (3: fine-tuning epochs at fraction 1.0), DISTILL_EPOCHS (3),
#        DISTILL_FRACTIONS (default: FRACTIONS: the fractions distilled), SKIP_SUPCON=1, SEED (0),
#        COLUMNS ("v1 linear v2 scratch self half": the columns to run; v1 first, the others use its subset)
# then: python benchmarks/report.py few-labels OUT
set -euo pipefail
V1=$1; V3=$2; OUT=${3:-runs/few-labels}
DATA=(--dataset fashion-mnist --data-dir "${DATA_DIR:-/usr/share/datasets/fashion-mnist}")
SEED=${SEED:-0}
mkdir -p "$OUT"
COLUMNS=" ${COLUMNS:-v1 linear v2 scratch self half} "
timed() {  # timed NAME command...: the command's wall time in OUT/NAME.time (columns not in COLUMNS skipped)
  local name=$1; shift
  [[ "$COLUMNS" == *" ${name%%-*} "* || "$name" == *supcon* ]] || return 0
  if [[ -f "$OUT/$name.time" ]]; then echo "skip $name (done)"; return; fi
  local start; start=$(date +%s)
  "$@" > "$OUT/$name.log" 2>&1
  echo $(( $(date +%s) - start )) > "$OUT/$name.time"
  echo "$name: $(tail -1 "$OUT/$name.log") ($(cat "$OUT/$name.time") s)"
}
FRACTIONS=${FRACTIONS-0.01 0.1 1.0}
for f in $FRACTIONS; do
  epochs=(); [[ "$f" == "1.0" ]] && epochs=(--epochs "${FULL_EPOCHS:-3}")
  timed "v1-$f" simclr finetune --run "$V1" "${DATA[@]}" --label-fraction "$f" --seed "$SEED" "${epochs[@]}" \
    --out "$OUT/v1-$f"
  subset=(--subset-file "$OUT/v1-$f/subset.txt")
  timed "linear-$f" simclr linear-eval --run "$V1" "${DATA[@]}" "${subset[@]}" --out "$OUT/linear-$f.json"
  timed "v2-$f" simclr finetune --run "$V3" "${DATA[@]}" "${subset[@]}" --from-head-layer 1 --seed "$SEED" \
    "${epochs[@]}" --out "$OUT/v2-$f"
  timed "scratch-$f" simclr finetune --run "$V1" "${DATA[@]}" "${subset[@]}" --random-init --seed "$SEED" \
    "${epochs[@]}" --out "$OUT/scratch-$f"
  if [[ " ${DISTILL_FRACTIONS:-$FRACTIONS} " != *" $f "* ]]; then continue; fi
  timed "self-$f" simclr distill --teacher "$OUT/v1-$f" "${DATA[@]}" --epochs "${DISTILL_EPOCHS:-3}" \
    --seed "$SEED" --out "$OUT/self-$f"
  timed "half-$f" simclr distill --teacher "$OUT/v1-$f" "${DATA[@]}" --student-width 0.5 \
    --epochs "${DISTILL_EPOCHS:-3}" --seed "$SEED" --out "$OUT/half-$f"
done
if [[ -z "${SKIP_SUPCON:-}" ]]; then
  # SupCon: the reference recipe with --loss supcon (every view of the same class a positive)
  [[ "$COLUMNS" == *" supcon "* ]] || exit 0
  timed supcon env SKIP_EVAL=1 bash benchmarks/reference_fashion_mnist.sh "$OUT/supcon" --loss supcon --seed "$SEED"
  timed linear-supcon simclr linear-eval --run "$OUT/supcon" "${DATA[@]}" --out "$OUT/linear-supcon.json"
fi
