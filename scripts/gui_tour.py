"""Drive the desktop app offscreen through a whole round and save a screenshot at each step.

open a scratched scan -> Detect damage -> correct with the brush -> queue three scans (repair
the marked damage only; a noisy scan cleaned everywhere) -> cancel one -> quit mid-job ->
restart -> resume -> compare before/after -> show the changes -> the add-folder dialog -> open
the outputs. Uses the bundled model (models/flow-prior.safetensors, the default) with the
'fast' preset on small crops (192x192, 192x112) of McMaster18 photos, read at run time from
../shared/data/eval/mcmaster18/ (never copied into the project) and given synthetic scratches,
dust and noise; about two minutes on one CPU thread. Also measures event-loop lateness (10 ms
timer) while restorations run (not during the deliberate wait for the batch at quit) and
writes it to latency.json beside the screenshots.

    python scripts/gui_tour.py [FOLDER] [--photos DIR]      (default: docs/tour/)
"""

from __future__ import annotations

import argparse
import io
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
from PIL import Image, ImageDraw  # noqa: E402
from PySide6.QtCore import QEventLoop, QPoint, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QDockWidget  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "data" / "eval" / "mcmaster18"
CROP = 192
#: (photo, top, left, height) of each scan's crop (192 wide): gerberas, an apple, a red barn.
CROPS = [("9.tif", 40, 40, 192), ("15.tif", 150, 250, 192), ("18.tif", 100, 300, 112)]


def crop(photos: Path, name: str, top: int, left: int, height: int) -> Image.Image:
    path = photos / name
    if not path.is_file():
        raise SystemExit(f"gui_tour: {path}: photo not found (pass --photos DIR with McMaster18's TIFFs)")
    with Image.open(path) as image:
        return image.convert("RGB").crop((left, top, left + CROP, top + height))


def scratched(image: Image.Image, seed: int, scratches: int = 3, dust: int = 8):
    """Light scratches (thin wavering lines), a dark hair and dust specks, as on an old print;
    returns the image and the scratches' polylines (image coordinates)."""
    rng = np.random.default_rng(seed)
    image = image.copy()
    draw = ImageDraw.Draw(image)
    lines = []
    for i in range(scratches):
        x0, x1 = rng.uniform(0.25, 0.75, 2) * CROP
        top = rng.uniform(0.05, 0.4)
        ys = np.linspace(top, top + rng.uniform(0.3, 0.55), 12) * CROP
        xs = np.linspace(x0, x1, 12) + rng.normal(0, 1.5, 12).cumsum()
        shade = int(rng.uniform(225, 250))
        lines.append([(float(x), float(y)) for x, y in zip(xs, ys)])
        draw.line(lines[-1], fill=(shade, shade, shade - 8), width=2 if i == 0 else 1)
    t = np.linspace(0, 1, 20)
    hx, hy = rng.uniform(0.2, 0.8, 2) * CROP
    draw.line(list(zip(hx + 40 * t + 6 * np.sin(7 * t), hy + 25 * np.sin(3 * t))), fill=(25, 22, 20), width=1)
    for _ in range(dust):
        x, y, r = rng.uniform(0.2, 0.8) * CROP, rng.uniform(0.2, 0.8) * CROP, rng.uniform(0.8, 2.2)
        tone = (235, 232, 225) if rng.random() < 0.5 else (30, 28, 26)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tone)
    return image, lines


def noisy(image: Image.Image, seed: int, sigma: float = 12.0) -> Image.Image:
    """Film-grain-like noise (sigma in 8-bit levels) and a JPEG round trip at quality 60."""
    rng = np.random.default_rng(seed)
    pixels = np.asarray(image, np.float32) + rng.normal(0, sigma, (image.height, image.width, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8)).save(buffer, format="JPEG", quality=60)
    buffer.seek(0)
    with Image.open(buffer) as jpeg:
        return jpeg.convert("RGB")


def make_scans(photos: Path, work: Path) -> tuple[list[Path], list]:
    """Three 8-bit PNG scans in ``work``: two scratched, one noisy (to be cleaned everywhere);
    also the first scan's scratches."""
    paths, first_scratches = [], []
    for i, (name, top, left, height) in enumerate(CROPS):
        image = crop(photos, name, top, left, height)
        if i == 2:
            image = noisy(image, i)
        else:
            image, lines = scratched(image, i + 1)
            first_scratches = first_scratches or lines
        paths.append(work / f"scan-{i + 1}.png")
        image.save(paths[-1])
    return paths, first_scratches


class Tour:
    def __init__(self, shots: Path, work: Path):
        self.shots, self.work, self.step = shots, work, 0
        self.window = None

    def shot(self, name: str, widget=None) -> None:
        self.pump(0.15)
        self.step += 1
        path = self.shots / f"{self.step:02d}-{name}.png"
        (widget or self.window).grab().save(str(path))
        print(f"  {path.name}  ({time.monotonic() - STARTED:.0f} s)")

    @staticmethod
    def pump(seconds: float) -> None:
        """Run the event loop for a while. Not QTest.qWait: it holds the GIL while it waits,
        which starved the restoration thread about 8x (app.exec and QEventLoop.exec release it)."""
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    def until(self, condition, timeout=300.0, what="") -> None:
        end = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > end:
                raise SystemExit(f"gui_tour: timed out waiting for {what}")
            self.pump(0.02)

    def new_window(self):
        from restorer_app.gui.main_window import MainWindow

        self.window = MainWindow()
        self.window.resize(1280, 860)
        self.window.show()
        dock = self.window.findChild(QDockWidget, "queue")
        self.window.resizeDocks([dock], [230], Qt.Vertical)  # more room for the picture
        self.pump(0.2)
        return self.window

    def state(self, job_id):
        return self.window.queue.get(job_id).state

    def stroke(self, doc, points, erase=False) -> None:
        """Drag the brush (or, with ``erase``, Alt for the eraser) through image points."""
        canvas = doc.canvas

        def screen(p):
            return QPoint(int((p[0] - canvas.origin.x()) * canvas.zoom), int((p[1] - canvas.origin.y()) * canvas.zoom))

        modifier = Qt.AltModifier if erase else Qt.NoModifier
        QTest.mousePress(canvas, Qt.LeftButton, modifier, screen(points[0]))
        for a, b in zip(points, points[1:]):
            for t in np.linspace(0, 1, 8)[1:]:
                QTest.mouseMove(canvas, screen((a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))))
        QTest.mouseRelease(canvas, Qt.LeftButton, modifier, screen(points[-1]))


