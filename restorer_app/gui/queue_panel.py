"""The job queue as a table: state, patch progress bar, speed, ETA, and the actions on it.

It reads the shared SQLite queue (so jobs added from the command line show up too) and
overlays live progress from the worker's events between refreshes. Progress moves within a
batch (the runner's ``progress`` events: fractional patches, measured speed and ETA); a job
run by another process shows the fractional progress and ETA its runner writes to the queue.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QApplication, QFileDialog, QGridLayout, QHeaderView, QPushButton,
                               QStyle, QStyledItemDelegate, QStyleOptionProgressBar, QTableView,
                               QVBoxLayout, QWidget)

from restorer_app.gui.messages import short_error
from restorer_app.gui.preferences import Preferences
from restorer_app.gui.progress import ProgressTracker, format_duration
from restorer_app.jobs.queue import Job, JobQueue, JobState

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
COLUMNS = ["#", "File", "State", "Progress", "Speed", "ETA"]
PROGRESS = COLUMNS.index("Progress")
REFRESH_MS = 1000
BAR_STEPS = 100  # progress bar units per patch, so a fraction of a batch shows


class JobTableModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.jobs: list[Job] = []
        self.trackers: dict[int, ProgressTracker] = {}
        self.live: dict[int, tuple[float, dict]] = {}  # job id -> (when received, last progress event)

    def set_jobs(self, jobs: list[Job]) -> None:
        self.beginResetModel()
        self.jobs = jobs
        for job in jobs:  # live counts win over the throttled database copy
            tracker = self.trackers.get(job.id)
            if tracker is not None and job.state is JobState.RUNNING:
                job.patches_done, job.patches_total = max(job.patches_done, tracker.done), tracker.total or job.patches_total
        self.endResetModel()

    def progress(self, job_id: int, done: int, total: int, from_store: bool) -> None:
        self.trackers.setdefault(job_id, ProgressTracker()).update(done, total, from_store)
        for row, job in enumerate(self.jobs):
            if job.id == job_id:
                job.patches_done, job.patches_total = done, total
                self.dataChanged.emit(self.index(row, PROGRESS), self.index(row, len(COLUMNS) - 1))

    def step(self, event: dict) -> None:
        """A runner ``progress`` event: fractional patches done, ``eta_s`` (None: estimating)."""
        job_id = event["job_id"]
        self.live[job_id] = (time.monotonic(), event)
        for row, job in enumerate(self.jobs):
            if job.id == job_id:
                job.patches_total = event["total"]
                self.dataChanged.emit(self.index(row, PROGRESS), self.index(row, len(COLUMNS) - 1))

    def view(self, job: Job) -> tuple[float, str, str]:
        """(patches done as a float, speed text, ETA text) as the table shows them."""
        if job.state is not JobState.RUNNING:
            return float(job.patches_done), "", ""
        speed, eta = self.trackers.get(job.id, ProgressTracker()).describe()
        received = self.live.get(job.id)
        if received is not None:  # our worker runs it: its events are at most 0.2 s old
            when, event = received
            done = max(float(event["done"]), float(job.patches_done))
            if event.get("patches_per_s"):
                speed = f"{event['patches_per_s']:.2f} patches/s"
            left = event.get("eta_s")
            eta = "estimating…" if left is None else format_duration(max(0.0, left - (time.monotonic() - when)))
        elif job.progress is not None:  # another process runs it: its last write (0.5 s or fresher)
            done = max(job.progress, float(job.patches_done))
            left = job.eta_s()
            eta = "estimating…" if left is None else format_duration(left)
        else:
            done = float(job.patches_done)
        return done, speed, eta

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.jobs)

    def columnCount(self, parent=QModelIndex()) -> int:
        return len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.DisplayRole):
        job = self.jobs[index.row()]
        column = COLUMNS[index.column()]
        if role == Qt.ToolTipRole:
            return job.error or f"{job.input_path}\n→ {job.output_path}"
        if role == Qt.UserRole:
            return job
        if role != Qt.DisplayRole:
            return None
        done, speed, eta = self.view(job)
        count = f"{done:.1f}" if job.state is JobState.RUNNING else f"{job.patches_done}"
        return {
            "#": job.id,
            "File": Path(job.input_path).name,
            "State": f"{job.state}: {job.error}" if job.error else str(job.state),
            "Progress": f"{count} / {job.patches_total or '?'} patches",
            "Speed": speed,
            "ETA": eta,
        }[column]


class ProgressDelegate(QStyledItemDelegate):
    """Draws the Progress column as a bar counting patches (fractions of a batch included)."""

    def paint(self, painter, option, index):
        job: Job = index.data(Qt.UserRole)
        done = index.model().view(job)[0]
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 3, -2, -3)
        bar.minimum, bar.maximum = 0, max(1, job.patches_total) * BAR_STEPS
        bar.progress = min(bar.maximum, int(done * BAR_STEPS)) if job.patches_total else 0
        bar.text, bar.textVisible = index.data(), True
        QApplication.style().drawControl(QStyle.CE_ProgressBar, bar, painter)


class QueuePanel(QWidget):
    """Buttons act on the selected job; adding or resuming work asks for the worker to start."""

    startRequested = Signal()
    stopRequested = Signal()
    addCurrentRequested = Signal()
    openOutputRequested = Signal(object)  # Job
    message = Signal(str)

    def __init__(self, queue: JobQueue, prefs: Preferences, parent=None):
        super().__init__(parent)
        self.queue, self.prefs = queue, prefs
        self.model = JobTableModel(self)
        self.table = QTableView(selectionBehavior=QTableView.SelectRows, selectionMode=QTableView.SingleSelection)
        self.table.setModel(self.model)
        self.table.setItemDelegateForColumn(PROGRESS, ProgressDelegate(self.table))
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(PROGRESS, QHeaderView.ResizeToContents)
        self.table.doubleClicked.connect(lambda _: self._on_job(self.openOutputRequested.emit, JobState.DONE))
        self.buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        actions = [
            ("Start", self.startRequested.emit), ("Stop", self.stopRequested.emit),
            ("Up", lambda: self._move(-1)), ("Down", lambda: self._move(+1)),
            ("Cancel", lambda: self._act(self.queue.cancel)), ("Resume", lambda: self._act(self.queue.retry, start=True)),
            ("Retry", lambda: self._act(self.queue.retry, start=True)), ("Remove", lambda: self._act(self.queue.remove)),
            ("Open output", lambda: self._on_job(self.openOutputRequested.emit, JobState.DONE)),
            ("Open folder", lambda: self._on_job(self._open_folder)),
            ("Add current", self.addCurrentRequested.emit), ("Add files…", self.add_files_dialog),
            ("Add folder…", self.add_folder_dialog),
        ]
        for i, (name, slot) in enumerate(actions):
            button = QPushButton(name)
            button.clicked.connect(slot)
            grid.addWidget(button, i // 5, i % 5)
            self.buttons[name] = button
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.table, 1)
        layout.addLayout(grid)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self._timer = QTimer(self, interval=REFRESH_MS, timeout=self.refresh)
        self._timer.start()
        self.refresh()

    # reading -----------------------------------------------------------------------------------
    def refresh(self) -> None:
        selected = self.selected_job()
        try:
            self.model.set_jobs(self.queue.list())
        except Exception as exc:  # a locked or damaged database: say so, keep the last view
            self.message.emit(short_error(exc, self.queue.db_path))
            return
        if selected is not None:
            self.select(selected.id)
        self._update_buttons()

    def on_event(self, event: dict) -> None:
        if event["type"] == "job_started":  # speed counts from here, stored patches excluded
            self.model.trackers[event["job_id"]] = ProgressTracker()
            self.model.live.pop(event["job_id"], None)
        if event["type"] == "patch_done":
            self.model.progress(event["job_id"], event["done"], event["total"], event["from_store"])
        elif event["type"] == "progress":  # several a second: no database read
            self.model.step(event)
        else:
            if event["type"] in ("job_done", "job_failed", "job_paused", "job_cancelled"):
                self.model.live.pop(event["job_id"], None)
            self.refresh()

    def selected_job(self) -> Job | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.jobs[rows[0].row()] if rows and rows[0].row() < len(self.model.jobs) else None

    def select(self, job_id: int) -> None:
        for row, job in enumerate(self.model.jobs):
            if job.id == job_id:
                self.table.selectRow(row)

    def _update_buttons(self, *_) -> None:
        job = self.selected_job()
        state = job.state if job else None
        enabled = {
            "Up": job is not None, "Down": job is not None,
            "Cancel": state in (JobState.QUEUED, JobState.RUNNING, JobState.PAUSED),
            "Resume": state is JobState.PAUSED,
            "Retry": state in (JobState.FAILED, JobState.CANCELLED),
            "Remove": job is not None and state is not JobState.RUNNING,
            "Open output": state is JobState.DONE, "Open folder": job is not None,
        }
        for name, on in enabled.items():
            self.buttons[name].setEnabled(on)

    # acting ---------------------------------------------------------------------------------------
    def _act(self, operation, start: bool = False) -> None:
        job = self.selected_job()
        if job is None:
            return
        try:
            operation(job.id)
        except Exception as exc:
            self.message.emit(short_error(exc))
        self.refresh()
        if start:
            self.startRequested.emit()

    def _move(self, step: int) -> None:
        job = self.selected_job()
        if job is not None:
            self.queue.move(job.id, self.model.jobs.index(job) + step)
            self.refresh()
            self.select(job.id)

    def _on_job(self, handler, required: JobState | None = None) -> None:
        job = self.selected_job()
        if job is not None and (required is None or job.state is required):
            handler(job)

    def _open_folder(self, job: Job) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(job.output_path).parent)))

    def add(self, input_path, mask_path=None, scope: str | None = None) -> int | None:
        """Queue one file with the current preferences; errors become a message, not a raise."""
        input_path = Path(input_path)
        try:
            job_id = self.queue.add(input_path, self.prefs.output_for(input_path), mask_path=mask_path,
                                    settings={**self.prefs.restore_settings(), **({"scope": scope} if scope else {})})
        except Exception as exc:
            self.message.emit(short_error(exc, input_path))
            return None
        self.refresh()
        return job_id

    def add_many(self, paths, mask_path=None, scope: str | None = None) -> list[int]:
        """Queue every image among ``paths`` (folders are searched, not recursively)."""
        files = []
        for path in map(Path, paths):
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES  # not change maps, masks
                            and not p.name.lower().endswith((".changes.png", ".mask.png"))) if path.is_dir() else [path]
        added = [job_id for job_id in (self.add(f, mask_path, scope) for f in files) if job_id is not None]
        self.message.emit(f"queued {len(added)} of {len(files)} files")
        return added

    def add_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Queue scans", "", "Images (*.png *.jpg *.jpeg *.tif *.tiff)")
        if files:
            self.add_many(files)

    def add_folder_dialog(self, folder: str | None = None) -> list[int]:
        """Ask how to queue a folder (menu, button or a folder dropped on the window)."""
        from restorer_app.gui.restore_options import ask_folder  # the dialog with "find the damage"

        choice = ask_folder(self, self.prefs, folder)
        return [] if choice is None else self.add_many([choice.folder], **choice.options)
