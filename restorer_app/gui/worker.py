"""Runs the persistent queue in a QThread with the same Qt-free JobRunner as
``restorer queue run``; runner events come back to the GUI thread as signals.

Stopping is cooperative: ``request_stop`` sets a flag the runner polls before every optimiser
step, so quitting mid-batch pauses the job within about one step (a second or two at most on a
CPU), with the patches of its finished batches on disk; the unfinished batch is dropped.
The runner sends ``progress`` events too (at most 5 a second: ``done`` float, ``total``,
``eta_s``, ``patches_per_s``, ``elapsed_s``) besides ``patch_done``.
"""

from __future__ import annotations

from PySide6.QtCore import QThread, Signal

from restorer_app.gui.messages import short_error


class QueueWorker(QThread):
    event = Signal(object)  # one runner event dict (job_started, patch_done, progress, job_done, ...)
    failed = Signal(str)  # the runner itself could not go on (one line)

    def __init__(self, home=None, threads: int = 0, model=None, parent=None):
        super().__init__(parent)
        self.home, self.threads, self.model = home, threads, model
        self._stop = False

    def request_stop(self) -> None:
        self._stop = True

    @property
    def stopping(self) -> bool:
        return self._stop

    def run(self) -> None:
        from restorer_app import runtime
        from restorer_app.jobs.queue import JobQueue
        from restorer_app.jobs.runner import JobRunner

        try:
            runtime.configure()
            if self.threads > 0:
                import torch

                torch.set_num_threads(self.threads)
            runner = JobRunner(JobQueue(self.home), on_event=self.event.emit,
                               should_stop=lambda: self._stop, model=self.model, progress_events=True)
            runner.run(until_empty=True)
        except Exception as exc:  # shown as one line; the queue keeps the job's state
            self.failed.emit(short_error(exc))
