"""``restorer queue``: add, list, run, pause, cancel, retry and remove persistent jobs.

The queue lives in RESTORER_HOME (default: the per-user data folder) and is shared with the
GUI, so jobs added here show up there and either side may run them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

from restorer_app.cli_restore import add_restore_options, settings_from_args


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("queue", help="persistent job queue (shared with the GUI)")
    commands = p.add_subparsers(dest="queue_command", required=True)
    add = commands.add_parser("add", help="queue one photo for restoration")
    add_restore_options(add)
    add.set_defaults(func=run_add)
    commands.add_parser("list", help="show the jobs").set_defaults(func=run_list)
    run = commands.add_parser("run", help="run queued jobs (Ctrl-C pauses the current one)")
    run.add_argument("--until-empty", action="store_true", help="return when no job is queued")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=run_jobs)
    for name, help_text in [("pause", "hold a queued job or stop a running one (keeps finished patches)"),
                            ("cancel", "cancel a queued, running or paused job"),
                            ("retry", "queue a failed, cancelled or paused job again (keeps finished patches)"),
                            ("remove", "forget a job that is not running")]:
        c = commands.add_parser(name, help=help_text)
        c.add_argument("job_id", type=int, metavar="ID")
        c.set_defaults(func=run_change, change=name)


def _queue():
    from restorer_app.jobs.queue import JobQueue

    return JobQueue()


def run_add(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    job_id = _queue().add(args.input, args.output, mask_path=args.mask, settings=settings.to_dict(),
                          overwrite=args.overwrite)
    print(f"queued job {job_id}: {args.input} -> {args.output}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    jobs = _queue().list()
    if not jobs:
        print("no jobs")
        return 0
    rows = [("ID", "STATE", "PROGRESS", "INPUT -> OUTPUT", "ERROR")]
    for job in jobs:
        progress = describe_progress(job)
        rows.append((str(job.id), job.state, progress, f"{job.input_path} -> {job.output_path}", job.error or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    return 0


def describe_progress(job, now: float | None = None) -> str:
    """``12/25`` for a job at rest; ``12.4/25 ETA 00:31`` (or ``ETA estimating``) while running,
    from the runner's last write (at most SYNC_EVERY_S old) and its measured ETA."""
    from restorer_app.jobs.queue import JobState
    from restorer_app.progress_bar import _clock

    if job.state is not JobState.RUNNING:
        return f"{job.patches_done}/{job.patches_total}" if job.patches_total else "-"
    done = job.progress if job.progress is not None else float(job.patches_done)
    eta = job.eta_s(now)
    return f"{done:.1f}/{job.patches_total or '?'} ETA {'estimating' if eta is None else _clock(eta)}"


def run_change(args: argparse.Namespace) -> int:
    queue = _queue()
    if args.change == "remove":
        queue.remove(args.job_id)
        print(f"removed job {args.job_id}")
    else:
        job = getattr(queue, args.change)(args.job_id)
        print(f"job {job.id}: {job.state}" + (" (its runner stops within a few seconds; finished patches are kept)"
                                              if args.change in ("pause", "cancel") and job.finished_at is None
                                              else ""))
    return 0


def run_jobs(args: argparse.Namespace) -> int:
    from restorer_app.jobs.runner import JobRunner

    JobRunner(_queue(), on_event=event_printer(args.quiet), progress_events=not args.quiet).run(
        until_empty=args.until_empty)
    return 0


def event_printer(quiet: bool):
    """What ``queue run`` and ``cluster run`` print of a runner's events: a line when a job starts
    and ends, and unless ``quiet`` a progress bar per job."""
    from restorer_app.progress_bar import PatchProgressBar

    bars: dict[int, PatchProgressBar] = {}

    def on_event(event: dict) -> None:
        kind, job_id = event["type"], event["job_id"]
        if kind == "job_started":
            resumed = f" (resuming: {event['stored']} patches stored)" if event["stored"] else ""
            print(f"job {job_id} started: {event['input']} -> {event['output']}{resumed}", flush=True)
            if not quiet:
                bars[job_id] = PatchProgressBar(f"job {job_id} {Path(event['input']).name}")
        elif kind == "patch_done" and job_id in bars:
            bars[job_id].update(event["done"], event["total"], event["from_store"])
        elif kind == "progress" and job_id in bars:
            bars[job_id].step(SimpleNamespace(**event))
        elif kind == "job_done":
            print(f"job {job_id} done: {event['output']} ({event['computed']} patches computed, "
                  f"{event['resumed_from_store']} from store)", flush=True)
        elif kind in ("job_failed", "job_paused", "job_cancelled"):
            if job_id in bars and bars[job_id].last_draw and not bars[job_id].finished:
                sys.stderr.write("\n")
            hint = f" (restorer queue retry {job_id} resumes it)" if kind == "job_paused" else ""
            print(f"job {job_id} {kind.removeprefix('job_')}: {event['error']}{hint}", flush=True)

    return on_event
