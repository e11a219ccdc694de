"""The main window: tabs of open scans, the tools, the queue dock and the worker's wiring.

Every failure the user can cause (a broken file, a bad mask, a full disk) ends as one line in
the status bar or the job's row; the window keeps working.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QColorDialog, QDockWidget, QFileDialog, QLabel, QMainWindow,
                               QProgressBar, QSlider, QTabWidget)

from restorer_app.flow.weights import default_model_path, read_metadata
from restorer_app.gui.about_dialog import AboutDialog
from restorer_app.gui.damage import DetectWorker, change_map_for
from restorer_app.gui.document import DocumentTab
from restorer_app.gui.messages import short_error
from restorer_app.gui.preferences import Preferences
from restorer_app.gui.queue_panel import QueuePanel
from restorer_app.gui.restore_options import ScopeChoice, effective_scope
from restorer_app.gui.settings_dialog import SettingsDialog
from restorer_app.gui.worker import QueueWorker
from restorer_app.imaging.io import read_mask
from restorer_app.jobs.queue import JobQueue, JobState
from restorer_app.jobs.restore_file import AUTO_MASK
from restorer_app.restore.pipeline import MARGIN, windows_to_solve
from restorer_app.restore.tiling import plan_tiles
from restorer_app.restore.windows import pending_cells

CHANGES_LEGEND = ("Changes: red = repaired (synthesised) pixels, green = cleaned pixels (brighter moved more), "
                  "blue = uncertainty; unchanged pixels are not tinted")

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.tif *.tiff);;All files (*)"


class MainWindow(QMainWindow):
    def __init__(self, home=None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Flow Restorer")
        self.resize(1280, 860)
        self.setAcceptDrops(True)
        self.prefs = Preferences()
        self.queue = JobQueue(home)
        self.worker: QueueWorker | None = None
        self._detecting: dict[DocumentTab, DetectWorker] = {}
        self.last_error: str | None = None
        self._live: dict[int, Path] = {}  # running job id -> its input, for the live preview
        self._closing = False

        self.tabs = QTabWidget(tabsClosable=True, movable=True, documentMode=True)
        self.tabs.tabCloseRequested.connect(self.close_tab)
        self.tabs.currentChanged.connect(lambda _: self._sync_tools())
        self.setCentralWidget(self.tabs)
        self.panel = QueuePanel(self.queue, self.prefs)
        self.panel.startRequested.connect(self.start_queue)
        self.panel.stopRequested.connect(self.stop_queue)
        self.panel.addCurrentRequested.connect(self.enqueue_current)
        self.panel.openOutputRequested.connect(self.open_output)
        self.panel.message.connect(self.report)
        dock = QDockWidget("Queue", self, objectName="queue")
        dock.setWidget(self.panel)
        self.addDockWidget(Qt.BottomDockWidgetArea, dock)
        self.busy_bar = QProgressBar(minimum=0, maximum=0, maximumWidth=140, textVisible=False)  # indeterminate
        self.busy_bar.setToolTip("Looking for damage…")
        self.busy_bar.hide()
        self.statusBar().addPermanentWidget(self.busy_bar)
        self.zoom_label = QLabel()
        self.statusBar().addPermanentWidget(self.zoom_label)
        self._build_actions(dock)
        self._sync_tools()

    # actions ---------------------------------------------------------------------------------
    def _action(self, menu, text, slot, shortcut=None, checkable=False) -> QAction:
        action = QAction(text, self, checkable=checkable)
        if shortcut:
            action.setShortcuts([QKeySequence(s) for s in (shortcut if isinstance(shortcut, list) else [shortcut])])
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_actions(self, dock) -> None:
        bar = self.menuBar()
        a = self.actions_by_name = {}
        file = bar.addMenu("&File")
        a["open"] = self._action(file, "&Open…", self.open_dialog, QKeySequence.Open)
        self.recent_menu = file.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        a["save_mask"] = self._action(file, "&Save mask…", self.save_mask_dialog, QKeySequence.Save)
        a["load_mask"] = self._action(file, "&Load mask…", self.load_mask_dialog)
        a["close"] = self._action(file, "&Close tab", lambda: self.close_tab(self.tabs.currentIndex()), QKeySequence.Close)
        file.addSeparator()
        a["settings"] = self._action(file, "Se&ttings…", self.settings_dialog, QKeySequence.Preferences)
        a["quit"] = self._action(file, "&Quit", self.close, QKeySequence.Quit)
        edit = bar.addMenu("&Edit")
        a["undo"] = self._action(edit, "&Undo stroke", lambda: self._mask_op("undo"), QKeySequence.Undo)
        a["redo"] = self._action(edit, "&Redo stroke", lambda: self._mask_op("redo"), [QKeySequence.Redo, "Ctrl+Y"])
        a["clear"] = self._action(edit, "C&lear mask", lambda: self._mask_op("clear"))
        a["invert"] = self._action(edit, "&Invert mask", lambda: self._mask_op("invert"), "Ctrl+I")
        tools = bar.addMenu("&Tools")
        a["brush"] = self._action(tools, "&Brush", lambda: self.set_tool("brush"), "B", True)
        a["eraser"] = self._action(tools, "&Eraser (or Alt+drag)", lambda: self.set_tool("eraser"), "E", True)
        a["pan"] = self._action(tools, "&Pan (or Shift+drag, middle button)", lambda: self.set_tool("pan"), "H", True)
        a["smaller"] = self._action(tools, "Smaller brush", lambda: self._canvas_call("resize_brush", 1 / 1.25), "[")
        a["larger"] = self._action(tools, "Larger brush", lambda: self._canvas_call("resize_brush", 1.25), "]")
        a["show_mask"] = self._action(tools, "Show &mask", self._toggle_mask, "M", True)
        a["show_mask"].setChecked(True)
        a["colour"] = self._action(tools, "Mask &colour…", self.choose_colour)
        tools.addSeparator()
        a["detect"] = self._action(tools, "&Detect damage", self.detect_damage, "D")
        a["detect"].setToolTip("Mark dust, scratches and other damage automatically (one undo step; how much: Settings, sensitivity); then correct with brush and eraser")
        view = bar.addMenu("&View")
        a["zoom_in"] = self._action(view, "Zoom &in", lambda: self._canvas_call("zoom_by", 1.25), [QKeySequence.ZoomIn, "Ctrl+="])
        a["zoom_out"] = self._action(view, "Zoom &out", lambda: self._canvas_call("zoom_by", 0.8), QKeySequence.ZoomOut)
        a["fit"] = self._action(view, "&Fit", lambda: self._canvas_call("fit"), "Ctrl+0")
        a["actual"] = self._action(view, "&100 %", lambda: self._canvas_call("actual_size"), "Ctrl+1")
        a["compare"] = self._action(view, "&Compare before/after", self.toggle_compare, "C")
        a["changes"] = self._action(view, "Show c&hanges", self.toggle_changes, "X", True)
        a["changes"].setToolTip(CHANGES_LEGEND)
        view.addAction(dock.toggleViewAction())
        queue = bar.addMenu("&Queue")
        a["enqueue"] = self._action(queue, "&Queue this scan", self.enqueue_current, "Ctrl+Return")
        a["start"] = self._action(queue, "&Start", self.start_queue)
        a["stop"] = self._action(queue, "S&top (keeps finished patches)", self.stop_queue)
        help_ = bar.addMenu("&Help")
        a["about"] = self._action(help_, "&About Flow Restorer", lambda: AboutDialog(self.prefs.model_path or None, self).exec())

        toolbar = self.addToolBar("Tools")
        toolbar.setObjectName("tools")
        short = {"save_mask": "Save mask", "undo": "Undo", "redo": "Redo", "eraser": "Eraser", "pan": "Pan",
                 "smaller": "Brush −", "larger": "Brush +", "compare": "Compare", "enqueue": "Queue",
                 "stop": "Stop", "changes": "Show changes"}
        for name in ("open", "save_mask", "undo", "redo", "detect", "brush", "eraser", "pan", "smaller", "larger",
                     "fit", "actual"):
            a[name].setIconText(short.get(name, a[name].text().replace("&", "")))
            toolbar.addAction(a[name])
        toolbar.addWidget(QLabel(" Mask opacity "))
        self.opacity = QSlider(Qt.Horizontal, minimum=5, maximum=100, value=50, maximumWidth=120)
        self.opacity.valueChanged.connect(lambda v: self._each_canvas("set_overlay", self._colour(), v / 100))
        toolbar.addWidget(self.opacity)
        a["brush"].setChecked(True)
        self.addToolBarBreak()
        restore = self.addToolBar("Restoration")
        restore.setObjectName("restoration")
        self.scope = ScopeChoice()
        self.scope.chosen.connect(self._scope_chosen)
        restore.addWidget(self.scope)
        for name in ("enqueue", "start", "stop", "compare", "changes"):
            a[name].setIconText(short.get(name, a[name].text().replace("&", "")))
            restore.addAction(a[name])

    # documents -----------------------------------------------------------------------------------
    @property
    def documents(self) -> list[DocumentTab]:
        return [self.tabs.widget(i) for i in range(self.tabs.count())]

    def current(self) -> DocumentTab | None:
        return self.tabs.currentWidget()

    def document_for(self, path) -> DocumentTab | None:
        path = Path(path).resolve()
        return next((d for d in self.documents if d.path.resolve() == path), None)

    def open_files(self, paths) -> list[DocumentTab]:
        opened = []
        for path in paths:
            doc = self.open_file(path)
            if doc is not None:
                opened.append(doc)
        return opened

    def open_file(self, path) -> DocumentTab | None:
        """Open (or switch to) a scan in a tab; a bad file is reported, never raised."""
        existing = self.document_for(path)
        if existing is not None:
            self.tabs.setCurrentWidget(existing)
            return existing
        try:
            doc = DocumentTab.open(path, self)
        except Exception as exc:
            self.report(short_error(exc, path), error=True)
            return None
        doc.canvas.viewChanged.connect(self._show_zoom)
        doc.canvas.strokeFinished.connect(self._sync_tools)
        doc.canvas.set_overlay(self._colour(), self.opacity.value() / 100)
        doc.canvas.tool = self._tool()
        self.tabs.setCurrentIndex(self.tabs.addTab(doc, doc.title))
        self.tabs.setTabToolTip(self.tabs.currentIndex(), str(doc.path))
        self.prefs.add_recent(str(Path(path).resolve()))
        h, w = doc.scan.pixels.shape[:2]
        self.report(f"opened {doc.title}: {w}x{h}, {doc.scan.bit_depth}-bit {doc.scan.format}")
        return doc

    def open_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open scans", "", IMAGE_FILTER)
        self.open_files(files)

    def close_tab(self, index: int) -> None:
        doc = self.tabs.widget(index)
        if doc is not None:
            self.tabs.removeTab(index)
            doc.deleteLater()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.prefs.recent_files:
            self.recent_menu.addAction(path, lambda p=path: self.open_file(p))
        self.recent_menu.setEnabled(bool(self.prefs.recent_files))

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        """Dropped images open in tabs; a dropped folder is queued as a batch, asking (like Add
        folder) whether to find each scan's damage automatically."""
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        self.open_files([p for p in paths if not p.is_dir()])
        event.acceptProposedAction()
        added = [job for p in paths if p.is_dir() for job in self.panel.add_folder_dialog(str(p))]
        if added:
            self.start_queue()

    # mask and view tools --------------------------------------------------------------------------
    def _tool(self) -> str:
        return next((t for t in ("eraser", "pan") if self.actions_by_name[t].isChecked()), "brush")

    def set_tool(self, tool: str) -> None:
        for name in ("brush", "eraser", "pan"):
            self.actions_by_name[name].setChecked(name == tool)
        for doc in self.documents:
            doc.canvas.tool = tool

    def _canvas_call(self, method: str, *args) -> None:
        doc = self.current()
        if doc is not None:
            canvas = doc.compare.canvas if doc.comparing and method != "resize_brush" else doc.canvas
            getattr(canvas, method)(*args)

    def _each_canvas(self, method: str, *args) -> None:
        for doc in self.documents:
            getattr(doc.canvas, method)(*args)

    def _colour(self):
        return getattr(self, "_overlay_colour", Qt.red)

    def choose_colour(self) -> None:
        colour = QColorDialog.getColor(self._colour(), self, "Mask colour")
        if colour.isValid():
            self._overlay_colour = colour
            self._each_canvas("set_overlay", colour, self.opacity.value() / 100)

    def _toggle_mask(self) -> None:
        for doc in self.documents:
            doc.canvas.show_mask = self.actions_by_name["show_mask"].isChecked()
            doc.canvas.update()

    def _mask_op(self, op: str) -> None:
        doc = self.current()
        if doc is not None:
            getattr(doc.mask, op)()
            self._sync_tools()

    def _sync_tools(self) -> None:
        doc = self.current()
        a = self.actions_by_name
        for name in ("save_mask", "load_mask", "clear", "invert", "enqueue", "compare", "fit", "actual", "close"):
            a[name].setEnabled(doc is not None)
        a["undo"].setEnabled(doc is not None and doc.mask.can_undo)
        a["redo"].setEnabled(doc is not None and doc.mask.can_redo)
        a["detect"].setEnabled(doc is not None and doc not in self._detecting)
        a["changes"].setEnabled(doc is not None and (doc.changes_path is not None or self._change_map(doc) is not None))
        a["changes"].setChecked(doc is not None and doc.changes_path is not None)
        self.scope.setEnabled(doc is not None)
        self.scope.show_state(doc is not None and bool(doc.mask.mask.any()), doc.scope_choice if doc else None)
        if doc is not None:
            self._show_zoom(doc.canvas.zoom)

    def _scope_chosen(self, scope: str) -> None:
        doc = self.current()
        if doc is not None:
            doc.scope_choice = scope

    def _show_zoom(self, zoom: float, *_) -> None:
        self.zoom_label.setText(f"{zoom * 100:.0f} %")

    def save_mask_dialog(self) -> None:
        doc = self.current()
        if doc is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save mask", str(doc.path.with_suffix(".mask.png")), "PNG (*.png)")
        if path:
            self._try(lambda: doc.mask.save_png(path), f"saved mask {Path(path).name}", path)

    def load_mask_dialog(self) -> None:
        doc = self.current()
        if doc is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Load mask", str(doc.path.parent), "Images (*.png *.tif *.tiff)")
        if path:
            self._try(lambda: doc.mask.load_png(path), f"loaded mask {Path(path).name}", path)
            self._sync_tools()

    def settings_dialog(self) -> None:
        SettingsDialog(self.prefs, self).exec()

    # queue -------------------------------------------------------------------------------------------
    def enqueue_current(self) -> int | None:
        """Queue the shown scan with its mask, the chosen scope and the settings. The mask goes
        to a file of this job's own (in the restorer home), so a later job of the same scan
        never rewrites it."""
        doc = self.current()
        if doc is None:
            return None
        has_mask = bool(doc.mask.mask.any())
        scope = effective_scope(has_mask, doc.scope_choice)
        mask_path = None
        if has_mask:
            mask_path = self.queue.new_mask_path(doc.path)
            if not self._try(lambda: doc.mask.save_png(mask_path), None, mask_path):
                return None
        job_id = self.panel.add(doc.path, mask_path, scope)
        if job_id is None:
            if mask_path is not None:
                mask_path.unlink(missing_ok=True)  # refused (the panel said why): no orphan mask
            return None
        what = "marked damage only" if scope == "mask" else "whole image"
        self.report(f"queued {doc.title} as job {job_id} ({what})")
        self.start_queue()
        return job_id

    def start_queue(self) -> None:
        if self.worker is not None and self.worker.isRunning() and not self.worker.stopping:
            return  # the running worker claims new jobs as it goes
        if self.worker is not None and self.worker.isRunning():
            self.worker.wait()
        self.worker = QueueWorker(self.queue.home, self.prefs.threads, parent=self)
        self.worker.event.connect(self._on_event)
        self.worker.failed.connect(lambda text: self.report(text, error=True))
        self.worker.finished.connect(self._worker_finished)
        self.worker.start()

    def stop_queue(self) -> None:
        """Pause within a second; the batch in work is dropped, finished patches stay stored for the resume."""
        if self.worker is not None and self.worker.isRunning():
            self.worker.request_stop()
            self.report("stopping…")

    def _worker_finished(self) -> None:
        self.panel.refresh()
        queued = any(j.state is JobState.QUEUED for j in self.panel.model.jobs)
        if queued and not self._closing and not (self.worker and self.worker.stopping):
            self.start_queue()  # jobs added while the worker was finishing

    @property
    def busy(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def _on_event(self, event: dict) -> None:
        self.panel.on_event(event)
        kind, job_id = event["type"], event["job_id"]
        if kind == "job_started":
            self._live[job_id] = Path(event["input"])
            self._start_preview(job_id)
        doc = self.document_for(self._live[job_id]) if job_id in self._live else None
        if kind == "patch_done" and doc is not None:
            doc.show_patch(event["box"], event["pixels"])
        elif kind in ("job_done", "job_failed", "job_paused", "job_cancelled"):
            self._live.pop(job_id, None)
            if doc is not None:
                doc.stop_live()
            name = self._live_name(job_id)
            if kind == "job_done":
                self._sync_tools()  # its change map can be shown now
                self.report(f"job {job_id} done: {name} (press C to compare, X to show the changes)")
            elif kind == "job_failed":
                self.report(f"job {job_id} failed: {event.get('error')}", error=True)
            else:
                self.report(f"job {job_id} {kind[4:]}: {event.get('error')}")

    def _live_name(self, job_id: int) -> str:
        try:
            return Path(self.queue.get(job_id).output_path).name
        except Exception:
            return f"job {job_id}"

    def _start_preview(self, job_id: int) -> None:
        """Show the tile grid over the open scan of a job that starts (patch size from its model)."""
        doc = self.document_for(self._live[job_id])
        if doc is None:
            return
        try:
            job = self.queue.get(job_id)
            model_path = job.settings.get("model_path") or default_model_path()
            patch = int(read_metadata(model_path)["config"]["patch_size"])
        except Exception:  # no preview grid, the restoration itself reports real problems
            return
        h, w = doc.scan.pixels.shape[:2]
        grid = plan_tiles(h, w, patch=patch, margin=MARGIN)
        pending = mask = None
        scope = job.settings.get("scope", "auto")
        if job.mask_path and scope != "image":  # only the windows that follow the mask are solved
            pending = np.zeros((grid.rows, grid.cols), dtype=bool)
            if job.mask_path != AUTO_MASK:  # "auto": the detector decides when the job runs
                try:
                    mask = read_mask(job.mask_path, (h, w))
                except Exception:
                    pending = None
                else:
                    pending = pending_cells(grid, windows_to_solve(grid, mask, "mask"))
        doc.start_live(grid.core, grid.rows, grid.cols, pending, mask)

    def toggle_compare(self) -> None:
        doc = self.current()
        if doc is None:
            return
        if doc.comparing:
            doc.show_editor()
            return
        done = [j for j in self.queue.list() if j.state is JobState.DONE and Path(j.input_path) == doc.path.resolve()]
        if not done:
            self.report(f"{doc.title}: no finished restoration to compare yet", error=True)
            return
        self._try(lambda: doc.show_compare(done[-1].output_path), f"comparing with {Path(done[-1].output_path).name}")
        self._sync_tools()

    # damage detection and the change map ---------------------------------------------------------
    def detect_damage(self) -> None:
        """Run the detector on the shown scan off the GUI thread; its result is added to the
        mask as one undo step."""
        doc = self.current()
        if doc is None or doc in self._detecting:
            return
        worker = DetectWorker(doc, self.prefs.sensitivity, self)
        worker.found.connect(self._damage_found)
        worker.failed.connect(self._detect_failed)
        worker.finished.connect(self._detect_finished)
        self._detecting[doc] = worker
        self.busy_bar.show()
        self.report(f"looking for damage in {doc.title}…")
        self._sync_tools()
        worker.start()

    def _damage_found(self, doc: DocumentTab, found) -> None:
        if doc not in self.documents:
            return  # the tab was closed meanwhile
        if doc.mask.stroking:  # never split a stroke's undo step: try again after it
            QTimer.singleShot(50, lambda: self._damage_found(doc, found))
            return
        added = doc.mask.add_damage(found)
        total = found.size
        if not found.any():
            self.report(f"{doc.title}: no damage found; paint it with the brush, or raise the sensitivity in Settings")
        else:
            self.report(f"{doc.title}: {found.sum() / total * 100:.2f} % of the image marked as damage "
                        f"({added} new pixels); correct it with brush and eraser, Ctrl+Z undoes it")
        doc.canvas.update()
        self._sync_tools()

    def _detect_failed(self, doc: DocumentTab, text: str) -> None:
        self.report(text, error=True)

    def _detect_finished(self) -> None:
        for doc, worker in list(self._detecting.items()):
            if worker.isFinished():
                del self._detecting[doc]
                worker.deleteLater()
        self.busy_bar.setVisible(bool(self._detecting))
        self._sync_tools()

    def _change_map(self, doc: DocumentTab) -> Path | None:
        """The change map that belongs with what the tab shows: of the output being compared,
        of the file itself (an output), else of the latest finished job of this scan."""
        candidates = [doc.output_path, doc.path]
        done = [j for j in self.panel.model.jobs if j.state is JobState.DONE and Path(j.input_path) == doc.path.resolve()]
        candidates += [Path(j.output_path) for j in reversed(done)]
        for output in candidates:
            found = change_map_for(output) if output is not None else None
            if found is not None:
                return found
        return None

    def toggle_changes(self) -> None:
        """Show or hide, over the image, what the restoration changed."""
        doc = self.current()
        if doc is None:
            return
        if doc.changes_path is not None:
            doc.hide_changes()
        else:
            path = self._change_map(doc)
            if path is None:
                self.report(f"{doc.title}: no finished restoration with a change map yet", error=True)
            else:
                self._try(lambda: doc.show_changes(path), CHANGES_LEGEND, path)
        self._sync_tools()

    def open_output(self, job) -> None:
        """Show a finished job: its input beside the output in the compare view."""
        doc = self.open_file(job.input_path)
        if doc is not None:
            self._try(lambda: doc.show_compare(job.output_path), f"comparing with {Path(job.output_path).name}")
        else:
            self.open_file(job.output_path)
        self._sync_tools()

    # messages and closing ----------------------------------------------------------------------------
    def report(self, text: str, error: bool = False) -> None:
        if error:
            self.last_error = text
        self.statusBar().showMessage(text, 15000 if error else 6000)

    def _try(self, work, done_text: str | None, path=None) -> bool:
        try:
            work()
        except Exception as exc:
            self.report(short_error(exc, path), error=True)
            return False
        if done_text:
            self.report(done_text)
        return True

    def closeEvent(self, event) -> None:
        """Let the worker stop between batches: its job is paused and resumes next time."""
        self._closing = True
        for worker in list(self._detecting.values()):  # a detection stops within a few seconds
            worker.request_stop()
            worker.wait()
        if self.busy:
            self.statusBar().showMessage("pausing the running job…")
            self.worker.request_stop()
            while not self.worker.wait(50):  # keep repainting while the job stops
                QApplication.processEvents()
        self.prefs.sync()
        super().closeEvent(event)

