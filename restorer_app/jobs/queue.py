"""The persistent job queue: one SQLite file in the restorer home, shared by the CLI and the GUI.

Several processes may use it at once, so every operation is one short transaction on its own
connection (WAL mode, a generous busy timeout), and every write starts with ``BEGIN IMMEDIATE``
so that, for example, two runners can never claim the same job. A runner records its host,
pid, a per-runner token and a heartbeat on the job it works on; a job left ``running`` by a
runner that died (crash, kill -9, power cut) is put back in the queue by the next claim.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import sqlite3
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Iterator

from restorer_app.jobs.paths import restorer_home
from restorer_app.jobs.restore_file import AUTO_MASK, check_paths
from restorer_app.imaging.errors import ImageError
from restorer_app.restore.settings import RestoreSettings

SCHEMA_VERSION = 1
DB_NAME = "queue.sqlite3"
BUSY_TIMEOUT_S = 30.0
#: A running job whose heartbeat is older than this is taken to be orphaned (runners beat every
#: few seconds from a thread of their own, also in the middle of a long batch).
STALE_AFTER_S = 120.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    input_path TEXT NOT NULL,
    mask_path TEXT,
    output_path TEXT NOT NULL,
    settings TEXT NOT NULL,
    overwrite INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'queued',
    patches_done INTEGER NOT NULL DEFAULT 0,
    patches_total INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    position INTEGER NOT NULL,
    work_dir TEXT NOT NULL DEFAULT '',
    owner_token TEXT,
    owner_pid INTEGER,
    owner_host TEXT,
    heartbeat REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, position, id);
"""
#: Columns added after schema 1 shipped, by ALTER TABLE on every database that lacks them (new and
#: old alike). Nullable and unread by older versions, so they do not bump SCHEMA_VERSION.
_ADDED_COLUMNS = {
    "progress": "REAL",  # running job: finished patches + the solved fraction of its batch in work
    "eta_at": "REAL",  # running job: when it should finish (POSIX time); NULL while estimating
}


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobError(ValueError):
    """An unknown job or a request its state does not allow (the CLI exits with status 2)."""


@dataclass
class Job:
    """One row of the queue; times are POSIX timestamps (seconds), None until they happen."""

    id: int
    input_path: str
    mask_path: str | None
    output_path: str
    settings: dict
    overwrite: bool
    state: JobState
    patches_done: int
    patches_total: int
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    work_dir: str
    position: int
    progress: float | None = None  # while running: patches done incl. the batch in work (fractional)
    eta_at: float | None = None  # while running: expected end (POSIX time); None while estimating

    def eta_s(self, now: float | None = None) -> float | None:
        """Seconds left by the runner's last measured estimate; None unless running and estimated."""
        if self.state is not JobState.RUNNING or self.eta_at is None:
            return None
        return max(0.0, self.eta_at - (time.time() if now is None else now))

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Job":
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values.update(settings=json.loads(row["settings"]), overwrite=bool(row["overwrite"]),
                      state=JobState(row["state"]))
        return cls(**values)


@dataclass(frozen=True)
class Owner:
    """Who runs a job: this host and process, and a token unique to one runner."""

    token: str = field(default_factory=lambda: secrets.token_hex(8))
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)

    def __post_init__(self):
        _LIVE_TOKENS.add(self.token)


#: Tokens of the runners made in this process: a dead runner's pid may be ours after pid reuse.
_LIVE_TOKENS: set[str] = set()


