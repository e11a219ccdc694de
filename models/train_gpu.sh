#!/usr/bin/env bash
# Train the bundled prior and the comparison models side by side on one CUDA GPU, after a short
# training-speed benchmark. Used on a lent H200/H100 (see MODEL_CARD.md): the data travel in
# .gpudata/ (BSDS432 as-is, Urban100 re-encoded as JPEG q90 to fit the transfer limit, 8 Kodak
# images for held-out bits/dim during training).
# Usage: bash models/train_gpu.sh SECONDS OUTDIR
set -u
LIMIT=${1:-400}
OUTDIR=${2:-runs/gpu}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
mkdir -p "$OUTDIR/runs"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUTDIR/gpu.txt"
python3 benchmarks/train_speed.py --device cuda --seconds 4 --batches 128 --out "$OUTDIR/train_speed_cuda.json" \
  2>&1 | tee "$OUTDIR/train_speed_cuda.txt"
DATA=".gpudata/train/bsds432 .gpudata/train/urban100"
COMMON="--device cuda --batch 128 --steps 12000 --eval-dir .gpudata/kodak8 --eval-every 500 --log-every 100 --checkpoint-every 1000 --time-limit $LIMIT"
train() {  # name, extra args
  local name=$1; shift
  mkdir -p "$OUTDIR/runs/$name"
  python3 -m restorer_app.cli train --data $DATA --out "$OUTDIR/runs/$name/$name.safetensors" $COMMON "$@" \
    > "$OUTDIR/runs/$name/train.out" 2>&1 &
}
train h128 --hidden 128
train h256 --hidden 256
train h128k8 --hidden 128 --steps-per-level 8
train h64 --hidden 64
train h64-nll --hidden 64 --w-latent-noise 0 --w-autoencoder 0
train h64-nll-ln --hidden 64 --w-autoencoder 0
train h64-nll-ae --hidden 64 --w-latent-noise 0
wait
tail -n 2 "$OUTDIR"/runs/*/train.out
