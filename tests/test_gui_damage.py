"""The GUI for overnight batches: scope in plain words, Detect damage as one undo step, folders
queued with automatic masks, one mask file per job, the change-map overlay and the pending-tile
grid kept on the image. Offscreen, a tiny flow, no detector needed (it is monkeypatched)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pytestqt")
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QColor, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QDialog  # noqa: E402

from restorer_app.jobs.queue import JobState  # noqa: E402
from restorer_app.jobs.restore_file import AUTO_MASK, changes_path  # noqa: E402
from restorer_app.restore.damage_finder import FoundDamage  # noqa: E402
from test_gui import env, wait_state, window, write_png  # noqa: E402,F401  (fixtures)


@pytest.fixture
def idle(window, monkeypatch):
    """The window without its worker: queued jobs stay queued."""
    monkeypatch.setattr(window, "start_queue", lambda: None)
    return window


def paint(doc, x, y, radius=2):
    doc.mask.radius = radius
    doc.mask.begin_stroke(x, y)
    doc.mask.end_stroke()


def fake_detector(monkeypatch, result=None, error=None):
    calls = []

    def find_damage(image, sensitivity=0.5, should_stop=None):
        calls.append(image.shape)
        if error is not None:
            raise error
        mask = result(image) if callable(result) else result
        return FoundDamage(repair=mask, found=mask, chain=mask, sensitivity=sensitivity)

    monkeypatch.setattr("restorer_app.restore.damage_finder.find_damage", find_damage)  # what "auto" runs
    return calls


# scope --------------------------------------------------------------------------------------------
def test_scope_choice_reaches_the_job_settings(idle, env):
    win = idle
    doc = win.open_file(write_png(env / "a.png"))
    assert not win.scope.mask_only.isEnabled() and win.scope.everywhere.isChecked()
    assert "Nothing is marked" in win.scope.mask_only.toolTip()
    plain = win.enqueue_current()
    job = win.queue.get(plain)
    assert job.settings["scope"] == "image" and job.mask_path is None
    win.queue.remove(plain)

    paint(doc, 10, 10)
    win._sync_tools()
    assert win.scope.mask_only.isEnabled() and win.scope.mask_only.isChecked()  # the default with a mask
    masked = win.enqueue_current()
    assert win.queue.get(masked).settings["scope"] == "mask" and win.queue.get(masked).mask_path
    win.queue.remove(masked)

    win.scope.everywhere.click()  # as the user does
    assert doc.scope_choice == "image"
    everywhere = win.enqueue_current()
    job = win.queue.get(everywhere)
    assert job.settings["scope"] == "image" and job.mask_path  # the marked pixels are filled too

    doc.mask.clear()  # no mask left: "image" is the only choice again
    win._sync_tools()
    assert not win.scope.mask_only.isEnabled() and win.scope.everywhere.isChecked()


# detect damage --------------------------------------------------------------------------------------
def test_detect_damage_fills_the_mask_in_one_undo_step(window, env, qtbot, monkeypatch):
    found = np.zeros((24, 32), bool)
    found[3:5, 2:30] = True  # a scratch
    found[20, 7] = True  # a speck of dust
    calls = fake_detector(monkeypatch, found)
    doc = window.open_file(write_png(env / "a.png"))
    paint(doc, 20.5, 15.5)
    painted = doc.mask.mask.copy()
    window.actions_by_name["detect"].trigger()
    qtbot.waitUntil(lambda: not window._detecting, timeout=10000)
    assert calls == [(24, 32, 3)]
    assert np.array_equal(doc.mask.mask, painted | found)  # added to what was painted
    assert not window.busy_bar.isVisible() and window.actions_by_name["detect"].isEnabled()
    assert "marked as damage" in window.statusBar().currentMessage()
    window.actions_by_name["undo"].trigger()
    assert np.array_equal(doc.mask.mask, painted)  # one step takes the whole detection back
    window.actions_by_name["redo"].trigger()
    assert np.array_equal(doc.mask.mask, painted | found)
    window._sync_tools()
    assert window.scope.mask_only.isChecked()


def test_the_sensitivity_preference_reaches_detection_and_queued_jobs(window, env, qtbot, monkeypatch):
    seen = []

    def find_damage(image, sensitivity=0.5, should_stop=None):
        seen.append(sensitivity)
        empty = np.zeros(image.shape[:2], bool)
        return FoundDamage(repair=empty, found=empty, chain=empty, sensitivity=sensitivity)

    monkeypatch.setattr("restorer_app.restore.damage_finder.find_damage", find_damage)
    window.prefs.sensitivity = 0.8
    doc = window.open_file(write_png(env / "a.png"))
    window.actions_by_name["detect"].trigger()
    qtbot.waitUntil(lambda: not window._detecting, timeout=10000)
    assert seen == [0.8]
    paint(doc, 10, 10)
    job = window.queue.get(window.enqueue_current())
    assert job.settings["sensitivity"] == 0.8


def test_detect_damage_errors_are_one_line(window, env, qtbot, monkeypatch):
    fake_detector(monkeypatch, error=RuntimeError("detector exploded\nwith details"))
    doc = window.open_file(write_png(env / "a.png"))
    window.detect_damage()
    qtbot.waitUntil(lambda: not window._detecting, timeout=10000)
    assert window.last_error.startswith("Detect damage:") and "exploded" in window.last_error
    assert "\n" not in window.last_error and "Traceback" not in window.last_error
    assert not doc.mask.mask.any() and not doc.mask.can_undo

    fake_detector(monkeypatch, np.zeros((5, 5), bool))  # the wrong size is refused too
    window.detect_damage()
    qtbot.waitUntil(lambda: not window._detecting, timeout=10000)
    assert "5x5" in window.last_error and not doc.mask.mask.any()


def test_detection_waits_for_a_stroke_in_progress(window, env, qtbot, monkeypatch):
    found = np.zeros((24, 32), bool)
    found[0:2, :] = True
    fake_detector(monkeypatch, found)
    doc = window.open_file(write_png(env / "a.png"))
    doc.mask.radius = 2
    doc.mask.begin_stroke(16, 12)
    window.detect_damage()
    qtbot.wait(300)
    assert not doc.mask.mask[0:2].all()  # not applied in the middle of the stroke
    doc.mask.end_stroke()
    qtbot.waitUntil(lambda: doc.mask.mask[0:2].all(), timeout=5000)
    window.actions_by_name["undo"].trigger()
    assert not doc.mask.mask[0:2].any() and doc.mask.mask[12, 16]  # the stroke is its own step


def test_closing_the_window_stops_a_detection_in_progress(window, env, qtbot, monkeypatch):
    """A detection of a large scan takes minutes; quitting asks it to stop and reports nothing."""
    from restorer_app.restore.detect import DetectionStopped

    started, stopped = [], []

    def slow_find_damage(image, sensitivity=0.5, should_stop=None):
        started.append(True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if should_stop is not None and should_stop():
                stopped.append(True)
                raise DetectionStopped("stopped while looking for damage")
            time.sleep(0.01)
        empty = np.zeros(image.shape[:2], bool)
        return FoundDamage(repair=empty, found=empty, chain=empty)

    monkeypatch.setattr("restorer_app.restore.damage_finder.find_damage", slow_find_damage)
    window.open_file(write_png(env / "a.png"))
    window.detect_damage()
    qtbot.waitUntil(lambda: bool(started), timeout=5000)
    closing = time.monotonic()
    window.close()
    assert stopped and time.monotonic() - closing < 5
    assert window.last_error is None or "damage" not in window.last_error


# folders ---------------------------------------------------------------------------------------------
def test_add_folder_can_queue_every_scan_with_automatic_masks(window, env, monkeypatch):
    from restorer_app.gui import restore_options

    folder = env / "scans"
    folder.mkdir()
    for name in ("one.png", "two.png"):
        write_png(folder / name)
    (folder / "old.restored.png.changes.png").write_bytes(b"not a scan")  # never queued as a scan

    def answer(auto):
        def exec_(dialog):
            dialog.folder.setText(str(folder))
            dialog.auto_damage.setChecked(auto)
            return QDialog.Accepted
        return exec_

    monkeypatch.setattr(restore_options.AddFolderDialog, "exec", answer(True))
    window.panel.buttons["Add folder…"].click()
    jobs = window.queue.list()
    assert [j.input_path.split("/")[-1] for j in jobs] == ["one.png", "two.png"]
    assert all(j.mask_path == AUTO_MASK and j.settings["scope"] == "mask" for j in jobs)
    assert window.prefs.auto_damage_for_folders and window.prefs.last_folder == str(folder)
    assert restore_options.AddFolderDialog(window.prefs.last_folder, True).auto_damage.isChecked()

    for job in jobs:
        window.queue.remove(job.id)
    monkeypatch.setattr(restore_options.AddFolderDialog, "exec", answer(False))
    window.panel.buttons["Add folder…"].click()
    assert all(j.mask_path is None and j.settings["scope"] == "auto" for j in window.queue.list())


def test_a_dropped_folder_asks_whether_to_find_the_damage(idle, env, monkeypatch):
    from restorer_app.gui import restore_options

    folder = env / "dropped"
    folder.mkdir()
    write_png(folder / "scan.png")
    shown = []

    def exec_(dialog):
        shown.append(dialog.folder.text())
        dialog.auto_damage.setChecked(True)
        return QDialog.Accepted

    monkeypatch.setattr(restore_options.AddFolderDialog, "exec", exec_)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    idle.dropEvent(QDropEvent(QPointF(5, 5), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier))
    assert shown == [str(folder)]  # the dialog opened on the dropped folder, not the last one
    [job] = idle.queue.list()
    assert job.input_path.endswith("scan.png") and job.mask_path == AUTO_MASK and job.settings["scope"] == "mask"

    monkeypatch.setattr(restore_options.AddFolderDialog, "exec", lambda dialog: QDialog.Rejected)
    idle.dropEvent(QDropEvent(QPointF(5, 5), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier))
    assert len(idle.queue.list()) == 1  # cancelled: nothing queued


def test_an_automatic_mask_job_runs_to_the_end(window, env, qtbot, monkeypatch):
    found = np.zeros((24, 32), bool)
    found[8:10, 4:28] = True
    fake_detector(monkeypatch, found)
    source = write_png(env / "a.png")
    [job_id] = window.panel.add_many([source], mask_path=AUTO_MASK, scope="mask")
    window.start_queue()
    wait_state(qtbot, window, job_id, JobState.DONE)
    out = np.asarray(Image.open(window.queue.get(job_id).output_path))
    assert np.array_equal(out[~found], np.asarray(Image.open(source))[~found])  # only the damage changed


# masks of two jobs -----------------------------------------------------------------------------------
def test_two_jobs_of_the_same_scan_keep_their_own_mask_files(idle, env):
    win = idle
    doc = win.open_file(write_png(env / "a.png"))
    paint(doc, 5, 5)
    first_mask = doc.mask.mask.copy()
    first = win.enqueue_current()
    win.queue.cancel(first)  # to be retried later with this mask
    paint(doc, 25, 18)
    second = win.enqueue_current()
    paths = [win.queue.get(j).mask_path for j in (first, second)]
    assert None not in paths and paths[0] != paths[1]
    assert np.array_equal(np.asarray(Image.open(paths[0])) > 0, first_mask)
    assert np.array_equal(np.asarray(Image.open(paths[1])) > 0, doc.mask.mask)
    masks = sorted((win.queue.home / "masks").iterdir())

    paint(doc, 15, 12)
    assert win.enqueue_current() is None  # refused: the same output is already queued
    assert "already the output of job" in win.statusBar().currentMessage()
    assert sorted((win.queue.home / "masks").iterdir()) == masks  # no orphan, nothing rewritten
    assert np.array_equal(np.asarray(Image.open(paths[0])) > 0, first_mask)


# show changes ----------------------------------------------------------------------------------------
def _pixel(canvas, x, y) -> QColor:
    """The colour the canvas shows at image pixel (x, y)."""
    p = QPoint(int((x + 0.5 - canvas.origin.x()) * canvas.zoom), int((y + 0.5 - canvas.origin.y()) * canvas.zoom))
    return canvas.grab().toImage().pixelColor(p)


def test_show_changes_overlays_the_change_map_of_an_open_output(window, env):
    output = env / "a.restored.png"
    Image.fromarray(np.full((24, 32, 3), 128, np.uint8)).save(output)
    changes = np.zeros((24, 32, 3), np.uint8)
    changes[4:8, 4:8] = (255, 40, 0)  # synthesised
    changes[12:16, 20:24] = (0, 3, 0)  # cleaned a little
    Image.fromarray(changes).save(changes_path(output))
    doc = window.open_file(output)
    canvas = doc.canvas
    canvas.resize(320, 240)
    canvas.set_view(8.0, 16, 12)
    action = window.actions_by_name["changes"]
    assert action.isEnabled() and not action.isChecked()
    before = [_pixel(canvas, x, y) for x, y in ((5, 5), (21, 13), (0, 20))]
    action.trigger()
    assert action.isChecked() and doc.changes_path == changes_path(output) and canvas.showing_changes
    red, green, untouched = (_pixel(canvas, x, y) for x, y in ((5, 5), (21, 13), (0, 20)))
    assert red.red() > 200 and red.green() < 120 and red.blue() < 80  # semi-transparent red over grey
    assert green.green() > 140 and green.red() < 80 and green.blue() < 80
    assert untouched == before[2]  # zero in the map: not tinted at all
    action.trigger()
    assert not action.isChecked() and not canvas.showing_changes
    assert [_pixel(canvas, x, y) for x, y in ((5, 5), (21, 13), (0, 20))] == before


def test_show_changes_after_a_finished_job(window, env, qtbot):
    doc = window.open_file(write_png(env / "a.png"))
    assert not window.actions_by_name["changes"].isEnabled()  # nothing restored yet
    paint(doc, 10, 10)
    job_id = window.enqueue_current()
    wait_state(qtbot, window, job_id, JobState.DONE)
    window.panel.refresh()
    window._sync_tools()
    assert window.actions_by_name["changes"].isEnabled()
    window.actions_by_name["changes"].trigger()
    assert doc.changes_path == changes_path(window.queue.get(job_id).output_path)
    window.toggle_compare()
    assert doc.comparing and doc.compare.canvas.showing_changes
    window.toggle_changes()
    assert not doc.compare.canvas.showing_changes and not doc.canvas.showing_changes


def test_change_overlay_colours():
    from restorer_app.gui.damage import CHANGES_ALPHA, change_overlay

    changes = np.array([[[0, 0, 0], [255, 7, 0], [0, 1, 0], [0, 7, 0], [0, 255, 9]]], np.uint8)
    rgba = change_overlay(changes)
    assert rgba[0, 0].tolist() == [0, 0, 0, 0]  # unchanged: transparent
    assert rgba[0, 1].tolist() == [255, 0, 0, CHANGES_ALPHA]  # synthesised: red, not yellow
    assert 128 <= rgba[0, 2, 1] < rgba[0, 3, 1] < rgba[0, 4, 1] == 255  # one level visible, order kept
    assert rgba[0, 2, 0] == 0 and rgba[0, 4, 2] > 0 and rgba[0, 4, 3] == CHANGES_ALPHA
    assert 0 < rgba[0, 2, 3] < rgba[0, 3, 3] < CHANGES_ALPHA  # small moves: a lighter tint


# pending grid ------------------------------------------------------------------------------------------
def test_pending_grid_stays_on_the_image(window, env):
    doc = window.open_file(write_png(env / "a.png", 20, 30))  # cells of 8: the grid is 24 x 32
    canvas = doc.canvas
    canvas.resize(400, 300)
    canvas.set_view(8.0, 15, 10)
    empty = canvas.grab().toImage()
    doc.start_live(8, 3, 4)
    shown = canvas.grab().toImage()
    rect = canvas.image_rect()
    inside = QPoint(int(rect.left() + 3), int(rect.top() + 3))
    assert shown.pixelColor(inside) != empty.pixelColor(inside)  # the grid is drawn on the image
    for p in (QPoint(int(rect.right()) + 4, int(rect.top()) + 10), QPoint(int(rect.left()) + 10, int(rect.bottom()) + 4),
              QPoint(int(rect.right()) + 4, int(rect.bottom()) + 4)):  # beside it, inside the last cells
        assert shown.pixelColor(p) == empty.pixelColor(p) == QColor(48, 48, 48)
    doc.stop_live()


def test_live_preview_of_a_masked_job_shades_only_the_tiles_it_solves(window, env):
    doc = window.open_file(write_png(env / "a.png", 40, 60))
    pending = np.zeros((5, 8), bool)
    pending[1, 2] = True
    mask = np.zeros((40, 60), bool)
    mask[10:12, 18:20] = True
    doc.start_live(8, 5, 8, pending, mask)
    assert doc.canvas._pending.sum() == 1
    restored = np.zeros((8, 8, 3), np.float32)
    doc.show_patch((8, 16, 16, 24), restored)
    shown = doc.canvas.pyramid.levels[0]
    assert (shown[10:12, 18:20] == 0).all()  # the masked pixels show the restoration
    assert np.array_equal(shown[8:10, 16:24], doc.base.levels[0][8:10, 16:24])  # the rest stays as scanned
    assert doc.canvas._pending.sum() == 0


def test_a_window_across_cells_clears_every_cell_under_its_box(window, env):
    doc = window.open_file(write_png(env / "a.png", 40, 60))
    pending = np.zeros((5, 8), bool)
    pending[1:3, 2:4] = True  # a speck where four cells meet: one window answers for all four
    mask = np.zeros((40, 60), bool)
    mask[14:18, 22:26] = True
    doc.start_live(8, 5, 8, pending, mask)
    doc.show_patch((13, 21, 19, 27), np.zeros((6, 6, 3), np.float32))
    assert doc.canvas._pending.sum() == 0
    doc.stop_live()
