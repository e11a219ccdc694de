"""``restorer cluster run`` on a local Ray (loopback, 2 CPUs): the same outputs as ``queue run``,
a broken job failing alone, progress in the queue, a worker and the head killed mid-job."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_tiny_flow, synthetic_photo
from restorer_app.cli_queue import describe_progress
from restorer_app.flow.weights import save_model
from restorer_app.imaging.provenance import provenance_path
from restorer_app.jobs import cluster
from restorer_app.jobs.queue import JobQueue, JobState
from restorer_app.jobs.runner import JobRunner
from restorer_app.restore.settings import RestoreSettings

ray = pytest.importorskip("ray", reason="the cluster extra is not installed (pip install -e '.[cluster]')")

pytestmark = pytest.mark.usefixtures("one_thread")  # the reference runs, like the workers, on one thread


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(make_tiny_flow(patch_size=16, hidden=4, levels=2, steps=1), path)
    return path


@pytest.fixture(scope="module")
def pool():
    """Two CPU workers of one torch thread each, as ``cluster run --local 2`` makes them."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, logging_level=logging.WARNING)
    pool = cluster.WorkerPool(2)
    pool.describe()  # started
    yield pool
    pool.close()
    ray.shutdown()


def fast_settings(model_path, batch_size: int = 8) -> dict:
    """Tiny model, CPU, fp32: a few patches per batch, so every job has several batches."""
    return RestoreSettings(preset="fast", device="cpu", model_path=str(model_path), batch_size=batch_size,
                           mixed_precision=False).to_dict()


def save_photo(path: Path, size: int, seed: int) -> Path:
    Image.fromarray(np.round(synthetic_photo(size, size, seed) * 255).astype(np.uint8)).save(path)
    return path


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def queue_with(home: Path, jobs: list[tuple[Path, Path]], settings: dict) -> JobQueue:
    q = JobQueue(home)
    for src, out in jobs:
        q.add(src, out, settings=settings)
    return q


def test_three_jobs_match_queue_run_and_a_broken_one_fails_alone(tmp_path, model_path, pool):
    sources = [save_photo(tmp_path / f"scan{i}.png", size, seed=i) for i, size in enumerate((48, 64, 40))]
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    sources.insert(1, tmp_path / "broken.png")
    settings = fast_settings(model_path)
    reference = queue_with(tmp_path / "local", [(s, tmp_path / f"local-{s.name}") for s in sources], settings)
    JobRunner(reference).run(until_empty=True)
    q = queue_with(tmp_path / "cluster", [(s, tmp_path / f"cluster-{s.name}") for s in sources], settings)
    listed: list[str] = []  # what `restorer queue list` shows meanwhile

    def on_event(event: dict) -> None:
        if event["type"] == "patch_done":
            listed.append(describe_progress(JobQueue(tmp_path / "cluster").get(event["job_id"])))

    cluster.run(q, pool, jobs_at_once=3, on_event=on_event)

    for local, remote in zip(reference.list(), q.list()):
        assert (remote.state, remote.error, remote.patches_done) == (local.state, local.error, local.patches_done)
        if local.state is JobState.DONE:
            assert np.array_equal(pixels(remote.output_path), pixels(local.output_path))
    broken = q.list()[1]
    assert broken.state is JobState.FAILED and "damaged PNG" in broken.error and "\n" not in broken.error
    assert [job.state for job in q.list()].count(JobState.DONE) == 3
    assert any(re.fullmatch(r"\d+\.\d/\d+ ETA \d\d:\d\d", line) for line in listed), listed[-5:]


def test_a_worker_killed_mid_job_costs_only_its_batches(tmp_path, model_path, pool):
    src = save_photo(tmp_path / "scan.png", 64, seed=5)  # 64 patches in 8 batches
    settings = fast_settings(model_path)
    JobRunner(queue_with(tmp_path / "local", [(src, tmp_path / "local.png")], settings)).run(until_empty=True)
    q = queue_with(tmp_path / "cluster", [(src, tmp_path / "cluster.png")], settings)
    before = [worker["pid"] for worker in pool.describe()]
    killed: list[int] = []

    def on_event(event: dict) -> None:
        if event["type"] == "patch_done" and not killed:
            victim = max(range(len(before)), key=pool.busy.__getitem__)
            assert pool.busy[victim] > 0  # it holds a batch: solving it or next in its line
            killed.append(victim)
            os.kill(before[victim], signal.SIGKILL)

    cluster.run(q, pool, jobs_at_once=1, on_event=on_event)
    job = q.get(1)
    assert job.state is JobState.DONE, job.error
    after = [worker["pid"] for worker in pool.describe()]
    assert after[killed[0]] != before[killed[0]]  # Ray restarted it and retried its batches
    assert np.array_equal(pixels(tmp_path / "cluster.png"), pixels(tmp_path / "local.png"))


def head(home: Path, threads: int | None = 1) -> subprocess.Popen:
    """``restorer cluster run --local 2`` in a session of its own, so what it started can be found;
    the head on ``threads`` (None: as a fresh machine has them). Its workers solve on one each."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["RESTORER_HOME"] = str(home)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.Popen([sys.executable, "-m", "restorer_app.cli", "cluster", "run", "--local", "2", "--until-empty"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.mark.parametrize("threads", [None, 1], ids=["default-threads", "1-thread"])
def test_head_killed_and_restarted_resumes_from_stored_patches(tmp_path, model_path, threads):
    src = save_photo(tmp_path / "scan.png", 64, seed=6)
    settings = fast_settings(model_path, batch_size=4)  # 16 batches; the kill falls inside some
    JobRunner(queue_with(tmp_path / "local", [(src, tmp_path / "local.png")], settings)).run(until_empty=True)
    q = queue_with(tmp_path / "cluster", [(src, tmp_path / "cluster.png")], settings)
    victim = head(tmp_path / "cluster", threads)
    deadline = time.monotonic() + 90
    try:
        while q.get(1).patches_done < 8:
            assert victim.poll() is None and time.monotonic() < deadline, victim.communicate()
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    finally:
        time.sleep(1)
        os.killpg(victim.pid, signal.SIGKILL)  # Ray's helper processes that outlive their head
    job = q.get(1)
    stored = len(list(Path(job.work_dir).glob("patch-*.npy")))
    assert job.state is JobState.RUNNING and 8 <= stored < job.patches_total == 64
    assert not (tmp_path / "cluster.png").exists()

    again = head(tmp_path / "cluster", threads)
    out, err = again.communicate(timeout=90)
    assert again.returncode == 0, err
    assert f"resuming: {stored} patches stored" in out
    assert f"({64 - stored} patches computed, {stored} from store)" in out
    assert q.get(1).state is JobState.DONE and not Path(job.work_dir).exists()
    record = json.loads(provenance_path(tmp_path / "cluster.png").read_text())
    assert record["extra"]["plan"]["threads"] == 1  # the workers' count, whatever the head's
    assert np.array_equal(pixels(tmp_path / "cluster.png"), pixels(tmp_path / "local.png"))
