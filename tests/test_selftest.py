"""``restorer selftest`` as a user runs it: a fresh process, the bundled model, the real window
(offscreen). The packaged build runs the same command, so this is its reference behaviour."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

CHECKS = ["model", "restore", "detector", "imaging", "queue", "window"]
HAS_GUI = importlib.util.find_spec("restorer_app.gui.main_window") is not None


@pytest.mark.slow
def test_selftest_passes_on_cpu(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "RESTORER_HOME": str(tmp_path / "home")}
    env.pop("RESTORER_MODEL", None)  # the check is about the bundled model
    done = subprocess.run([sys.executable, "-m", "restorer_app.cli", "selftest", "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=500)
    lines = {line.split()[1]: line for line in done.stdout.splitlines() if line.startswith(("PASS", "FAIL"))}
    assert list(lines) == CHECKS, done.stdout + done.stderr
    for name in CHECKS if HAS_GUI else CHECKS[:-1]:
        assert lines[name].startswith("PASS"), lines[name]
        assert " s  " in lines[name]  # the timing column
    assert "PSNR" in lines["restore"] and "bits/dim" in lines["model"]
    if HAS_GUI:
        assert done.returncode == 0, done.stdout + done.stderr
        assert "all 6 checks passed" in done.stdout
