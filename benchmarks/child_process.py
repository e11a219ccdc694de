"""Run a ``restorer`` command in a child process: its wall time and peak resident memory (``wait4``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def run_restorer(args: list[str], env: dict | None = None, quiet: bool = True) -> tuple[float, float]:
    """(seconds, peak resident GB) of ``restorer *args``; SystemExit when it fails."""
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "restorer_app.cli", *args], env=env,
                             stdout=subprocess.DEVNULL if quiet else None)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"restorer {' '.join(args[:2])} exited with {code}")
    return seconds, usage.ru_maxrss / 1024**2
