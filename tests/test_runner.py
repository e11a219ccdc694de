"""restorer_app.jobs.runner in one process: resume after cancel and pause, broken inputs, events."""

from __future__ import annotations

import hashlib
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from conftest import make_tiny_flow, synthetic_photo
from restorer_app.flow.weights import save_model
from restorer_app.jobs.queue import JobQueue, JobState
from restorer_app.jobs.restore_file import restore_file
from restorer_app.jobs.runner import JobRunner, _Tracker
from restorer_app.restore.settings import RestoreSettings


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(make_tiny_flow(patch_size=16, hidden=4, levels=2, steps=1), path)
    return path


def fast_settings(model_path, batch_size: int) -> dict:
    """The quickest real restoration: tiny model, CPU, fp32 (bf16 autocast is slow on CPUs)."""
    return RestoreSettings(preset="fast", device="cpu", model_path=str(model_path), batch_size=batch_size,
                           mixed_precision=False).to_dict()


def save_photo(path: Path, height: int, width: int, seed: int = 0) -> Path:
    Image.fromarray(np.round(synthetic_photo(height, width, seed) * 255).astype(np.uint8)).save(path)
    return path


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cancelled_and_paused_jobs_resume_to_identical_output(tmp_path, model_path, thread_count):
    src = save_photo(tmp_path / "scan.png", 16, 16)  # 4 patches, 2 batches of 2
    settings = fast_settings(model_path, batch_size=2)
    reference = restore_file(src, tmp_path / "reference.png", RestoreSettings.from_dict(settings))
    q = JobQueue(tmp_path / "home")
    cancelled = q.add(src, tmp_path / "a.png", settings=settings)
    paused = q.add(src, tmp_path / "b.png", settings=settings)
    events: list[dict] = []
    stop = {"flag": False}

    def on_event(event):
        events.append(event)
        if event["type"] == "patch_done" and event["done"] == 2:
            if event["job_id"] == cancelled:
                JobQueue(tmp_path / "home").cancel(cancelled)  # as `restorer queue cancel` would
            else:
                stop["flag"] = True  # as the GUI does when it quits

    runner = JobRunner(q, on_event=on_event, should_stop=lambda: stop["flag"])
    runner.run(until_empty=True)
    assert runner.halted
    kinds = [(e["type"], e["job_id"]) for e in events if e["type"] != "patch_done"]
    assert kinds == [("job_started", cancelled), ("job_cancelled", cancelled),
                     ("job_started", paused), ("job_paused", paused)]
    for job_id, state in [(cancelled, JobState.CANCELLED), (paused, JobState.PAUSED)]:
        job = q.get(job_id)
        assert job.state is state and (job.patches_done, job.patches_total) == (2, 4)
        assert len(list(Path(job.work_dir).glob("patch-*.npy"))) == 2
        assert not Path(job.output_path).exists()
        assert (Path(job.work_dir) / "threads.txt").read_text() == str(thread_count)

    q.retry(cancelled)
    q.retry(paused)
    events.clear()
    JobRunner(q, on_event=events.append).run(until_empty=True)
    done = {e["job_id"]: e for e in events if e["type"] == "job_done"}
    started = {e["job_id"]: e for e in events if e["type"] == "job_started"}
    for job_id in (cancelled, paused):
        job = q.get(job_id)
        assert job.state is JobState.DONE and job.patches_done == 4 and job.finished_at is not None
        assert started[job_id]["stored"] == 2
        assert (done[job_id]["computed"], done[job_id]["resumed_from_store"]) == (2, 2)
        assert not Path(job.work_dir).exists()
        assert np.array_equal(pixels(job.output_path), pixels(reference["output"]))
    from_store = [e["from_store"] for e in events if e["type"] == "patch_done" and e["job_id"] == cancelled]
    assert from_store == [True, True, False, False]


