#!/usr/bin/env bash
# Issue 41's CUDA checks in one run on a lent device (`run` tool, carry [".gpudata-checks"]):
#   bash benchmarks/cuda_checks.sh
# Here, first:  python models/pack_gpu_data.py --checks      (writes .gpudata-checks/: the photos,
# with platformdirs and imagecodecs' PNG codec, which the device's Python lacks; PySide6 too, so
# the selftest's window check fails there and its other five must pass). About 10 minutes of device time at
# most (the steps' limits add up to 560 s): run it with timeout_s 600.
# In order, each step bounded so that one failing or running long still leaves the others' results:
# 1. `restorer selftest --device cuda`;
# 2. whole-image `standard` (done-when: <= 2 s per megapixel) on a 1024 and a 2048-px photo with the
#    batch sized by the card's memory, and on the 2048-px one with 256 tiles a batch (the fixed
#    GPU batch before): what the sizing gains;
# 3. the overnight queue (`restorer queue run` in a child process, the --device path of the whole
#    command: reading, detection, solving, writing) on one MP-megapixel scan (default 6, so that
#    both runs fit the call; seconds per megapixel carry to 24) with its true mask and with
#    --mask auto, `standard`.
# $OUT receives the GPU's name, the result JSONs and the log. Checked on the CPU with small sizes:
#   DEVICE=cpu SIDE=128 MP=0.3 OUT=runs/cuda_checks bash benchmarks/cuda_checks.sh
# (SIDE replaces 1024 and 2048 by one small side.)
set -uo pipefail
OUT=${OUT:-runs/cuda_checks}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/.gpudata-checks/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
export RESTORER_EVAL_DATA=${RESTORER_EVAL_DATA:-$PWD/.gpudata-checks/eval} RESTORER_HOME=${RESTORER_HOME:-/tmp/restorer-home}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
status=0
step() {  # seconds, then the command; a failure is logged and the next step still runs
  local limit=$1; shift
  echo "== $*" | tee -a "$OUT/log.txt"
  timeout "$limit" "$@" 2>&1 | tee -a "$OUT/log.txt"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || { echo "== exit $rc" | tee -a "$OUT/log.txt"; status=1; }
}
step 60 python3 -m restorer_app.cli selftest --device "$DEVICE"
speed() {  # side, label, extra arguments
  step 120 python3 -m benchmarks.speed --device "$DEVICE" --presets standard --side "${SIDE:-$1}" --batching-side 0 \
    --memory --out "$OUT/speed_${DEVICE}_standard_$2.json" "${@:3}"
}
speed 1024 1024
speed 2048 2048
speed 2048 2048_batch256 --batch-tiles 256
step "${OVERNIGHT_LIMIT:-140}" python3 -m benchmarks.overnight --device "$DEVICE" --megapixels "${MP:-6}" --scans 1 \
  --presets standard --masks truth auto --work /tmp/overnight --tag "${DEVICE}_checks"
cp benchmarks/results/overnight_"${DEVICE}"_checks.json "$OUT/" 2>/dev/null
exit $status
