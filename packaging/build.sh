#!/usr/bin/env bash
# Build the packaged app (PyInstaller onedir) and check it: frozen selftest, size, start-up time.
#
#   packaging/build.sh                     -> build/flow-restorer/flow-restorer
#   RESTORER_BUILD_DIR=/tmp/x packaging/build.sh
#
# Run it inside the venv the app is installed in (pip install -e ".[build]"). The bundle takes the
# torch of that venv: the CPU build by default (README); for an NVIDIA build, first install a CUDA
# torch in the build venv, e.g.
#   pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128
# and the same script gives a bundle that restores on the GPU (with --device auto or cuda).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$(mkdir -p "${RESTORER_BUILD_DIR:-$ROOT/build}" && cd "${RESTORER_BUILD_DIR:-$ROOT/build}" && pwd)"
APP="$OUT/flow-restorer"

start=$(date +%s)
python -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$OUT" --workpath "$OUT/pyinstaller-work" "$ROOT/packaging/flow_restorer.spec"
# libtorch carries its full static symbol table (~90 MB) that only a debugger reads; the dynamic
# symbols the loader needs stay. Linux only: other platforms' strip tools mean other things.
if [ "$(uname)" = Linux ] && command -v strip >/dev/null; then
    strip --strip-unneeded "$APP"/_internal/torch/lib/libtorch*.so
fi
echo "build: $APP in $(( $(date +%s) - start )) s (torch $(python -c 'import torch; print(torch.__version__)'))"

# Check the bundle away from the source tree, so nothing can come from it by accident.
cd "$OUT"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
export RESTORER_HOME="$OUT/selftest-home"
unset RESTORER_MODEL
"$APP/flow-restorer" selftest --device "${RESTORER_SELFTEST_DEVICE:-auto}"
echo "size: $(du -sh "$APP" | cut -f1) ($APP)"
RESTORER_EXIT_AFTER_SHOW=1 "$APP/flow-restorer"
