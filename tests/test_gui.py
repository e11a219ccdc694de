"""The desktop GUI, offscreen: opening, painting, undo, the queue worker, cancel/resume,
restart and broken files. A tiny flow and a shortened 'fast' schedule keep it to seconds."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPoint, QSettings, Qt  # noqa: E402

from conftest import make_tiny_flow, synthetic_photo  # noqa: E402
from restorer_app.flow.weights import save_model  # noqa: E402
from restorer_app.gui.mask_layer import TILE, MaskLayer  # noqa: E402
from restorer_app.imaging.io import read_image  # noqa: E402
from restorer_app.jobs.queue import JobQueue, JobState  # noqa: E402
from restorer_app.jobs.runner import JobRunner  # noqa: E402
from restorer_app.restore import settings as restore_settings  # noqa: E402

QUICK = {"stages": [(1, 2), (2, 2), (3, 4)], "lr": 1e-2, "fp32_tail": 2}


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Own restorer home, own QSettings, a tiny model as the default and a short schedule."""
    monkeypatch.setenv("RESTORER_HOME", str(tmp_path / "home"))
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(tmp_path / "settings"))
    model = tmp_path / "tiny.safetensors"
    save_model(make_tiny_flow(hidden=8, steps=1), model, {"training_data": "none (test)"})
    monkeypatch.setenv("RESTORER_MODEL", str(model))
    monkeypatch.setitem(restore_settings.PRESETS, "fast", QUICK)
    from restorer_app.gui.preferences import Preferences

    prefs = Preferences()
    prefs.preset, prefs.threads, prefs.output_dir = "fast", 1, str(tmp_path / "out")
    prefs.sync()
    (tmp_path / "out").mkdir()
    return tmp_path


def write_png(path, height=24, width=32, seed=0):
    Image.fromarray((synthetic_photo(height, width, seed) * 255).round().astype(np.uint8)).save(path)
    return path


@pytest.fixture
def window(env, qtbot):
    from restorer_app.gui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    yield win
    if win.busy:
        win.worker.request_stop()
        win.worker.wait()


def wait_state(qtbot, win, job_id, state, timeout=30000):
    qtbot.waitUntil(lambda: win.queue.get(job_id).state is state and not win.busy, timeout=timeout)


def test_open_image_shows_it(window, env):
    doc = window.open_file(write_png(env / "a.png"))
    assert doc is not None and window.tabs.count() == 1
    assert doc.canvas.pyramid.shape == (24, 32)
    assert not doc.canvas.grab().isNull()
    assert window.prefs.recent_files[0].endswith("a.png")


def test_brush_stroke_changes_exactly_the_painted_pixels():
    layer = MaskLayer((40, 50))
    layer.radius = 3
    layer.begin_stroke(10.5, 20.5)
    layer.stroke_to(30.5, 20.5)
    layer.end_stroke()
    y, x = np.mgrid[0:40, 0:50] + 0.5
    expected = ((np.abs(y - 20.5) <= 3) & (x >= 10.5) & (x <= 30.5)) | ((x - 10.5) ** 2 + (y - 20.5) ** 2 <= 9) \
        | ((x - 30.5) ** 2 + (y - 20.5) ** 2 <= 9)
    assert np.array_equal(layer.mask, expected)
    layer.begin_stroke(20.5, 20.5, erase=True)
    layer.end_stroke()
    expected[(x - 20.5) ** 2 + (y - 20.5) ** 2 <= 9] = False
    assert np.array_equal(layer.mask, expected)


def test_undo_redo_store_only_the_changed_tiles():
    layer = MaskLayer((4000, 4000))
    layer.radius = 5
    layer.begin_stroke(100, 100)
    layer.stroke_to(140, 110)
    layer.end_stroke()
    first = layer.mask.copy()
    layer.begin_stroke(2000, 2000)
    layer.end_stroke()
    second = layer.mask.copy()
    assert sum(s.nbytes for s in layer._undo) == 3 * TILE * TILE  # three touched tiles, not 16 MB per stroke
    assert layer.undo() and np.array_equal(layer.mask, first)
    assert layer.undo() and not layer.mask.any()
    assert layer.redo() and layer.redo() and np.array_equal(layer.mask, second)
    layer.invert()
    layer.undo()
    assert np.array_equal(layer.mask, second) and layer.can_redo


def test_painting_on_the_canvas_and_undo(window, env, qtbot):
    doc = window.open_file(write_png(env / "a.png", 64, 64))
    canvas = doc.canvas
    canvas.resize(256, 256)
    canvas.set_view(4.0, 32, 32)
    doc.mask.radius = 2
    qtbot.mousePress(canvas, Qt.LeftButton, pos=QPoint(128, 128))
    qtbot.mouseRelease(canvas, Qt.LeftButton, pos=QPoint(128, 128))
    assert doc.mask.mask[32, 32] and doc.mask.mask.sum() < 30
    window.actions_by_name["undo"].trigger()
    assert not doc.mask.mask.any()
    window.actions_by_name["redo"].trigger()
    assert doc.mask.mask[32, 32]


