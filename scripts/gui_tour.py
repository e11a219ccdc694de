"""Drive the desktop app offscreen through a whole round and save a screenshot at each step.

open a scan -> paint damage -> queue three scans -> cancel one -> quit mid-job -> restart ->
resume -> compare before/after -> open the outputs. Uses a tiny untrained flow, a shortened
'fast' schedule and small synthetic scans so it runs in about a minute on a CPU; the pictures
show the workflow, not restoration quality. Also measures event-loop lateness (10 ms timer)
while restorations run (not during the deliberate wait for the batch at quit) and writes it
to latency.json beside the screenshots.

    python scripts/gui_tour.py [FOLDER]        (default: docs/tour/)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QPoint, QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from restorer_app.flow.glow import FlowConfig, Glow  # noqa: E402
from restorer_app.flow.weights import save_model  # noqa: E402
from restorer_app.restore import settings as restore_settings  # noqa: E402

QUICK = {"stages": [(1, 3), (2, 3), (3, 6)], "lr": 1e-2, "fp32_tail": 3}


def tiny_model(path: Path) -> None:
    torch.manual_seed(0)
    model = Glow(FlowConfig(hidden=8, patch_size=16, levels=3, steps_per_level=1), seed=0)
    model.train()
    with torch.no_grad():
        model.encode(torch.rand(16, 3, 16, 16) - 0.5)
    save_model(model.eval(), path, {"training_data": "none: untrained tiny flow for the GUI tour"})


def scan(path: Path, seed: int, height=96, width=128) -> Path:
    """A smooth synthetic photo with a bright scratch and noise, as an 8-bit PNG."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([x / width, y / height, 0.5 + 0.3 * np.sin(x / (6 + seed)) * np.cos(y / 7)], axis=2)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(6, 20)
        image[(y - cy) ** 2 + (x - cx) ** 2 < r**2] = rng.uniform(0, 1, 3)
    image += rng.normal(0, 0.03, image.shape)
    image[np.abs(y - 0.6 * x - 10 - 5 * seed) < 1.5] = 0.97
    Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8)).save(path)
    return path


