#!/usr/bin/env bash
# Continue the prior's training campaign on a lent CUDA machine, then measure CUDA speed.
# Here, first:  python models/pack_gpu_data.py        (writes .gpudata/, < 64 MiB)
# On the device (the `run` tool, carry [".gpudata"]):
#   bash models/train_gpu.sh MINUTES
# It resumes models/campaign/flow-prior-h128.ckpt.pt (committed, travels with the tree), trains
# for MINUTES on CUDA in fp32 (faster than bf16 couplings on the H200: benchmarks/results/
# train_speed_cuda.json) at batch 256 (the GPU is launch-bound here: ~2,000 patches/s on an H100
# against ~900 at batch 128), and copies the checkpoint, weights and log to $OUT; copy them back
# into models/campaign/ and commit. Then it times `restorer restore` per preset at batch 256.
set -euo pipefail
MINUTES=${1:-6}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-runs/gpu_out}
CAMPAIGN=${CAMPAIGN:-models/campaign/flow-prior-h128}
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD RESTORER_EVAL_DATA=$PWD/.gpudata/eval  # the package runs from the tree
# The lent image has torch, Pillow, safetensors, OpenCV but not imagecodecs (28 MB, over the carry
# budget); nothing here reads or writes PNG through it, so a stand-in that fails on use suffices.
if ! python3 -c "import imagecodecs" 2>/dev/null; then
  mkdir -p /tmp/shim && printf 'def __getattr__(name):\n    raise ImportError("imagecodecs is not installed here")\n' > /tmp/shim/imagecodecs.py
  export PYTHONPATH=$PYTHONPATH:/tmp/shim
fi
mkdir -p "$OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -m restorer_app.cli train --data .gpudata/train/bsds432 .gpudata/train/urban100 \
  --out $CAMPAIGN.safetensors --resume --init models/flow-prior.safetensors \
  --hidden 128 --batch ${BATCH:-256} --lr 2e-4 --steps 60000 --latent-noise-warmup 1 --device "$DEVICE" \
  --no-mixed-precision --eval-dir .gpudata/eval/kodak24 --eval-every 250 --log-every 25 --checkpoint-every 100 \
  --time-limit $(( MINUTES * 60 )) 2>&1 | tee "$OUT/train.out"
cp $CAMPAIGN.ckpt.pt $CAMPAIGN.safetensors $CAMPAIGN.log.jsonl "$OUT/"
for preset in fast standard best; do
  python3 -m benchmarks.speed --device "$DEVICE" --presets $preset --side ${SPEED_SIDE:-1024} --batching-side 0 --memory \
    --out "$OUT/speed_${DEVICE}_$preset.json" || true  # at most 8 files come back: no extra log
done
