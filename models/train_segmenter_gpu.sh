#!/usr/bin/env bash
# Train the damage segmenter on a lent CUDA machine (issue 40: the CPU stages gain 0-2.5 points
# of defects left visible each; a GPU with 16 cores draws the simulator's examples ~15x faster).
# Here, first:  python models/pack_gpu_data.py        (writes .gpudata/, the debris shapes included)
# On the device (the `run` tool, carry [".gpudata"]):
#   bash models/train_segmenter_gpu.sh MINUTES
# From the bundled weights, batch BATCH (default 32) of 256-px crops of the BSDS432 photos (the
# packed Urban100 crops are 160 px, too small for the segmenter's 256-px examples), the examples
# drawn by all cores but two in DataLoader workers, bf16 forward, lr LR (default 5e-4), STEPS steps
# (default 8000: the cosine's length) or MINUTES, whichever ends first. Extra arguments go to the
# trainer (--class-weights, --plate-crack-share). $OUT receives the weights, their log and the GPU
# name; score them here with `python -m benchmarks.real_damage --weights W` before bundling.
set -euo pipefail
MINUTES=${1:-8}; shift || true
OUT=${OUT:-runs/gpu_out}
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD RESTORER_DAMAGE_SHAPES=$PWD/.gpudata/damage_shapes
mkdir -p "$OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
WORKERS=$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))
python3 -m restorer_app.training.segmenter --data .gpudata/train/bsds432 \
  --out "$OUT/damage-segmenter.gpu.safetensors" --init models/damage-segmenter.safetensors \
  --steps ${STEPS:-8000} --batch ${BATCH:-32} --lr ${LR:-5e-4} --seed ${SEED:-40} --threads 2 \
  --workers $WORKERS --bf16 --device ${DEVICE:-cuda} --time-limit $(( MINUTES * 60 )) --save-every 500 "$@"
ls -la "$OUT"