STARTED = time.monotonic()


def main(argv=None) -> int:
    global STARTED
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(ROOT / "docs" / "tour"))
    parser.add_argument("--photos", default=str(PHOTOS), help="folder with McMaster18's TIFFs (default: %(default)s)")
    args = parser.parse_args(argv)
    shots = Path(args.folder)
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("[0-9][0-9]-*.png"):  # a shorter tour must not leave stale steps behind
        old.unlink()
    work = Path(tempfile.mkdtemp(prefix="restorer-tour-"))
    os.environ["RESTORER_HOME"] = str(work / "home")
    os.environ.pop("RESTORER_MODEL", None)  # the bundled model
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(work / "settings"))
    inputs, scratches = make_scans(Path(args.photos), work)
    (work / "restored").mkdir()

    from restorer_app.gui.app import create_app
    from restorer_app.gui.latency import LatencyProbe
    from restorer_app.gui.preferences import Preferences
    from restorer_app.gui.restore_options import AddFolderDialog
    from restorer_app.jobs.queue import JobState

    create_app()
    prefs = Preferences()
    prefs.preset, prefs.threads, prefs.batch_size, prefs.output_dir = "fast", 1, 3, str(work / "restored")
    prefs.sync()
    tour = Tour(shots, work)
    probe = LatencyProbe(10)
    STARTED = time.monotonic()
    print(f"tour in {work}; screenshots in {shots}")

    win = tour.new_window()
    tour.shot("empty-window")
    doc = win.open_file(inputs[0])
    doc.canvas.fit()
    tour.shot("scratched-scan-opened")

    win.actions_by_name["detect"].trigger()
    tour.until(lambda: not win._detecting, 120, "damage detection")
    found = int(doc.mask.mask.sum())
    tour.shot("damage-detected")
    print(f"  detector marked {found} of {doc.mask.mask.size} pixels")

    doc.mask.radius = 2.5  # the archivist goes over the widest scratch with the brush, to be sure
    marks = scratches[0][:7]
    tour.stroke(doc, marks)
    tour.shot("damage-corrected-with-the-brush")

    probe.start()
    jobs = [win.enqueue_current()]
    second = win.open_file(inputs[1])
    win.detect_damage()
    tour.until(lambda: not win._detecting, 120, "damage detection")
    jobs.append(win.enqueue_current())
    win.open_file(inputs[2])  # noisy, nothing marked: cleaned everywhere
    jobs.append(win.enqueue_current())
    assert second is not None and None not in jobs, win.last_error
    assert [win.queue.get(j).settings["scope"] for j in jobs] == ["mask", "mask", "image"]
    win.tabs.setCurrentIndex(0)
    tour.until(lambda: win.queue.get(jobs[0]).patches_done >= 3, what="first patches")
    tour.shot("three-queued-first-running")

    win.panel.refresh()
    win.panel.select(jobs[1])
    win.panel.buttons["Cancel"].click()
    tour.until(lambda: tour.state(jobs[1]) is JobState.CANCELLED, what="cancel")
    tour.shot("second-cancelled")

    tour.until(lambda: tour.state(jobs[0]) is JobState.DONE, what="first job")
    win.tabs.setCurrentIndex(2)
    tour.until(lambda: win.queue.get(jobs[2]).patches_done >= 3, what="third job running")
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
    doc = win.current()
    compare = doc.compare
    compare.canvas.fit()
    compare.slider.setValue(500)
    tour.shot("compare-before-after")
    compare.canvas.set_view(4.0, *marks[3])
    tour.shot("compare-zoomed-in-sync")
    win.toggle_compare()  # back to the editor: the original with what was changed on top
    doc.canvas.fit()
    win.actions_by_name["changes"].trigger()
    assert doc.changes_path is not None, win.last_error
    tour.shot("changes-of-the-repair")
    win.actions_by_name["changes"].trigger()

    dialog = AddFolderDialog(str(work), True, win)  # how a folder is queued overnight
    dialog.show()
    tour.shot("add-folder-find-damage-automatically", dialog)
    dialog.reject()
    for job_id in (jobs[0], jobs[2]):
        win.open_file(win.queue.get(job_id).output_path)
    win.actions_by_name["changes"].trigger()  # the cleaned scan: green where noise was taken out
    tour.shot("outputs-opened-changes-of-the-cleaning")
    win.close()

    latency["seconds"] = round(time.monotonic() - STARTED, 1)
    latency["note"] = ("bundled model, preset fast, 192x192 and 192x112 crops, 1 CPU thread for the engine, "
                       "batches of 3 patches, offscreen Qt")
    (shots / "latency.json").write_text(json.dumps(latency, indent=2) + "\n")
    print(f"event-loop lateness during restoration: max {latency['max_ms']:.1f} ms, "
          f"p95 {latency['p95_ms']:.1f} ms over {latency['ticks']} ticks of 10 ms")
    print(f"tour finished in {latency['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
