"""Event-loop responsiveness probe: a 10 ms timer that records how late each tick fires.

A long restoration must never freeze the window; this measures it (max and p95 lateness).
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer


class LatencyProbe(QObject):
    def __init__(self, interval_ms: int = 10, parent=None):
        super().__init__(parent)
        self.interval = interval_ms / 1000.0
        self.late_ms: list[float] = []
        self._timer = QTimer(self, interval=interval_ms, timerType=Qt.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._last = None

    def start(self, keep: bool = False) -> None:
        """Start measuring; ``keep`` adds to the earlier samples (e.g. across a restart)."""
        if not keep:
            self.late_ms.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> dict:
        self._timer.stop()
        return self.summary()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.late_ms.append(max(0.0, (now - self._last - self.interval) * 1000.0))
        self._last = now

    def summary(self) -> dict:
        late = np.asarray(self.late_ms or [0.0])
        return {"ticks": len(self.late_ms), "interval_ms": self.interval * 1000.0,
                "max_ms": float(late.max()), "p95_ms": float(np.percentile(late, 95)),
                "mean_ms": float(late.mean())}
