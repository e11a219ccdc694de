"""Work through the queue: the same code for ``restorer queue run``, the GUI's worker thread and
``restorer cluster run`` (several runners on threads, their batches solved on Ray workers).

Each job goes through :func:`restore_file` with a patch store in the job's work folder, so a
cancelled, paused, crashed or killed job later resumes without computing a finished patch
again, and ends with the same output bytes as an uninterrupted run. Progress (fractional, with
a measured ETA) goes to the database at most every SYNC_EVERY_S and at every batch end, and each
of those writes reads the job's state back: that is how a cancel or pause from another process is
seen, between two optimiser steps, within about a second. ``on_event`` gets the same progress.
A failing job is marked failed with a one-line reason and the runner goes on with the next one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Callable

from restorer_app.flow.weights import WeightsError, default_model_path
from restorer_app.imaging.errors import ImageError
from restorer_app.jobs.patch_store import DirectoryPatchStore
from restorer_app.jobs.queue import Job, JobQueue, JobState, Owner
from restorer_app.jobs.restore_file import restore_file
from restorer_app.restore.pipeline import PatchProgress, RestoreCancelled, Solver, StepProgress
from restorer_app.restore.settings import RestoreSettings
from restorer_app.restore.windows import LAYOUT as WINDOW_LAYOUT

log = logging.getLogger(__name__)

SYNC_EVERY_S = 0.5
#: ``progress`` events at most this often (and at every batch end), so a GUI is not flooded.
PROGRESS_EVERY_S = 0.2
HEARTBEAT_EVERY_S = 10.0


class JobRunner:
    """``on_event(dict)`` is called from the thread that runs; ``should_stop()`` pauses the
    current job (it is polled before every optimiser step, so keep it cheap) and ends :meth:`run`
    (e.g. the GUI quits).

    Events: ``job_started``, ``patch_done`` (every finished patch), ``job_done``, ``job_failed``,
    ``job_paused``, ``job_cancelled``; with ``progress_events`` also ``progress`` (at most every
    PROGRESS_EVERY_S and at every batch end: ``done`` float patches incl. the batch in work,
    ``total``, ``eta_s`` float or None while estimating, ``patches_per_s`` float or None,
    ``elapsed_s``). It is asked for, so listeners written for the old event set are not flooded.

    ``solver_for(settings)`` gives the solver of a job's batches (default: this process, with
    ``model``)."""

    def __init__(self, queue: JobQueue, on_event: Callable[[dict], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, model=None, poll_interval: float = 2.0,
                 progress_events: bool = False, solver_for: Callable[[RestoreSettings], Solver] | None = None):
        self.queue, self.on_event, self.should_stop, self.model = queue, on_event, should_stop, model
        self.poll_interval, self.progress_events, self.solver_for = poll_interval, progress_events, solver_for
        self.owner = Owner()
        self.halted = False

    def run(self, until_empty: bool = True) -> None:
        """Run jobs in queue order; when none is left, return or (not until_empty) wait for more."""
        while not self._halt_requested():
            if self.run_one() is None:
                if until_empty:
                    return
                self._sleep(self.poll_interval)

    def run_one(self) -> Job | None:
        """Claim and run the next job; return it as it ended, or None when nothing is queued."""
        job = self.queue.claim(self.owner)
        if job is None:
            return None
        with _Heartbeat(self.queue, job.id, self.owner):
            self._run(job)
        return self.queue.get(job.id)

    def _halt_requested(self) -> bool:
        if not self.halted and self.should_stop is not None and self.should_stop():
            self.halted = True
        return self.halted

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self._halt_requested():
            time.sleep(min(0.2, seconds))

    def _emit(self, kind: str, job_id: int, **fields) -> None:
        if self.on_event is not None:
            self.on_event({"type": kind, "job_id": job_id, **fields})

    def _run(self, job: Job) -> None:
        tracker = _Tracker(self.queue, job.id, self.owner)

        def on_progress(p: PatchProgress) -> None:
            tracker.done, tracker.fresh = p.done, tracker.fresh or not p.from_store
            tracker.sync()
            self._emit("patch_done", job.id, index=p.index, total=p.total, done=p.done, box=p.box,
                       pixels=p.pixels, from_store=p.from_store)

        last_event = [float("-inf")]

        def on_step(p: StepProgress) -> None:
            tracker.progress, tracker.eta_s = p.done, p.eta_s
            tracker.sync()
            now = time.monotonic()
            if not self.progress_events:
                return
            if now - last_event[0] >= PROGRESS_EVERY_S or p.batch_steps_total == 0 or p.done >= p.total:
                last_event[0] = now
                self._emit("progress", job.id, done=p.done, total=p.total, eta_s=p.eta_s,
                           patches_per_s=p.patches_per_s, elapsed_s=p.elapsed_s)

        def on_plan(plan) -> None:
            tracker.total = plan.patches
            tracker.sync(force=True)

        def stop_now() -> bool:
            """Polled before every batch and every optimiser step, and by ``--mask auto``'s
            detector before each network tile: cheap (a clock read) except for the timed
            database sync, which is forced at the first poll after a batch's patches."""
            state = tracker.sync(force=tracker.fresh)
            return self._halt_requested() or state is not JobState.RUNNING

        try:
            settings = RestoreSettings.from_dict(job.settings)
            store = DirectoryPatchStore(job.work_dir, _store_key(job, settings, self.model))
            self._emit("job_started", job.id, input=job.input_path, output=job.output_path, stored=len(store))
            solver = self.solver_for(settings) if self.solver_for is not None else None
            summary = restore_file(job.input_path, job.output_path, settings, mask_path=job.mask_path,
                                   overwrite=job.overwrite, on_progress=on_progress, should_stop=stop_now,
                                   patch_store=store, on_plan=on_plan, model=self.model, on_step=on_step,
                                   solver=solver)
        except RestoreCancelled as stop:
            self._stopped(job, None if not self.halted else JobState.PAUSED, str(stop))
        except KeyboardInterrupt:
            self._stopped(job, JobState.PAUSED, f"interrupted after {tracker.done} of {tracker.total} patches")
            raise
        except Exception as exc:
            reason = describe_failure(exc)
            self.queue.finish(job.id, self.owner, JobState.FAILED, reason)
            self._emit("job_failed", job.id, error=reason)
        else:
            self.queue.finish(job.id, self.owner, JobState.DONE)
            shutil.rmtree(job.work_dir, ignore_errors=True)
            self._emit("job_done", job.id, **summary)

    def _stopped(self, job: Job, state: JobState | None, why: str) -> None:
        """Let go of a stopped job: paused by our caller, else as the user set it meanwhile."""
        self.queue.finish(job.id, self.owner, state)
        final = self.queue.get(job.id).state
        if final in (JobState.PAUSED, JobState.CANCELLED):
            self._emit("job_paused" if final is JobState.PAUSED else "job_cancelled", job.id, error=why)


