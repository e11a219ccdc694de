"""Speed and ETA of a running job from its patch counts (pure Python, like chaiNNer's progress
controller). Patches arrive in bursts, one batch at a time, so the speed is the average since
the tracker started, not the gap between two patches; patches read back from the store on a
resume count as progress but not as speed."""

from __future__ import annotations

import time

WARM_UP_S = 0.5  # no speed shown before this much time has passed


class ProgressTracker:
    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._start = clock()
        self._from_store = 0
        self.done = self.total = 0

    def update(self, done: int, total: int, from_store: bool = False) -> None:
        if from_store:
            self._from_store += max(0, done - self.done)
        self.done, self.total = done, total

    @property
    def rate(self) -> float | None:
        """Computed patches per second, None until known."""
        elapsed = self._clock() - self._start
        computed = self.done - self._from_store
        return computed / elapsed if elapsed >= WARM_UP_S and computed > 0 else None

    @property
    def eta_s(self) -> float | None:
        rate = self.rate
        if not rate or self.total <= self.done:
            return None
        return (self.total - self.done) / rate

    def describe(self) -> tuple[str, str]:
        """("12.3 patches/s", "4 min 10 s") for the queue table; blanks until known."""
        rate, eta = self.rate, self.eta_s
        return (f"{rate:.1f} patches/s" if rate else ""), ("" if eta is None else format_duration(eta))


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