def test_enqueue_current_and_the_worker_finishes_it(window, env, qtbot):
    doc = window.open_file(write_png(env / "a.png"))
    doc.mask.begin_stroke(10, 10)
    doc.mask.end_stroke()
    job_id = window.enqueue_current()
    assert job_id is not None
    patches = []
    window.worker.event.connect(lambda e: patches.append(e) if e["type"] == "patch_done" else None)
    wait_state(qtbot, window, job_id, JobState.DONE)
    job = window.queue.get(job_id)
    assert read_image(job.output_path).pixels.shape == (24, 32, 3)
    assert job.mask_path and job.patches_done == job.patches_total > 0
    window.toggle_compare()
    assert doc.comparing and doc.compare.canvas.after is not None


def _add(win, path, out):
    return win.queue.add(path, out, settings={"preset": "fast", "device": "cpu", "batch_size": 2})


@pytest.mark.parametrize("threads, then", [(0, 0), (1, 2)], ids=["automatic", "1-then-2-threads"])
def test_cancel_mid_run_then_resume_matches_an_uninterrupted_run(window, env, qtbot, threads, then):
    """Cancel inside a batch, retry (after the thread preference changed, in the second case):
    the output equals an uninterrupted run on the thread count the job started with."""
    import json

    from restorer_app.devices import cpu_threads
    from restorer_app.imaging.provenance import provenance_path

    source = write_png(env / "b.png", 32, 32, seed=3)  # 16 patches in batches of 3
    window.prefs.threads = threads
    job_id = window.queue.add(source, env / "out" / "b.png", settings={"preset": "fast", "device": "cpu", "batch_size": 3})
    seen = []

    def cancel_after_two_batches(event):
        seen.append(event)
        if event["type"] == "patch_done" and event["done"] == 6:  # seen by the worker within the next batch
            window.panel.refresh()
            window.panel.select(job_id)
            window.panel.buttons["Cancel"].click()

    window.start_queue()
    window.worker.event.connect(cancel_after_two_batches)
    wait_state(qtbot, window, job_id, JobState.CANCELLED)
    total = window.queue.get(job_id).patches_total
    assert 6 <= window.queue.get(job_id).patches_done < total
    window.prefs.threads = then
    window.panel.refresh()
    window.panel.select(job_id)
    window.panel.buttons["Retry"].click()
    qtbot.waitUntil(lambda: window.busy, timeout=5000)
    window.worker.event.connect(seen.append)
    wait_state(qtbot, window, job_id, JobState.DONE)
    assert any(e["type"] == "patch_done" and e["from_store"] for e in seen)
    solved_with = json.loads(provenance_path(env / "out" / "b.png").read_text())["extra"]["plan"]["threads"]
    assert solved_with == (threads or solved_with)
    reference = JobQueue(env / "other-home")
    reference.add(source, env / "reference.png", settings={"preset": "fast", "device": "cpu", "batch_size": 3})
    with cpu_threads(solved_with):
        JobRunner(reference).run()
    assert np.array_equal(read_image(env / "out" / "b.png").pixels, read_image(env / "reference.png").pixels)


def test_quit_pauses_and_a_restarted_window_resumes(window, env, qtbot):
    from restorer_app.gui.main_window import MainWindow

    source = write_png(env / "c.png", 32, 32, seed=5)
    job_id = _add(window, source, env / "out" / "c.png")
    window.start_queue()
    qtbot.waitUntil(lambda: window.queue.get(job_id).patches_done >= 2, timeout=20000)
    window.close()
    assert window.queue.get(job_id).state is JobState.PAUSED
    again = MainWindow()
    qtbot.addWidget(again)
    assert [j.id for j in again.panel.model.jobs] == [job_id]
    again.panel.select(job_id)
    again.panel.buttons["Resume"].click()
    wait_state(qtbot, again, job_id, JobState.DONE)
    assert (env / "out" / "c.png").is_file()


def test_a_broken_file_is_reported_and_the_app_goes_on(window, env):
    broken = env / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    assert window.open_file(broken) is None
    assert "broken.png" in window.last_error and "Traceback" not in window.last_error
    window.panel.add(env / "missing.png")  # refused by the queue: a message, not an exception
    assert "missing.png" in window.statusBar().currentMessage()
    assert window.open_file(write_png(env / "ok.png")) is not None
    assert window.tabs.count() == 1


def test_settings_persist_and_about_shows_the_model(window, env):
    from restorer_app.gui.about_dialog import AboutDialog
    from restorer_app.gui.preferences import Preferences
    from restorer_app.gui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(window.prefs, window)
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.threads.setValue(2)
    dialog.accept()
    assert Preferences().device == "cpu" and Preferences().threads == 2
    text = AboutDialog(parent=window).text.toPlainText()
    assert "none (test)" in text and "BSDS500" in text and "Urban100" in text


def test_cli_gui_parser_and_no_qt_outside_the_gui_package():
    import argparse
    import subprocess
    import sys

    from restorer_app import cli_gui

    parser = argparse.ArgumentParser()
    cli_gui.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["gui", "a.png", "b.tif"])
    assert args.files == ["a.png", "b.tif"] and args.func is cli_gui.run
    code = ("import sys, restorer_app.cli, restorer_app.cli_gui, restorer_app.jobs.runner; "
            "sys.exit('PySide6' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