class _Tracker:
    """Progress written to the database at most every SYNC_EVERY_S, or at once when forced;
    each write also reads the job's state, which is how a cancel from elsewhere is seen."""

    def __init__(self, queue: JobQueue, job_id: int, owner: Owner):
        self.queue, self.job_id, self.owner = queue, job_id, owner
        self.done, self.total, self.fresh = 0, None, False
        self.progress: float | None = None  # fractional patches done, with its ETA (None: estimating)
        self.eta_s: float | None = None
        self.state: JobState | None = JobState.RUNNING
        self.last = float("-inf")

    def sync(self, force: bool = False) -> JobState | None:
        """``fresh`` (patches computed since the last forced sync) is only cleared by a forced
        one, so a timed write during a batch cannot make the batch end skip its cancel check."""
        now = time.monotonic()
        if force or now - self.last >= SYNC_EVERY_S:
            self.state = self.queue.report(self.job_id, self.owner, self.done, self.total, self.progress, self.eta_s)
            self.last = now
            self.fresh = self.fresh and not force
        return self.state


class _Heartbeat:
    """Beats from a thread of its own, so a long batch does not make a live runner look dead."""

    def __init__(self, queue: JobQueue, job_id: int, owner: Owner):
        self.queue, self.job_id, self.owner = queue, job_id, owner
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-job-{job_id}", daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_EVERY_S):
            try:
                self.queue.report(self.job_id, self.owner)
            except Exception:  # a busy or unreachable database: the next beat tries again
                log.warning("heartbeat for job %s failed", self.job_id, exc_info=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def describe_failure(exc: BaseException) -> str:
    """One line for the queue list: the file and the reason where we know them."""
    if isinstance(exc, MemoryError):
        text = "not enough memory to restore this image"
    elif isinstance(exc, (ImageError, WeightsError, ValueError, OSError)):
        text = str(exc) or type(exc).__name__
    else:
        log.error("job failed with an internal error", exc_info=exc)
        text = f"internal error: {type(exc).__name__}: {exc}"
    return " ".join(text.split())[:500]


def _store_key(job: Job, settings: RestoreSettings, model) -> str:
    """What the stored patches depend on; a change (a replaced input, another model, another window
    layout) drops them."""

    def stamp(path) -> list | str:
        path = Path(path)
        if not path.is_file():
            return str(path)
        info = os.stat(path)
        return [str(path), info.st_size, info.st_mtime_ns]

    model_path = getattr(model, "source_path", None) or settings.model_path or default_model_path()
    parts = {
        "input": stamp(job.input_path),
        "mask": stamp(job.mask_path) if job.mask_path else None,
        "settings": settings.to_dict(),
        "model": stamp(model_path) if model is None or hasattr(model, "source_path") else f"in-memory {id(model)}",
        "layout": WINDOW_LAYOUT,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
