"""Progress a person can trust: within a batch, a measured ETA, stops between two optimiser steps."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import threading
import time

import numpy as np
import pytest
import torch

from conftest import DictStore, make_tiny_flow, synthetic_photo
from restorer_app.jobs.queue import JobQueue, JobState, Owner
from restorer_app.progress_bar import PatchProgressBar
from restorer_app.restore import pipeline
from restorer_app.restore.pipeline import RestoreCancelled, StepProgress, restore_image
from restorer_app.restore.settings import PRESETS, RestoreSettings
from restorer_app.restore.solver import SolveStopped, solve_batch

FAST = RestoreSettings(preset="fast", device="cpu", mixed_precision=False)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    return make_tiny_flow(hidden=8, levels=2, steps=1)


def test_progress_moves_within_a_single_batch(model):
    photo = synthetic_photo(40, 40)  # 25 patches, one batch (64 on the CPU)
    steps: list[StepProgress] = []
    first_patch_at = []
    restore_image(photo, None, FAST, model=model, on_step=steps.append,
                  on_progress=lambda p: first_patch_at.append(len(steps)))
    per_run = sum(n for _, n in PRESETS["fast"]["stages"])
    assert first_patch_at[0] >= per_run  # every step was reported before the batch ended ...
    inside = steps[: first_patch_at[0]]
    assert len({round(s.done, 6) for s in inside}) >= per_run  # ... each one moving the count
    done = [s.done for s in steps]
    assert done == sorted(done) and done[-1] == steps[-1].total == 25
    assert all(s.eta_s is None for s in steps[: pipeline.ETA_WARMUP_STEPS + pipeline.ETA_MIN_STEPS])
    assert steps[1].estimating
    measured = steps[pipeline.ETA_WARMUP_STEPS + pipeline.ETA_MIN_STEPS + 1]
    assert measured.eta_s is not None and measured.eta_s > 0 and measured.patches_per_s > 0
    assert steps[-1].eta_s == 0.0
    assert [s.batch_steps_done for s in inside[1:]] == list(range(1, per_run + 1))


def test_eta_is_seconds_per_step_times_steps_left():
    """A fake clock: 0.5 s per step, 3 batches of 10 steps (the last one short of tiles)."""
    plan = pipeline.Plan(lam=1.0, sigma=0.0, paste_known=False, batch_size=4, device="cpu", mixed_precision=False,
                         patches=10, schedule={"stages": [(1, 4), (2, 6)]})
    now = [100.0]
    seen: list[StepProgress] = []
    runs = [(4, 10), (4, 10), (2, 10)]  # slices of 4 tiles, 10 steps a run
    reporter = pipeline._StepReporter(seen.append, plan, total=10, runs=runs, started=100.0, clock=lambda: now[0])
    reporter.start_batch(0, 4)
    assert seen[-1].eta_s is None and seen[-1].done == 0
    on_step = reporter.for_chunk(0, 4)
    for k in range(1, 11):
        now[0] += 0.5
        on_step(k, 10)
    last = seen[-1]
    assert last.done == 4.0 and last.elapsed_s == pytest.approx(5.0)
    assert last.eta_s == pytest.approx(0.5 * 20)  # two more batches of 10 steps
    assert last.patches_per_s == pytest.approx(4 / 10 / 0.5)
    mid = seen[5]  # after step 5: 5 left here + 20
    assert mid.done == pytest.approx(2.0) and mid.eta_s == pytest.approx(0.5 * 25)


def test_output_with_callbacks_is_bitwise_the_output_without(model):
    photo = synthetic_photo(24, 24, seed=3)  # 9 patches
    mask = np.zeros(photo.shape[:2], bool)
    mask[3:8, 2:7] = True
    for settings in (RestoreSettings(preset="fast", device="cpu", mixed_precision=False, batch_size=3),
                     RestoreSettings(preset="fast", device="cpu", mixed_precision=False, scope="image")):
        plain = restore_image(photo, mask, settings, model=model)
        polls = []
        watched = restore_image(photo, mask, settings, model=model, on_step=lambda p: None,
                                on_progress=lambda p: None, should_stop=lambda: polls.append(1) and False)
        assert np.array_equal(plain, watched)
        assert len(polls) >= sum(steps for _, steps in PRESETS["fast"]["stages"])  # per step, not per batch


def test_a_stop_requested_mid_batch_ends_within_two_seconds_and_the_rest_resumes(model, monkeypatch):
    monkeypatch.setitem(PRESETS, "slow", dict(PRESETS["fast"], stages=[(1, 10), (2, 10), (3, 150)]))
    settings = RestoreSettings(preset="slow", device="cpu", mixed_precision=False, batch_size=4)
    photo = synthetic_photo(20, 20, seed=1)  # 9 patches: batches of 4, 4, 1
    uninterrupted = restore_image(photo, None, settings, model=model)

    store, latest, requested = DictStore(), [0.0], threading.Event()
    asked_at = []

    def request_mid_second_batch():  # as another thread would (the GUI, Ctrl-C in a CLI, a cancel)
        while latest[0] < 4.5:
            time.sleep(0.005)
        asked_at.append(time.monotonic())
        requested.set()

    thread = threading.Thread(target=request_mid_second_batch, daemon=True)
    thread.start()
    with pytest.raises(RestoreCancelled) as stopped:
        restore_image(photo, None, settings, model=model, patch_store=store, should_stop=requested.is_set,
                      on_step=lambda p: latest.__setitem__(0, p.done))
    took = time.monotonic() - asked_at[0]
    thread.join()
    assert took < 2.0, took
    assert store.puts == 4 and (stopped.value.done, stopped.value.total) == (4, 9)  # the first batch is kept
    assert latest[0] < 8  # the stop came in the middle of the second batch

    resumed = restore_image(photo, None, settings, model=model, patch_store=store)
    assert store.puts == 9 and np.array_equal(resumed, uninterrupted)


def test_solver_counts_retry_steps_and_a_stop_leaves_no_autocast_behind():
    model = make_tiny_flow(hidden=4, levels=2, steps=1)
    x_hat = torch.rand(3, 3, 16, 16) - 0.5
    lam = torch.full((3,), 100.0)
    lam[1] = float("inf")  # diverges on every attempt: 2 retries
    calls = []
    solve_batch(model, x_hat, torch.ones(3, 1, 16, 16), x_hat.clone(), lam, [(1, 2), (2, 3)], max_retries=2,
                on_step=lambda d, t: calls.append((d, t)))
    assert [d for d, _ in calls] == list(range(1, 16)) and calls[-1] == (15, 15)
    assert {t for _, t in calls} == {5, 10, 15}  # the total grows by one schedule per retry

    with pytest.raises(SolveStopped):
        solve_batch(model, x_hat, torch.ones(3, 1, 16, 16), x_hat.clone(), torch.full((3,), 100.0), [(1, 5), (2, 5)],
                    fp32_tail=2, autocast_dtype=torch.bfloat16, should_stop=lambda: len(calls) > 17,
                    on_step=lambda d, t: calls.append((d, t)))
    assert all(getattr(m, "autocast_dtype", None) is None for m in model.modules())


def test_progress_bar_shows_fractions_speed_and_eta_at_once():
    now = [0.0]
    out = io.StringIO()
    bar = PatchProgressBar("scan.png", stream=out, clock=lambda: now[0])
    now[0] = 0.1
    bar.step(StepProgress(0.0, 25, 0.1, None, None))
    assert "0.0/25 patches" in out.getvalue() and "ETA estimating" in out.getvalue()
    now[0] = 1.5
    bar.step(StepProgress(1.3, 25, 1.5, 31.0, 0.77))
    line = out.getvalue().split("\r")[-1]
    assert "1.3/25 patches" in line and "0.77 patches/s" in line and "ETA 00:31" in line
    bar.update(25, 25, False)  # patch events do not draw over the step-fed line
    now[0] = 40.0
    bar.step(StepProgress(25.0, 25, 40.0, 0.0, 0.8))
    assert out.getvalue().endswith("done in 00:40\n")


def test_old_queue_databases_gain_the_progress_columns(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with contextlib.closing(sqlite3.connect(home / "queue.sqlite3")) as db:  # schema 1 as first shipped
        db.executescript("""
            CREATE TABLE schema_version (version INTEGER NOT NULL);
            INSERT INTO schema_version VALUES (1);
            CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, input_path TEXT NOT NULL, mask_path TEXT,
                output_path TEXT NOT NULL, settings TEXT NOT NULL, overwrite INTEGER NOT NULL DEFAULT 0,
                state TEXT NOT NULL DEFAULT 'queued', patches_done INTEGER NOT NULL DEFAULT 0,
                patches_total INTEGER NOT NULL DEFAULT 0, error TEXT, created_at REAL NOT NULL, started_at REAL,
                finished_at REAL, position INTEGER NOT NULL, work_dir TEXT NOT NULL DEFAULT '', owner_token TEXT,
                owner_pid INTEGER, owner_host TEXT, heartbeat REAL);
            INSERT INTO jobs (input_path, output_path, settings, created_at, position, patches_done, patches_total)
                VALUES ('/in.png', '/out.png', '{}', 0, 0, 3, 9);
        """)
        db.commit()
    q = JobQueue(home)
    JobQueue(home)  # a second opening finds the columns there
    (job,) = q.list()
    assert (job.patches_done, job.progress, job.eta_at) == (3, None, None)
    owner = Owner()
    assert q.claim(owner).id == job.id
    assert q.report(job.id, owner, 3, 9, progress=3.25, eta_s=60.0) is JobState.RUNNING
    running = q.get(job.id)
    assert running.progress == 3.25 and 59.0 < running.eta_s() <= 60.0
    q.report(job.id, owner)  # a heartbeat keeps both
    assert q.get(job.id).progress == 3.25 and q.get(job.id).eta_at == running.eta_at
    q.report(job.id, owner, progress=4.0, eta_s=None)  # back to estimating
    assert q.get(job.id).eta_s() is None and q.get(job.id).progress == 4.0
    q.finish(job.id, owner, JobState.PAUSED)
    assert (q.get(job.id).progress, q.get(job.id).eta_s()) == (None, None)


def test_queue_panel_shows_moving_progress_and_eta(qapp, tmp_path):
    from restorer_app.gui.queue_panel import JobTableModel

    q = JobQueue(tmp_path / "home")
    src = tmp_path / "scan.png"
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src)
    job_id = q.add(src, tmp_path / "out.png")
    owner = Owner()
    q.claim(owner)
    q.report(job_id, owner, 2, 25, progress=2.5, eta_s=125.0)  # another process runs it
    model = JobTableModel()
    model.set_jobs(q.list())
    cell = lambda column: model.data(model.index(0, ["#", "File", "State", "Progress", "Speed", "ETA"].index(column)))
    assert cell("Progress") == "2.5 / 25 patches" and cell("ETA") in ("2 min 5 s", "2 min 4 s")
    model.step({"type": "progress", "job_id": job_id, "done": 12.4, "total": 25, "eta_s": None,
                "patches_per_s": None, "elapsed_s": 3.0})
    assert cell("Progress") == "12.4 / 25 patches" and cell("ETA") == "estimating…"
    model.step({"type": "progress", "job_id": job_id, "done": 12.6, "total": 25, "eta_s": 31.0,
                "patches_per_s": 0.4, "elapsed_s": 3.5})
    assert cell("Progress") == "12.6 / 25 patches" and cell("ETA") in ("31 s", "30 s")
    assert cell("Speed") == "0.40 patches/s"


def test_a_stop_lands_inside_an_optimiser_step(monkeypatch):
    """A 64-patch step takes seconds on a busy CPU: the flag is also read between the flow's layers."""
    from restorer_app.restore import solver

    monkeypatch.setattr(solver, "INNER_POLL_S", 0.0)
    objective, in_step = solver._objective, []

    def marked_objective(*args):
        in_step.append(1)  # step 1 has begun (after its own stop poll)
        return objective(*args)

    monkeypatch.setattr(solver, "_objective", marked_objective)
    model = make_tiny_flow(hidden=4, levels=2, steps=1)
    x_hat = torch.rand(2, 3, 16, 16) - 0.5
    steps = []
    with pytest.raises(SolveStopped) as stopped:
        solve_batch(model, x_hat, torch.ones(2, 1, 16, 16), x_hat.clone(), torch.full((2,), 100.0), [(1, 5), (2, 5)],
                    on_step=lambda d, t: steps.append(d), should_stop=lambda: bool(in_step))
    assert steps == [] and len(in_step) == 1 and stopped.value.steps_done == 0  # ended inside step 1
    assert all(not m._forward_hooks for m in model.modules())  # the polling hooks are gone again


