#!/usr/bin/env bash
# CI: `pip install` of the wheel alone gives a complete app (weights, model cards, icons, stylesheet).
#
#   bash packaging/wheel_check.sh            (python3 >= 3.11; reaches the package index for `build`)
#   KEEP=1 bash packaging/wheel_check.sh     keeps its temporary folder (printed) for a look inside
#
# 1. Builds the sdist from the checkout and the wheel from that sdist (`python -m build`, in a
#    throwaway venv), so the wheel proves the sdist complete too.
# 2. Checks both carry exactly the shipped files (restorer_app/shipped.py), identical to the
#    checkout's, and nothing of the training campaign; the wheel is well under 100 MB.
# 3. Installs torch==2.13.0 (the CPU build, as in the README) and the wheel into a clean venv and,
#    from a folder outside the source tree, runs `restorer --version`, `restorer selftest` and a
#    `restorer restore` of a small generated PNG, checking each uses the bundled weights.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/flow-restorer-wheel-check.XXXXXX")"
start=$(date +%s)
step() { echo "wheel_check: $* [$(( $(date +%s) - start )) s]"; }
trap 'if [ -n "${KEEP:-}" ]; then echo "wheel_check: kept $WORK"; else rm -rf "$WORK"; step "removed $WORK"; fi' EXIT
case "$WORK/" in "$ROOT"/*) echo "wheel_check: $WORK is inside the checkout; set TMPDIR elsewhere" >&2; exit 1 ;; esac

# --- 1. build ---------------------------------------------------------------------------------
"$PY" -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install -q build
if ! "$WORK/tools/bin/python" -m build --outdir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1; then
    cat "$WORK/build.log"; exit 1
fi
WHEEL="$(ls "$WORK"/dist/*.whl)"
SDIST="$(ls "$WORK"/dist/*.tar.gz)"
step "built $(basename "$SDIST") and, from it, $(basename "$WHEEL")"

# --- 2. contents --------------------------------------------------------------------------------
"$PY" - "$ROOT" "$WHEEL" "$SDIST" <<'EOF'
import hashlib, runpy, sys, tarfile, zipfile
from pathlib import Path

root, wheel, sdist = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
shipped = runpy.run_path(str(root / "restorer_app" / "shipped.py"))
paths = shipped["shipped_paths"]()
prefix = f"restorer_app/{shipped['SHIPPED_DIR']}/"
digest = lambda data: hashlib.sha256(data).hexdigest()
problems = []

with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    entries = len(names)
    inside = sorted(n for n in names if n.startswith(prefix))
    if inside != sorted(prefix + p for p in paths):
        problems.append(f"wheel: {prefix} holds {inside}, expected {sorted(prefix + p for p in paths)}")
    for p in paths:
        if prefix + p in names and digest(z.read(prefix + p)) != digest((root / p).read_bytes()):
            problems.append(f"wheel: {prefix + p} differs from the checkout's {p}")
with tarfile.open(sdist) as t:
    top = t.getnames()[0].split("/")[0]
    members = {m.name.removeprefix(top + "/"): m for m in t.getmembers() if m.isfile()}
    for p in paths:
        if p not in members:
            problems.append(f"sdist: {p} missing")
        elif digest(t.extractfile(members[p]).read()) != digest((root / p).read_bytes()):
            problems.append(f"sdist: {p} differs from the checkout's")
    names += [f"{sdist.name}:{n}" for n in members]
stray = [n for n in names if "campaign" in n or n.endswith((".jsonl", ".ckpt.pt", ".curves.png", "train_gpu.sh"))]
if stray:
    problems.append(f"training files shipped: {stray}")
size = wheel.stat().st_size
if size >= 100 * 2**20:
    problems.append(f"wheel is {size / 2**20:.1f} MB, not well under 100 MB")
if problems:
    sys.exit("wheel_check: FAIL\n  " + "\n  ".join(problems))
print(f"wheel_check: wheel {size / 2**20:.1f} MB ({size} bytes, {entries} files); wheel and sdist both hold "
      f"the {len(paths)} shipped files, identical to the checkout's, and no training files: " + ", ".join(paths))
EOF

# --- 3. a clean install, used away from the checkout ---------------------------------------------
APP="$WORK/app"
"$PY" -m venv "$APP"
"$APP/bin/pip" install -q torch==2.13.0
"$APP/bin/pip" install -q "$WHEEL"
step "installed torch==2.13.0 and the wheel into a clean venv ($APP)"

mkdir -p "$WORK/run" && cd "$WORK/run"
unset PYTHONPATH RESTORER_MODEL
export QT_QPA_PLATFORM=offscreen RESTORER_HOME="$WORK/home"
VERSION="$("$PY" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$ROOT/pyproject.toml")"

"$APP/bin/python" - "$APP" <<'EOF'
import sys
from pathlib import Path

import restorer_app
from restorer_app.bundle import SHIPPED_ROOT, bundled_file
from restorer_app.shipped import SHIPPED

app = Path(sys.argv[1]).resolve()
package = Path(restorer_app.__file__).resolve()
assert app in package.parents, f"restorer_app imported from {package}, not from the clean venv"
for folder, name in SHIPPED:
    found = bundled_file(folder, name)
    assert found.is_file() and SHIPPED_ROOT in found.parents, f"{folder}/{name}: found {found}, not in {SHIPPED_ROOT}"
print(f"wheel_check: restorer_app from {package.parent}; every shipped file found in {SHIPPED_ROOT}")
EOF

"$APP/bin/restorer" --version | tee "$WORK/version.txt"
grep -qx "restorer $VERSION" "$WORK/version.txt" || { echo "wheel_check: FAIL: --version does not say $VERSION"; exit 1; }
for weights in flow-prior damage-net damage-net-grey damage-segmenter; do
    want="$(sha256sum "$ROOT/models/$weights.safetensors" | cut -c1-12)"
    grep -Eq "sha256 $want  .*/_shipped/models/$weights\.safetensors$" "$WORK/version.txt" \
        || { echo "wheel_check: FAIL: --version does not show the shipped $weights ($want)"; exit 1; }
done

"$APP/bin/restorer" selftest --device cpu

"$APP/bin/python" -c '
import numpy as np
from PIL import Image
y, x = np.mgrid[0:48, 0:64]
rgb = np.stack([x * 4, y * 5, 128 + 60 * np.sin(x / 4.0)], axis=2) + np.random.default_rng(0).normal(0, 12, (48, 64, 3))
Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save("tiny.png")'
"$APP/bin/restorer" restore tiny.png -o tiny-restored.png --preset fast --device cpu -q
"$APP/bin/python" - "$ROOT" <<'EOF'
import hashlib, json, sys
from pathlib import Path

from PIL import Image

record = json.loads(Path("tiny-restored.png.provenance.json").read_text())
model = record["model"]
want = hashlib.sha256((Path(sys.argv[1]) / "models" / "flow-prior.safetensors").read_bytes()).hexdigest()
assert "/_shipped/models/" in model["path"] and model["sha256"] == want, model
assert Image.open("tiny-restored.png").size == (64, 48)
print(f"wheel_check: restore wrote tiny-restored.png (64x48) with the shipped {model['name']} "
      f"(sha256 {model['sha256'][:12]}), {model['path']}")
EOF
step "PASS"
