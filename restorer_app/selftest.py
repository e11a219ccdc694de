"""Checks that an installation works end to end, in seconds, on the user's own machine.

A packaged build can lack a shared library, a data file or a Qt plugin that the unit tests (run
from the source tree) never notice; each check here touches one such layer through the same code
the app uses: the bundled weights, the restoration engine on the chosen device, the image
codecs, the queue database and the main window. Everything is written to a temporary folder.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

#: Size of the built-in picture: 96x96 gives 4 patches of 64x64, a few seconds with 'fast' on a CPU.
SIZE = 96


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    seconds: float
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name:<9} {self.seconds:6.2f} s  {self.detail}"


def built_in_picture() -> np.ndarray:
    """A clean 96x96 RGB picture: smooth gradients, a disc, a bar and a triangle (float32, [0, 1])."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    image = np.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.5 + 0.2 * np.sin(6 * x) * np.cos(4 * y)], axis=2)
    image[(x - 0.35) ** 2 + (y - 0.4) ** 2 < 0.04] = (0.85, 0.25, 0.2)
    image[(y > 0.7) & (y < 0.8) & (x > 0.1)] = (0.1, 0.15, 0.4)
    image[(x > 0.6) & (y > 0.15) & (y < 0.6) & (x - 0.6 < y - 0.15)] = (0.9, 0.85, 0.3)
    return np.clip(image, 0.0, 1.0)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12)))


def check_model() -> str:
    from restorer_app.flow.weights import default_model_path, load_model

    model = load_model(default_model_path())
    bpd = model.info.get("heldout_bpd")
    bpd_text = f"{bpd:.3f} bits/dim on {model.info.get('heldout_set', '?')}" if bpd is not None else "bits/dim not recorded"
    return f"{model.info.get('name', model.source_path.name)} ({model.source_path.name}), {bpd_text}"


def check_restore(device: str) -> str:
    from restorer_app.devices import resolve_device
    from restorer_app.restore.degradations import add_gaussian_noise
    from restorer_app.restore.pipeline import restore_image
    from restorer_app.restore.settings import RestoreSettings

    clean = built_in_picture()
    degraded = add_gaussian_noise(clean, 15, rng=0)
    hole = np.zeros(clean.shape[:2], dtype=bool)
    hole[40:48, 20:30] = True
    degraded[hole] = 0.0
    device = str(resolve_device(device))
    restored = restore_image(degraded, hole, RestoreSettings(preset="fast", device=device, seed=0))
    before, after = psnr(degraded, clean), psnr(restored, clean)
    if not after > before:
        raise AssertionError(f"PSNR did not improve: {before:.2f} dB -> {after:.2f} dB")
    return f"{SIZE}x{SIZE}, noise 15 + hole, 'fast' on {device}: PSNR {before:.2f} -> {after:.2f} dB"


def check_detector() -> str:
    """The damage networks (colour and greyscale) and the segmenter ship and load (``--mask auto``
    needs them), a speck is found by each network, and the whole automatic mask covers it."""
    from restorer_app.restore.damage_finder import find_damage
    from restorer_app.restore.damage_net import damage_probability, default_detector_path, load_detector

    picture = built_in_picture()
    found = []
    for grey, image in ((False, picture.copy()), (True, picture.mean(axis=2, keepdims=True))):
        image[20:24, 70:74] = 0.97  # a speck on the green-blue gradient
        score = float(damage_probability(load_detector(grey=grey), image)[21:23, 71:73].mean())
        share = find_damage(image, sensitivity=0.5).repair[20:24, 70:74].mean()  # the segmenter loads and runs too
        if score < 0.5 or share < 1.0:
            raise AssertionError(f"{default_detector_path(grey).name}: a speck scored {score:.2f} and {share:.0%} of it was found")
        found.append(f"{default_detector_path(grey).name}: a speck scored {score:.2f} and found")
    return "; ".join(found)


def check_imaging(folder: Path) -> str:
    from restorer_app.imaging import ScanImage, read_image, write_image

    levels = (np.arange(SIZE * SIZE * 3, dtype=np.int64) * 7919 % 65536).reshape(SIZE, SIZE, 3)
    pixels = levels.astype(np.float32) / 65535  # every 16-bit level is used, so 8 bits would show
    like = ScanImage(path=None, pixels=pixels, alpha=None, bit_depth=16, icc_profile=None, exif=None,
                     xmp=None, dpi=(300.0, 300.0), format="TIFF")
    for name in ("roundtrip.tif", "roundtrip.png"):
        write_image(folder / name, pixels, like)
        back = read_image(folder / name)
        error = float(np.abs(back.pixels - pixels).max()) * 65535
        if back.bit_depth != 16 or back.pixels.shape != pixels.shape or error > 0.5:
            raise AssertionError(f"{name}: read back {back.bit_depth}-bit {back.pixels.shape}, max error {error:.1f}/65535")
    return "16-bit TIFF and PNG written and read back exactly"


def check_queue(folder: Path) -> str:
    from restorer_app.jobs.queue import JobQueue

    queue = JobQueue(folder / "home")
    jobs = queue.list()
    return f"{queue.db_path.name} created, {len(jobs)} jobs"


def check_window(folder: Path) -> str:
    """Open the real main window (offscreen when there is no display) and close it again."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings

    from restorer_app.gui.app import create_app, resource_path
    from restorer_app.gui.main_window import MainWindow

    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(folder / "settings"))  # the user's stay untouched
    missing = [name for name in ("restorer.svg", "style.qss") if not resource_path(name).is_file()]
    if missing:
        raise AssertionError(f"resources not found: {', '.join(missing)}")
    app = create_app()
    window = MainWindow(home=folder / "window-home")
    window.show()
    app.processEvents()
    shown = window.isVisible()
    window.close()
    app.processEvents()
    if not shown:
        raise AssertionError("the main window did not become visible")
    return f"main window shown and closed ({app.platformName()})"


def checks(device: str, folder: Path) -> list[tuple[str, Callable[[], str]]]:
    return [
        ("model", check_model),
        ("restore", lambda: check_restore(device)),
        ("detector", check_detector),
        ("imaging", lambda: check_imaging(folder)),
        ("queue", lambda: check_queue(folder)),
        ("window", lambda: check_window(folder)),
    ]


def run_selftest(device: str = "auto", report: Callable[[Result], None] = lambda r: None) -> list[Result]:
    """Run every check (a failure does not stop the others); ``report`` sees each result at once."""
    results = []
    with tempfile.TemporaryDirectory(prefix="restorer-selftest-") as tmp:
        for name, check in checks(device, Path(tmp)):
            start = time.perf_counter()
            try:
                ok, detail = True, check()
            except Exception as exc:  # one line per check, whatever broke
                ok, detail = False, f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
            results.append(Result(name, ok, time.perf_counter() - start, detail))
            report(results[-1])
    return results