class JobQueue:
    def __init__(self, home: str | os.PathLike | None = None):
        self.home = restorer_home(home)
        self.db_path = self.home / DB_NAME
        self.work_root = self.home / "work"
        self.mask_root = self.home / "masks"
        self._create()

    def new_mask_path(self, input_path) -> Path:
        """A new, unused file for one job's mask: ``<home>/masks/<stem>-<time>-<random>.mask.png``.

        Every queued job gets its own, so queuing the same scan again (another scope, a corrected
        mask) never rewrites the mask an earlier job reads; ``remove`` deletes it with its job.
        """
        self.mask_root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        while True:
            path = self.mask_root / f"{Path(input_path).stem}-{stamp}-{secrets.token_hex(3)}.mask.png"
            if not path.exists():
                return path

    # -- storage -----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        return db

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, taken at once (BEGIN IMMEDIATE) so no upgrade can fail."""
        with contextlib.closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _create(self) -> None:
        with contextlib.closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(_SCHEMA)  # each statement is atomic and idempotent
        with self._transaction() as db:
            row = db.execute("SELECT max(version) FROM schema_version").fetchone()
            if row[0] is None:
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] > SCHEMA_VERSION:
                raise JobError(f"{self.db_path}: made by a newer version of restorer (schema {row[0]})")
            have = {r["name"] for r in db.execute("PRAGMA table_info(jobs)")}
            for name, kind in _ADDED_COLUMNS.items():  # inside BEGIN IMMEDIATE: one process adds it
                if name not in have:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

    def _job(self, db: sqlite3.Connection, job_id: int) -> Job:
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobError(f"job {job_id}: no such job")
        return Job.from_row(row)

    # -- the user's operations ---------------------------------------------------------------

    def add(self, input_path, output_path, mask_path=None, settings: dict | None = None,
            overwrite: bool = False) -> int:
        """Queue a job at the end; refuses now what is sure to fail later (ImageError, ValueError)."""
        input_path, output_path = Path(input_path).resolve(), Path(output_path).resolve()
        check_paths(input_path, output_path, overwrite)
        restore_settings = RestoreSettings.from_dict(settings or {})
        if mask_path is not None and str(mask_path) != AUTO_MASK:  # "auto": detected when the job runs
            mask_path = Path(mask_path).resolve()
            if not mask_path.is_file():
                raise ImageError(mask_path, "mask file not found")
        if mask_path is None and restore_settings.scope == "mask":
            raise ValueError("--scope mask: no damage mask was given (use --mask FILE or --mask auto, or --scope image)")
        if restore_settings.model_path and not Path(restore_settings.model_path).is_file():
            raise JobError(f"{restore_settings.model_path}: model file not found")
        with self._transaction() as db:
            clash = db.execute(
                "SELECT id FROM jobs WHERE output_path = ? AND state IN ('queued', 'running', 'paused')",
                (str(output_path),)).fetchone()
            if clash is not None:
                raise ImageError(output_path, f"already the output of job {clash['id']}")
            position = db.execute("SELECT coalesce(max(position), -1) + 1 FROM jobs").fetchone()[0]
            cursor = db.execute(
                "INSERT INTO jobs (input_path, mask_path, output_path, settings, overwrite, created_at, position)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (str(input_path), None if mask_path is None else str(mask_path), str(output_path),
                 json.dumps(restore_settings.to_dict(), sort_keys=True), int(overwrite), time.time(), position))
            job_id = cursor.lastrowid
            db.execute("UPDATE jobs SET work_dir = ? WHERE id = ?", (str(self.work_root / f"job-{job_id}"), job_id))
        return job_id

    def list(self) -> list[Job]:
        with contextlib.closing(self._connect()) as db:
            return [Job.from_row(r) for r in db.execute("SELECT * FROM jobs ORDER BY position, id")]

    def get(self, job_id: int) -> Job:
        with contextlib.closing(self._connect()) as db:
            return self._job(db, job_id)

    def cancel(self, job_id: int) -> Job:
        """Queued or paused: cancelled now. Running: its runner stops within about a second
        (between two optimiser steps), keeping the patches of its finished batches."""
        return self._change(job_id, JobState.CANCELLED, {JobState.QUEUED, JobState.RUNNING, JobState.PAUSED})

    def pause(self, job_id: int) -> Job:
        """Hold a queued job, or stop a running one within about a second; ``retry`` resumes it."""
        return self._change(job_id, JobState.PAUSED, {JobState.QUEUED, JobState.RUNNING})

    def retry(self, job_id: int) -> Job:
        """Queue a failed, cancelled or paused job again; its stored patches are kept."""
        return self._change(job_id, JobState.QUEUED, {JobState.FAILED, JobState.CANCELLED, JobState.PAUSED})

    def _change(self, job_id: int, state: JobState, allowed: set[JobState]) -> Job:
        with self._transaction() as db:
            job = self._job(db, job_id)
            if job.state not in allowed:
                raise JobError(f"job {job_id}: cannot {_VERBS[state]} a {job.state} job")
            finished = None if state is JobState.QUEUED else time.time()
            if job.state is JobState.RUNNING:
                finished = None  # its runner sets it when it has stopped
            db.execute("UPDATE jobs SET state = ?, error = NULL, finished_at = ? WHERE id = ?",
                       (state, finished, job_id))
            return self._job(db, job_id)

    def remove(self, job_id: int) -> None:
        """Forget a job that is not running, and delete its stored patches and the mask file the
        app wrote for it (a mask the user chose stays)."""
        with self._transaction() as db:
            job = self._job(db, job_id)
            if job.state is JobState.RUNNING:
                raise JobError(f"job {job_id}: cannot remove a running job (cancel it first)")
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        shutil.rmtree(job.work_dir, ignore_errors=True)
        if job.mask_path and Path(job.mask_path).parent == self.mask_root:  # ours, not the user's file
            Path(job.mask_path).unlink(missing_ok=True)

    def move(self, job_id: int, new_position: int) -> None:
        """Put a job at index ``new_position`` of the list (clamped); the others keep their order."""
        with self._transaction() as db:
            self._job(db, job_id)
            ids = [r["id"] for r in db.execute("SELECT id FROM jobs WHERE id != ? ORDER BY position, id", (job_id,))]
            ids.insert(max(0, min(new_position, len(ids))), job_id)
            db.executemany("UPDATE jobs SET position = ? WHERE id = ?", list(enumerate(ids)))

    # -- the runner's operations -------------------------------------------------------------

    def claim(self, owner: Owner) -> Job | None:
        """Atomically take the first queued job (orphaned running jobs count as queued)."""
        now = time.time()
        with self._transaction() as db:
            for row in db.execute("SELECT id, owner_token, owner_pid, owner_host, heartbeat FROM jobs"
                                  " WHERE state = 'running'").fetchall():
                if _orphaned(row, owner, now):
                    db.execute("UPDATE jobs SET state = 'queued', owner_token = NULL WHERE id = ?", (row["id"],))
            row = db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY position, id LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', error = NULL, started_at = ?, finished_at = NULL,"
                " progress = NULL, eta_at = NULL,"
                " owner_token = ?, owner_pid = ?, owner_host = ?, heartbeat = ? WHERE id = ?",
                (now, owner.token, owner.pid, owner.host, now, row["id"]))
            return self._job(db, row["id"])

    def report(self, job_id: int, owner: Owner, done: int | None = None, total: int | None = None,
               progress: float | None = None, eta_s: float | None = None) -> JobState | None:
        """Record progress and a heartbeat; return the job's state, or None if no longer ours.

        ``progress`` (fractional patches done) comes with its ``eta_s`` (None: still estimating);
        without ``progress`` both keep their last value."""
        now = time.time()
        eta_at = None if progress is None or eta_s is None else now + eta_s
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET patches_done = coalesce(?, patches_done), patches_total = coalesce(?, patches_total),"
                " progress = coalesce(?, progress), eta_at = CASE WHEN ? IS NULL THEN eta_at ELSE ? END,"
                " heartbeat = ? WHERE id = ? AND owner_token = ?",
                (done, total, progress, progress, eta_at, now, job_id, owner.token))
            row = db.execute("SELECT state, owner_token FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return JobState(row["state"]) if row is not None and row["owner_token"] == owner.token else None

    def finish(self, job_id: int, owner: Owner, state: JobState | None = None, error: str | None = None) -> None:
        """Let go of a job: set ``state`` (None keeps what the user chose meanwhile) and the end time."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state = coalesce(?, state), error = ?, finished_at = ?,"
                " patches_done = CASE WHEN ? = 'done' THEN patches_total ELSE patches_done END,"
                " progress = NULL, eta_at = NULL,"
                " owner_token = NULL, owner_pid = NULL, owner_host = NULL, heartbeat = NULL"
                " WHERE id = ? AND owner_token = ?",
                (state, error, time.time(), state, job_id, owner.token))


_VERBS = {JobState.CANCELLED: "cancel", JobState.PAUSED: "pause", JobState.QUEUED: "retry"}


def _orphaned(row: sqlite3.Row, me: Owner, now: float) -> bool:
    """Whether the runner of a running job is gone: dead pid here, or a stale heartbeat."""
    if row["heartbeat"] is None or now - row["heartbeat"] > STALE_AFTER_S:
        return True
    if row["owner_host"] != me.host:
        return False
    if row["owner_pid"] == me.pid:
        return row["owner_token"] not in _LIVE_TOKENS
    return not _pid_alive(row["owner_pid"])


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    if os.name != "posix":  # os.kill would terminate the process on Windows: trust the heartbeat
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
