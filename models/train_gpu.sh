#!/usr/bin/env bash
# Continue the prior's training campaigns on a lent CUDA machine.
# Here, first:  python models/pack_gpu_data.py        (writes .gpudata/, sized to the transfer limit)
# On the device (the `run` tool, carry [".gpudata"]):
#   bash models/train_gpu.sh MINUTES
# Two runs share the GPU for MINUTES, side by side (each is launch-bound at batch 256, so the
# second costs the first little):
#  - H=128 resumes models/campaign/flow-prior-h128.ckpt.pt (committed, travels with the tree),
#    fp32 (faster than bf16 couplings on Hopper: benchmarks/results/train_speed_cuda.json),
#    batch 256, lr LR128 (default 5e-5; at 2e-4, 1,700 GPU steps from the bundled point raise its
#    held-out bits/dim from 3.3254 to 3.3420);
#  - H=256 (the paper's width) continues models/campaign/flow-prior-h256.safetensors
#    when there is one (fresh Adam state: its checkpoint is over the transfer budget and stays
#    out of git), else starts from scratch at lr 1e-3. WIDE=0 skips it. A continuation counts
#    its steps and the log's patches from 0 again (its lines follow the earlier ones); the
#    weights' metadata adds the earlier patches.
# $OUT receives (at most 8 files, 16 MB each): the H=128 checkpoint, weights and log, the H=256
# weights and log, the H=256 checkpoint in 15 MB parts, and logs.tar (training output, GPU name,
# the CUDA speed of `standard` with each model). Copy the first five into models/campaign/.
set -euo pipefail
MINUTES=${1:-6}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-runs/gpu_out}
CAMPAIGN=models/campaign/flow-prior
WIDE=${WIDE:-1}
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD RESTORER_EVAL_DATA=$PWD/.gpudata/eval  # the package runs from the tree
# The lent image has torch, Pillow, safetensors, OpenCV but not imagecodecs (28 MB, over the carry
# budget); nothing here reads or writes PNG through it, so a stand-in that fails on use suffices.
if ! python3 -c "import imagecodecs" 2>/dev/null; then
  mkdir -p /tmp/shim && printf 'def __getattr__(name):\n    raise ImportError("imagecodecs is not installed here")\n' > /tmp/shim/imagecodecs.py
  export PYTHONPATH=$PYTHONPATH:/tmp/shim
fi
LOGS=$(mktemp -d)
mkdir -p "$OUT"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$LOGS/gpu.txt"
train() {  # hidden lr extra-args...
  local hidden=$1 lr=$2; shift 2
  python3 -m restorer_app.cli train --data .gpudata/train/bsds432 .gpudata/train/urban100 \
    --out $CAMPAIGN-h$hidden.safetensors --resume --hidden "$hidden" --batch ${BATCH:-256} --lr "$lr" \
    --steps 60000 --device "$DEVICE" --no-mixed-precision --eval-dir .gpudata/eval/kodak24 \
    --eval-every 250 --log-every 25 --checkpoint-every 100 --time-limit $(( MINUTES * 60 )) "$@" \
    > "$LOGS/train-h$hidden.out" 2>&1
}
train 128 ${LR128:-5e-5} --init models/flow-prior.safetensors --latent-noise-warmup 1 &
narrow=$!
if [ "$WIDE" = 1 ]; then
  if [ -f $CAMPAIGN-h256.safetensors ]; then
    train 256 2e-4 --init $CAMPAIGN-h256.safetensors --latent-noise-warmup 1 &
  else
    train 256 1e-3 &
  fi
  wide=$!
fi
status=0
wait $narrow || status=$?
tail -n 4 "$LOGS/train-h128.out"
cp $CAMPAIGN-h128.ckpt.pt $CAMPAIGN-h128.safetensors $CAMPAIGN-h128.log.jsonl "$OUT/"
if [ "$WIDE" = 1 ]; then
  wait $wide || status=$?
  tail -n 4 "$LOGS/train-h256.out"
  cp $CAMPAIGN-h256.safetensors $CAMPAIGN-h256.log.jsonl "$OUT/"
  split -b 15M -d $CAMPAIGN-h256.ckpt.pt "$OUT/flow-prior-h256.ckpt.pt.part"
fi
for model in $CAMPAIGN-h128.safetensors $( [ "$WIDE" = 1 ] && echo $CAMPAIGN-h256.safetensors ); do
  name=$(basename "$model" .safetensors)
  RESTORER_MODEL=$model python3 -m benchmarks.speed --device "$DEVICE" --presets standard --side ${SPEED_SIDE:-1024} \
    --batching-side 0 --memory --out "$LOGS/speed_${DEVICE}_standard_$name.json" > "$LOGS/speed_$name.out" 2>&1 || true
done
tar -C "$LOGS" -cf "$OUT/logs.tar" .
ls -la "$OUT"
exit $status
