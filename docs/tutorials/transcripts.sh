#!/usr/bin/env bash
# Runs every tutorial's commands, as written in docs/tutorials/*.md, in WORK (default /tmp/simclr-tutorials),
# and keeps each command's output in WORK/transcripts/NN-name.txt: the outputs the pages quote.
# usage: bash docs/tutorials/transcripts.sh [WORK]      (about 20 minutes on 2 CPU cores)
# needs: Fashion-MNIST's IDX files (apt-get install dataset-fashion-mnist, or FMNIST=DIR) to make the
# tutorials' folder of photos; torchrun (it comes with torch); timm for the timm export (simclr[timm]).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-/tmp/simclr-tutorials}
FMNIST=${FMNIST:-/usr/share/datasets/fashion-mnist}
mkdir -p "$WORK/transcripts"
cd "$WORK"
n=0
step() {  # step NAME COMMAND...: run it, show and keep its output
  n=$((n + 1))
  local out; out=$(printf "transcripts/%02d-%s.txt" "$n" "$1"); shift
  echo "\$ $*" | tee "$out"
  "$@" 2>&1 | tee -a "$out"
}

# --- your own folder of photos -------------------------------------------------------------------
# a folder of JPEGs in class subfolders: 3,000 Fashion-MNIST images stand in for your photos
python "$REPO/docs/tutorials/make_photos.py" --fmnist "$FMNIST" --out photos --n 3000
step tree find photos -maxdepth 1 -type d
step preview simclr preview-augment --dataset folder --data-dir photos --image-size 64 --n 4 --out preview.png
step pretrain simclr pretrain --dataset folder --data-dir photos --image-size 64 --batch-size 64 --time-budget 5 --out runs/photos
step linear-eval simclr linear-eval --run runs/photos
step knn simclr knn --run runs/photos
step random-init simclr linear-eval --run runs/photos --random-init
step embed simclr embed --run runs/photos --images photos --out photos.npz
q=$(find photos/Sneaker -name '*.jpg' | sort | head -n 1)
step search simclr search --index photos.npz --query "$q" --k 5 --html search.html

# --- few labels: fine-tune on 10% of the labels, then distil -------------------------------------
step finetune simclr finetune --run runs/photos --label-fraction 0.1 --out runs/photos-ft10
step finetune-baseline simclr finetune --run runs/photos --label-fraction 0.1 --random-init --out runs/scratch-ft10
step distill simclr distill --teacher runs/photos-ft10 --epochs 10 --out runs/photos-distilled

# --- export to torchvision and timm -----------------------------------------------------------
step export simclr export --run runs/photos --format torchvision --out photos-resnet18.pth
step load-torchvision python "$REPO/docs/tutorials/load_exported.py" runs/photos photos-resnet18.pth photos

# --- torchrun: two processes on this machine (gloo); the same command on GPUs and machines -------
step torchrun torchrun --standalone --nproc-per-node 2 -m simclr pretrain --dataset folder --data-dir photos \
  --image-size 64 --batch-size 128 --epochs 2 --out runs/photos-2ranks
step torchrun-eval simclr linear-eval --run runs/photos-2ranks

# --- data at scale: shards, and the folder index -------------------------------------------------
step shards simclr shards --data-dir photos --out shards --per-shard 1000
step shards-pretrain simclr pretrain --dataset webdataset --data-dir 'shards/shard-{000000..000002}.tar' \
  --image-size 64 --epochs 2 --out runs/photos-shards
echo "transcripts in $WORK/transcripts"
