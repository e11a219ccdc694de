#!/usr/bin/env bash
# CI: install the build extra (PyInstaller) into the active venv, then build and check the bundle.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -e ".[build]"
bash packaging/build.sh
