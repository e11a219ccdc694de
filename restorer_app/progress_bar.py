"""A terminal progress line for patches: done/total (fractional), speed, ETA and elapsed time.

Fed by :meth:`PatchProgressBar.step` with the pipeline's per-step ``StepProgress``, the count
moves within a batch and the ETA is the pipeline's measured one (seconds per optimiser step x
steps left), shown as "estimating" until the first steps have been timed. Fed only by
:meth:`update` (one call per finished patch) it falls back to patches per second since the
start, counting only patches computed in this run (patches resumed from a store are instant and
would make the rate look better than it is).
"""

from __future__ import annotations

import sys
import time

REDRAW_EVERY_S = 0.2


class PatchProgressBar:
    def __init__(self, label: str, stream=sys.stderr, width: int = 30, clock=time.monotonic):
        self.label, self.stream, self.width, self.clock = label, stream, width, clock
        self.started = clock()
        self.computed = 0
        self.last_draw = 0.0  # 0 until something was drawn
        self.stepping = False  # step() feeds us: update() only counts
        self.finished = False
        self._shown = 0

    def update(self, done: int, total: int, from_store: bool) -> None:
        """One finished patch (``PatchProgress``)."""
        if not from_store:
            self.computed += 1
        if self.stepping:
            return
        elapsed = self.clock() - self.started
        rate = self.computed / elapsed if elapsed > 0 and self.computed else None
        eta = (total - done) / rate if rate else None
        self._draw(done, total, rate, eta)

    def step(self, progress) -> None:
        """A ``StepProgress`` (after every optimiser step and every batch end)."""
        self.stepping = True
        self._draw(progress.done, progress.total, progress.patches_per_s, progress.eta_s)

    def _draw(self, done: float, total: int, rate: float | None, eta: float | None) -> None:
        if self.finished:
            return
        now = self.clock()
        final = done >= total
        if not final and self.last_draw and now - self.last_draw < REDRAW_EVERY_S:
            return
        self.last_draw = now
        elapsed = now - self.started
        filled = int(self.width * min(done, total) / max(total, 1))
        bar = "#" * filled + "-" * (self.width - filled)
        count = f"{done:.1f}/{total}" if self.stepping else f"{int(done)}/{total}"
        speed = f"{rate:.2f} patches/s" if rate else "-- patches/s"
        eta_text = "00:00" if final else (_clock(eta) if eta is not None else "estimating")
        line = f"{self.label} [{bar}] {count} patches  {speed}  ETA {eta_text}  elapsed {_clock(elapsed)}"
        self.stream.write("\r" + line.ljust(self._shown))
        self._shown = len(line)
        if final:
            self.finished = True
            self.stream.write(f"  done in {_clock(elapsed)}\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"