class Tour:
    def __init__(self, shots: Path, work: Path):
        self.shots, self.work, self.step = shots, work, 0
        self.window = None

    def shot(self, name: str) -> None:
        self.pump(0.15)
        self.step += 1
        path = self.shots / f"{self.step:02d}-{name}.png"
        self.window.grab().save(str(path))
        print(f"  {path.name}")

    @staticmethod
    def pump(seconds: float) -> None:
        QTest.qWait(int(seconds * 1000))

    def until(self, condition, timeout=120.0, what="") -> None:
        end = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > end:
                raise SystemExit(f"gui_tour: timed out waiting for {what}")
            QTest.qWait(20)

    def new_window(self):
        from restorer_app.gui.main_window import MainWindow

        self.window = MainWindow()
        self.window.resize(1280, 860)
        self.window.show()
        self.pump(0.2)
        return self.window

    def state(self, job_id):
        return self.window.queue.get(job_id).state


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(ROOT / "docs" / "tour"))
    args = parser.parse_args(argv)
    shots = Path(args.folder)
    shots.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="restorer-tour-"))
    os.environ["RESTORER_HOME"] = str(work / "home")
    os.environ["RESTORER_MODEL"] = str(work / "tiny.safetensors")
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(work / "settings"))
    restore_settings.PRESETS["fast"] = QUICK
    tiny_model(work / "tiny.safetensors")
    inputs = [scan(work / f"scan-{i}.png", i) for i in (1, 2, 3)]
    (work / "restored").mkdir()

    from restorer_app.gui.app import create_app
    from restorer_app.gui.latency import LatencyProbe
    from restorer_app.gui.preferences import Preferences
    from restorer_app.jobs.queue import JobState

    create_app()
    prefs = Preferences()
    prefs.preset, prefs.threads, prefs.batch_size, prefs.output_dir = "fast", 1, 8, str(work / "restored")
    prefs.sync()
    tour = Tour(shots, work)
    probe = LatencyProbe(10)
    started = time.monotonic()
    print(f"tour in {work}; screenshots in {shots}")

    win = tour.new_window()
    tour.shot("empty-window")
    doc = win.open_file(inputs[0])
    tour.shot("scan-opened")
    canvas = doc.canvas
    canvas.fit()
    doc.mask.radius = 3
    for a, b in (((0.2, 0.3), (0.5, 0.5)), ((0.6, 0.2), (0.8, 0.7))):
        h, w = doc.scan.pixels.shape[:2]
        to_screen = lambda p: QPoint(*(int(v) for v in ((p[0] * w - canvas.origin.x()) * canvas.zoom,  # noqa: E731
                                                       (p[1] * h - canvas.origin.y()) * canvas.zoom)))
        QTest.mousePress(canvas, Qt.LeftButton, pos=to_screen(a))
        for t in np.linspace(0, 1, 12):
            QTest.mouseMove(canvas, to_screen((a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))))
        QTest.mouseRelease(canvas, Qt.LeftButton, pos=to_screen(b))
    tour.shot("damage-painted")

    probe.start()
    jobs = [win.enqueue_current()]
    for path in inputs[1:]:
        win.open_file(path)
        jobs.append(win.enqueue_current())
    win.tabs.setCurrentIndex(0)
    tour.until(lambda: win.queue.get(jobs[0]).patches_done >= 16, what="first patches")
    tour.shot("three-queued-first-running")

    win.panel.refresh()
    win.panel.select(jobs[1])
    win.panel.buttons["Cancel"].click()
    tour.until(lambda: tour.state(jobs[1]) is JobState.CANCELLED, what="cancel")
    tour.shot("second-cancelled")

    tour.until(lambda: tour.state(jobs[0]) is JobState.DONE, what="first job")
    tour.until(lambda: win.queue.get(jobs[2]).patches_done >= 16, what="third job running")
    tour.shot("third-running-before-quit")
    probe.stop()  # closing waits for the batch on purpose; that wait is not event-loop lag
    win.close()
    assert tour.state(jobs[2]) is JobState.PAUSED, tour.state(jobs[2])
    print(f"  quit: job {jobs[2]} is {tour.state(jobs[2])} after {win.queue.get(jobs[2]).patches_done} patches")

    win = tour.new_window()
    probe.start(keep=True)
    win.open_file(inputs[2])
    tour.shot("restarted-queue-still-there")
    win.panel.select(jobs[2])
    win.panel.buttons["Resume"].click()
    tour.until(lambda: win.busy, 10, "worker start")
    tour.shot("resumed-from-stored-patches")
    tour.until(lambda: tour.state(jobs[2]) is JobState.DONE and not win.busy, what="resumed job")
    latency = probe.stop()
    tour.shot("all-finished")

    win.panel.select(jobs[0])
    win.panel.buttons["Open output"].click()
    compare = win.current().compare
    compare.canvas.fit()
    compare.slider.setValue(500)
    tour.shot("compare-before-after")
    compare.canvas.set_view(4.0, 40, 40)
    tour.shot("compare-zoomed-in-sync")
    for job_id in (jobs[0], jobs[2]):
        win.open_file(win.queue.get(job_id).output_path)
    tour.shot("outputs-opened")
    win.close()

    latency["seconds"] = round(time.monotonic() - started, 1)
    latency["note"] = "tiny flow, 1 CPU thread for the engine, batches of 8 patches, offscreen Qt"
    (shots / "latency.json").write_text(json.dumps(latency, indent=2) + "\n")
    print(f"event-loop lateness during restoration: max {latency['max_ms']:.1f} ms, "
          f"p95 {latency['p95_ms']:.1f} ms over {latency['ticks']} ticks of 10 ms")
    print(f"tour finished in {latency['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
