"""GUI responsiveness: canvas repaint cost on a 50-megapixel 16-bit scan, and event-loop
lateness (a 10 ms timer) while the worker thread restores an image.

    python -m benchmarks.gui_latency [--megapixels 50] [--json benchmarks/results/gui_latency.json]

The restoration part uses a tiny flow (patch 16) on a 128x128 synthetic scan: it measures how
the GUI thread copes with the worker and its per-patch signals, not restoration speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from restorer_app.flow.glow import FlowConfig, Glow  # noqa: E402
from restorer_app.flow.weights import save_model  # noqa: E402

QUICK = {"stages": [(1, 3), (2, 3), (3, 6)], "lr": 1e-2, "fp32_tail": 3}


def timed(work, repeat: int = 1) -> float:
    """Median milliseconds of ``work``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


def canvas_costs(megapixels: float) -> dict:
    from restorer_app.gui.canvas import ImageCanvas
    from restorer_app.gui.mask_layer import MaskLayer
    from restorer_app.gui.pyramid import Pyramid, to_display

    width = int((megapixels * 1e6 * 1.5) ** 0.5)
    height = int(megapixels * 1e6 / width)
    rng = np.random.default_rng(0)
    row = np.linspace(0, 1, width, dtype=np.float32)
    pixels = np.empty((height, width, 3), dtype=np.float32)  # what read_image gives for a 16-bit scan
    for y in range(0, height, 512):
        band = pixels[y : y + 512]
        band[:] = row[None, :, None]
        band += rng.integers(0, 65536, band.shape[:2] + (1,), dtype=np.uint16) / np.float32(65535 * 8)
    result = {"image": f"{width}x{height} RGB float32 (16-bit scan)"}
    start = time.perf_counter()
    pyramid = Pyramid(to_display(pixels))
    result["pyramid_build_ms"] = (time.perf_counter() - start) * 1000
    mask = MaskLayer((height, width))
    canvas = ImageCanvas()
    canvas.resize(1600, 1000)
    canvas.show()
    canvas.set_image(pyramid, mask)
    canvas.fit()
    canvas.grab()
    result["repaint_fit_ms"] = timed(canvas.grab, 5)
    canvas.set_view(1.0, width / 2, height / 2)
    canvas.grab()
    result["repaint_100pct_ms"] = timed(canvas.grab, 5)

    def pan():
        canvas.origin = canvas.origin + type(canvas.origin)(40, 25)
        canvas.grab()

    result["pan_step_100pct_ms"] = timed(pan, 20)
    zooms = iter(np.geomspace(canvas.zoom, canvas.zoom / 8, 20))
    result["zoom_step_ms"] = timed(lambda: (canvas.set_view(next(zooms), width / 2, height / 2), canvas.grab()), 20)
    mask.radius = 20
    start = time.perf_counter()
    mask.begin_stroke(width / 2, height / 2)
    for t in range(1, 60):
        mask.stroke_to(width / 2 + 10 * t, height / 2 + 4 * t)
    mask.end_stroke()
    result["stroke_60_segments_ms"] = (time.perf_counter() - start) * 1000
    result["undo_bytes_for_stroke"] = mask._undo[-1].nbytes
    result["full_mask_bytes"] = mask.mask.nbytes
    result["repaint_with_mask_ms"] = timed(canvas.grab, 5)
    return result


def restoration_latency(work: Path) -> dict:
    from restorer_app.gui.app import create_app
    from restorer_app.gui.latency import LatencyProbe
    from restorer_app.gui.main_window import MainWindow
    from restorer_app.gui.preferences import Preferences
    from restorer_app.jobs.queue import JobState
    from restorer_app.restore import settings

    os.environ["RESTORER_HOME"] = str(work / "home")
    os.environ["RESTORER_MODEL"] = str(work / "tiny.safetensors")
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(work / "settings"))
    settings.PRESETS["fast"] = QUICK
    torch.manual_seed(0)
    save_model(Glow(FlowConfig(hidden=8, patch_size=16, levels=3, steps_per_level=1)).eval(), work / "tiny.safetensors")
    y, x = np.mgrid[0:128, 0:128]
    Image.fromarray(np.stack([x * 2, y * 2, (x + y)], axis=2).astype(np.uint8)).save(work / "scan.png")
    create_app()
    prefs = Preferences()
    prefs.preset, prefs.output_dir, prefs.batch_size = "fast", str(work), 16
    prefs.sync()
    window = MainWindow()
    window.resize(1280, 860)
    window.show()
    window.open_file(work / "scan.png")
    probe = LatencyProbe(10)
    probe.start()
    start = time.perf_counter()
    job = window.enqueue_current()
    while window.queue.get(job).state is not JobState.DONE or window.busy:
        QTest.qWait(20)
        if time.perf_counter() - start > 600:
            raise SystemExit("gui_latency: restoration did not finish in 10 minutes")
    summary = probe.stop()
    summary["restore_s"] = time.perf_counter() - start
    summary["patches"] = window.queue.get(job).patches_total
    window.close()
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=50.0)
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "gui_latency.json"))
    args = parser.parse_args(argv)
    from restorer_app import runtime
    from restorer_app.gui.app import create_app

    runtime.configure()
    create_app()
    with tempfile.TemporaryDirectory() as tmp:
        loop = restoration_latency(Path(tmp))
    canvas = canvas_costs(args.megapixels)
    report = {"machine": f"{platform.machine()} {os.cpu_count()} CPUs, Qt offscreen",
              "torch_threads": torch.get_num_threads(), "canvas": canvas, "event_loop": loop}
    print(f"{'measurement':34} value")
    for key, value in canvas.items():
        print(f"{'canvas ' + key:34} {value:.1f}" if isinstance(value, float) else f"{'canvas ' + key:34} {value}")
    for key in ("ticks", "max_ms", "p95_ms", "mean_ms", "restore_s", "patches"):
        value = loop[key]
        print(f"{'event loop ' + key:34} {value:.1f}" if isinstance(value, float) else f"{'event loop ' + key:34} {value}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