def test_progress_stays_monotonic_when_out_of_memory_splits_a_batch(monkeypatch):
    model = make_tiny_flow(hidden=4, levels=2, steps=1)
    solve_chunk = pipeline._solve_chunk

    def small_memory(model, work, *args):
        if len(work) > 2:
            raise torch.cuda.OutOfMemoryError("pretend")
        return solve_chunk(model, work, *args)

    monkeypatch.setitem(PRESETS, "short", dict(PRESETS["fast"], stages=[(1, 5), (2, 5), (3, 20)], fp32_tail=5))
    photo = synthetic_photo(24, 24, seed=4)  # 9 patches: batches of 5 and 4, solved 2 at a time
    settings = RestoreSettings(preset="short", device="cpu", mixed_precision=False, batch_size=5)
    monkeypatch.setattr(pipeline, "_solve_chunk", small_memory)
    plain = restore_image(photo, None, settings, model=model)
    steps: list[StepProgress] = []
    split = restore_image(photo, None, settings, model=model, on_step=steps.append)
    assert np.array_equal(split, plain)
    done = [s.done for s in steps]
    assert done == sorted(done) and done[-1] == 9 and len(set(done)) > 100
    per_run = 30
    first = next(s for s in steps if s.eta_s is not None)
    assert first.eta_s > 0 and len([s for s in steps if s.batch_steps_done]) == 5 * per_run  # 3 + 2 chunks
