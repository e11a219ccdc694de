"""A terminal progress line for patches: done/total, rate and an honest ETA.

The ETA uses only patches computed in this run (patches resumed from a store are instant and
would make the rate look better than it is).
"""

from __future__ import annotations

import sys
import time


class PatchProgressBar:
    def __init__(self, label: str, stream=sys.stderr, width: int = 30):
        self.label, self.stream, self.width = label, stream, width
        self.started = time.monotonic()
        self.computed = 0
        self.last_draw = 0.0

    def update(self, done: int, total: int, from_store: bool) -> None:
        if not from_store:
            self.computed += 1
        now = time.monotonic()
        if done < total and now - self.last_draw < 0.2:
            return
        self.last_draw = now
        elapsed = now - self.started
        rate = self.computed / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else float("nan")
        filled = int(self.width * done / max(total, 1))
        bar = "#" * filled + "-" * (self.width - filled)
        eta_text = _clock(eta) if eta == eta else "--:--"
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total} patches  {rate:.2f}/s  ETA {eta_text}")
        if done >= total:
            self.stream.write(f"  done in {_clock(elapsed)}\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"
