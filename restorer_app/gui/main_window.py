"""The main window: tabs of open scans, the tools, the queue dock and the worker's wiring.

Every failure the user can cause (a broken file, a bad mask, a full disk) ends as one line in
the status bar or the job's row; the window keeps working.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QColorDialog, QDockWidget, QFileDialog, QLabel, QMainWindow, QSlider,
                               QTabWidget)

from restorer_app.flow.weights import default_model_path, read_metadata
from restorer_app.gui.about_dialog import AboutDialog
from restorer_app.gui.document import DocumentTab
from restorer_app.gui.messages import short_error
from restorer_app.gui.preferences import Preferences
from restorer_app.gui.queue_panel import QueuePanel
from restorer_app.gui.settings_dialog import SettingsDialog
from restorer_app.gui.worker import QueueWorker
from restorer_app.jobs.queue import JobQueue, JobState
from restorer_app.restore.pipeline import MARGIN
from restorer_app.restore.tiling import plan_tiles

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
        view = bar.addMenu("&View")
        a["zoom_in"] = self._action(view, "Zoom &in", lambda: self._canvas_call("zoom_by", 1.25), [QKeySequence.ZoomIn, "Ctrl+="])
        a["zoom_out"] = self._action(view, "Zoom &out", lambda: self._canvas_call("zoom_by", 0.8), QKeySequence.ZoomOut)
        a["fit"] = self._action(view, "&Fit", lambda: self._canvas_call("fit"), "Ctrl+0")
        a["actual"] = self._action(view, "&100 %", lambda: self._canvas_call("actual_size"), "Ctrl+1")
        a["compare"] = self._action(view, "&Compare before/after", self.toggle_compare, "C")
        view.addAction(dock.toggleViewAction())
        queue = bar.addMenu("&Queue")
        a["enqueue"] = self._action(queue, "&Queue this scan", self.enqueue_current, "Ctrl+Return")
        a["start"] = self._action(queue, "&Start", self.start_queue)
        a["stop"] = self._action(queue, "S&top after current batch", self.stop_queue)
        help_ = bar.addMenu("&Help")
        a["about"] = self._action(help_, "&About Flow Restorer", lambda: AboutDialog(self.prefs.model_path or None, self).exec())

        toolbar = self.addToolBar("Tools")
        toolbar.setObjectName("tools")
        short = {"save_mask": "Save mask", "undo": "Undo", "redo": "Redo", "eraser": "Eraser", "pan": "Pan",
                 "smaller": "Brush −", "larger": "Brush +", "compare": "Compare", "enqueue": "Queue",
                 "stop": "Stop"}
        for name in ("open", "save_mask", "undo", "redo", "brush", "eraser", "pan", "smaller", "larger",
                     "fit", "actual", "compare", "enqueue", "start", "stop"):
            a[name].setIconText(short.get(name, a[name].text().replace("&", "")))
            toolbar.addAction(a[name])
        toolbar.addWidget(QLabel(" Mask opacity "))
        self.opacity = QSlider(Qt.Horizontal, minimum=5, maximum=100, value=50, maximumWidth=120)
        self.opacity.valueChanged.connect(lambda v: self._each_canvas("set_overlay", self._colour(), v / 100))
        toolbar.addWidget(self.opacity)
        a["brush"].setChecked(True)

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
        """Dropped images open in tabs; a dropped folder is queued as a batch."""
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        folders = [p for p in paths if p.is_dir()]
        self.open_files([p for p in paths if not p.is_dir()])
        if folders:
            self.panel.add_many(folders)
            self.start_queue()
        event.acceptProposedAction()

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
        if doc is not None:
            self._show_zoom(doc.canvas.zoom)

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
        """Queue the shown scan with its mask (saved next to the output) and the settings."""
        doc = self.current()
        if doc is None:
            return None
        mask_path = None
        if doc.mask.mask.any():
            mask_path = self.prefs.output_for(doc.path).with_suffix(".mask.png")
            if not self._try(lambda: doc.mask.save_png(mask_path), None, mask_path):
                return None
        job_id = self.panel.add(doc.path, mask_path)
        if job_id is not None:
            self.report(f"queued {doc.title} as job {job_id}")
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
        """Pause after the current batch; finished patches stay stored for the resume."""
        if self.worker is not None and self.worker.isRunning():
            self.worker.request_stop()
            self.report("stopping after the current batch…")

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
                self.report(f"job {job_id} done: {name} (press C to compare)")
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
            model_path = self.queue.get(job_id).settings.get("model_path") or default_model_path()
            patch = int(read_metadata(model_path)["config"]["patch_size"])
        except Exception:  # no preview grid, the restoration itself reports real problems
            return
        h, w = doc.scan.pixels.shape[:2]
        grid = plan_tiles(h, w, patch=patch, margin=MARGIN)
        doc.start_live(grid.core, grid.rows, grid.cols)

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

    def open_output(self, job) -> None:
        """Show a finished job: its input beside the output in the compare view."""
        doc = self.open_file(job.input_path)
        if doc is not None:
            self._try(lambda: doc.show_compare(job.output_path), f"comparing with {Path(job.output_path).name}")
        else:
            self.open_file(job.output_path)

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
        if self.busy:
            self.statusBar().showMessage("pausing the running job after its current batch…")
            self.worker.request_stop()
            while not self.worker.wait(50):  # keep repainting while the batch finishes
                QApplication.processEvents()
        self.prefs.sync()
        super().closeEvent(event)