def png_with_header(width: int, height: int) -> bytes:
    """A valid PNG header claiming ``width`` x ``height`` pixels, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_broken_inputs_fail_alone_and_good_ones_finish(tmp_path, model_path):
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    whole = {".png": tmp_path / "n.png", ".jpg": tmp_path / "n.jpg", ".tif": tmp_path / "n.tif"}
    Image.fromarray(noise).save(whole[".png"])
    Image.fromarray(noise).save(whole[".jpg"])
    tifffile.imwrite(whole[".tif"], noise, photometric="rgb")
    for ext, path in whole.items():
        (tmp_path / f"cut{ext}").write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not a picture\n")
    (tmp_path / "bomb.png").write_bytes(png_with_header(100_000, 100_000))
    Image.new("L", (1, 1), 77).save(tmp_path / "one.png")
    save_photo(tmp_path / "good.png", 10, 12)
    Image.new("L", (12, 10)).save(tmp_path / "good-mask.png")
    Image.new("L", (5, 5)).save(tmp_path / "small-mask.png")
    tifffile.imwrite(tmp_path / "grey16.tif", (rng.random((9, 9)) * 65535).astype(np.uint16))
    bad_model = tmp_path / "bad.safetensors"
    bad_model.write_bytes(b"definitely not weights")

    settings = fast_settings(model_path, batch_size=64)
    q = JobQueue(tmp_path / "home")
    plan = [  # (input, mask, settings, expected failure or None)
        ("cut.png", None, settings, "truncated"),
        ("one.png", None, settings, None),
        ("cut.jpg", None, settings, "truncated"),
        ("good.png", "good-mask.png", settings, None),
        ("cut.tif", None, settings, "truncated"),
        ("empty.png", None, settings, "empty"),
        ("notes.png", None, settings, "text file"),
        ("good.png", "small-mask.png", settings, "same size"),
        ("bomb.png", None, settings, "megapixels"),
        ("good.png", None, {**settings, "model_path": str(bad_model)}, "safetensors"),
        ("grey16.tif", None, settings, None),
    ]
    inputs = {p for p in tmp_path.iterdir() if p.is_file()}
    before = {p: digest(p) for p in inputs}
    ids = [q.add(tmp_path / name, tmp_path / f"out{i}{Path(name).suffix}", mask_path=mask and tmp_path / mask,
                 settings=s) for i, (name, mask, s, _) in enumerate(plan)]
    events: list[dict] = []
    JobRunner(q, on_event=events.append).run(until_empty=True)

    failures = {e["job_id"]: e["error"] for e in events if e["type"] == "job_failed"}
    for job_id, (name, mask, _, expected) in zip(ids, plan):
        job = q.get(job_id)
        if expected is None:
            assert job.state is JobState.DONE, (name, job.error)
            assert pixels(job.output_path).shape[:2] == pixels(job.input_path).shape[:2]
        else:
            assert job.state is JobState.FAILED, name
            assert job.error == failures[job_id] and "\n" not in job.error
            assert expected in job.error, (name, job.error)
            assert not Path(job.output_path).exists()
    assert {p: digest(p) for p in inputs} == before


def test_run_without_until_empty_waits_for_new_jobs(tmp_path, model_path):
    q = JobQueue(tmp_path / "home")
    finished = threading.Event()
    runner = JobRunner(q, on_event=lambda e: e["type"] == "job_done" and finished.set(),
                       should_stop=finished.is_set, poll_interval=0.05)
    thread = threading.Thread(target=runner.run, kwargs={"until_empty": False})
    thread.start()
    time.sleep(0.3)  # the queue is empty: the runner keeps polling instead of returning
    assert thread.is_alive()
    job_id = q.add(save_photo(tmp_path / "late.png", 8, 8), tmp_path / "late-out.png",
                   settings=fast_settings(model_path, batch_size=1))
    thread.join(timeout=60)
    assert not thread.is_alive() and q.get(job_id).state is JobState.DONE


def test_a_timed_progress_write_does_not_hide_a_cancel_from_the_batch_end():
    """Slow patches make a timed write happen mid-batch; the batch end must still read the state."""

    class Database:
        def __init__(self):
            self.state, self.reads = JobState.RUNNING, 0

        def report(self, *args):
            self.reads += 1
            return self.state

    database = Database()
    tracker = _Tracker(database, 1, owner=None)
    tracker.sync(force=True)  # the plan
    tracker.done, tracker.fresh = 2, True  # a patch was computed ...
    tracker.last = float("-inf")  # ... slowly enough for a timed write
    tracker.sync()
    database.state = JobState.CANCELLED  # `restorer queue cancel` from another process
    assert tracker.sync(force=tracker.fresh) is JobState.CANCELLED and database.reads == 3


def test_cancel_from_another_connection_and_quit_stop_mid_batch_within_two_seconds(tmp_path, model_path, monkeypatch):
    import re

    from restorer_app.cli_queue import describe_progress
    from restorer_app.restore.settings import PRESETS

    monkeypatch.setitem(PRESETS, "slow", dict(PRESETS["fast"], stages=[(1, 20), (2, 800)]))  # batches of seconds
    settings = {**fast_settings(model_path, batch_size=2), "preset": "slow"}
    src = save_photo(tmp_path / "scan.png", 16, 16)  # 4 patches, 2 batches of 2
    home = tmp_path / "home"
    q = JobQueue(home)
    cancelled = q.add(src, tmp_path / "a.png", settings=settings)
    paused = q.add(src, tmp_path / "b.png", settings=settings)
    events: list[tuple[float, dict]] = []
    quit_now = threading.Event()
    runner = JobRunner(q, on_event=lambda e: events.append((time.monotonic(), e)), should_stop=quit_now.is_set,
                       progress_events=True)
    thread = threading.Thread(target=runner.run, kwargs={"until_empty": True}, daemon=True)

    def wait_for(condition, timeout=90.0):
        deadline = time.monotonic() + timeout
        while not condition():
            assert thread.is_alive() and time.monotonic() < deadline
            time.sleep(0.01)

    def ended(kind, job_id):
        return next((t for t, e in events if e["type"] == kind and e["job_id"] == job_id), None)

    thread.start()
    other = JobQueue(home)  # as `restorer queue list` / `restorer queue cancel` in another process
    wait_for(lambda: (other.get(cancelled).progress or 0) > 2.1)  # well into the second batch
    job = other.get(cancelled)
    assert job.state is JobState.RUNNING and job.progress % 1 != 0 and job.eta_s() is not None
    assert re.fullmatch(r"2\.\d/4 ETA \d\d:\d\d", describe_progress(job))
    asked = time.monotonic()
    other.cancel(cancelled)
    wait_for(lambda: ended("job_cancelled", cancelled) is not None)
    assert ended("job_cancelled", cancelled) - asked < 2.0

    wait_for(lambda: any(e["type"] == "progress" and e["job_id"] == paused and 0.2 < e["done"] < 1 for _, e in events))
    asked = time.monotonic()
    quit_now.set()  # as the GUI does when it quits
    thread.join(timeout=30)
    assert not thread.is_alive() and ended("job_paused", paused) - asked < 2.0

    for job_id, state, kept in [(cancelled, JobState.CANCELLED, 2), (paused, JobState.PAUSED, 0)]:
        job = q.get(job_id)
        assert job.state is state and job.patches_done == kept and (job.progress, job.eta_at) == (None, None)
        assert len(list(Path(job.work_dir).glob("patch-*.npy"))) == kept
    progress = [e for _, e in events if e["type"] == "progress" and e["job_id"] == cancelled]
    done = [e["done"] for e in progress]
    assert done == sorted(done) and any(0 < d < 2 for d in done) and any(2 < d < 4 for d in done)
    assert progress[0]["eta_s"] is None and any(e["eta_s"] is not None for e in progress)
    assert [e["done"] for _, e in events if e["type"] == "patch_done" and e["job_id"] == cancelled] == [1, 2]
