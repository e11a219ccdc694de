"""restorer_app.jobs.queue, patch_store and paths: the persistent queue without any restoring."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from restorer_app.imaging.errors import ImageError
from restorer_app.jobs import queue as queue_module
from restorer_app.jobs.patch_store import DirectoryPatchStore
from restorer_app.jobs.paths import restorer_home
from restorer_app.jobs.queue import JobError, JobQueue, JobState, Owner


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTORER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def photos(tmp_path):
    paths = []
    for i in range(4):
        path = tmp_path / f"scan{i}.png"
        Image.new("RGB", (4, 4), (i, 2 * i, 3 * i)).save(path)
        paths.append(path)
    return paths


def add_all(q: JobQueue, photos) -> list[int]:
    return [q.add(p, p.with_name(p.stem + "-out.png"), settings={"preset": "fast"}) for p in photos]


def test_home_from_environment_or_user_data_dir(home, monkeypatch, tmp_path):
    assert restorer_home() == home.resolve() and home.is_dir()
    monkeypatch.delenv("RESTORER_HOME")
    monkeypatch.setattr("platformdirs.user_data_dir", lambda name, appauthor: str(tmp_path / "data" / name))
    assert restorer_home() == (tmp_path / "data" / "flow-restorer").resolve()


def test_add_list_get(home, photos, tmp_path):
    q = JobQueue()
    mask = tmp_path / "mask.png"
    Image.new("L", (4, 4)).save(mask)
    job_id = q.add(photos[0], tmp_path / "out.tif", mask_path=mask, settings={"preset": "fast", "seed": 3},
                   overwrite=True)
    job = JobQueue(home).get(job_id)  # another handle (as another process would) sees it
    assert job.state is JobState.QUEUED and job.overwrite and job.mask_path == str(mask.resolve())
    assert job.input_path == str(photos[0].resolve()) and job.output_path == str((tmp_path / "out.tif").resolve())
    assert job.settings["preset"] == "fast" and job.settings["seed"] == 3 and job.settings["strength"] == "auto"
    assert job.patches_done == job.patches_total == 0 and job.error is None
    assert job.created_at > 0 and job.started_at is None and job.finished_at is None
    assert job.work_dir.startswith(str(home.resolve())) and str(job_id) in job.work_dir
    assert [j.id for j in q.list()] == [job_id]
    with sqlite3.connect(q.db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(queue_module.SCHEMA_VERSION,)]


def test_add_refuses_what_would_fail(home, photos, tmp_path):
    q = JobQueue()
    out = tmp_path / "out.png"
    with pytest.raises(ImageError, match="file not found"):
        q.add(tmp_path / "missing.png", out)
    with pytest.raises(ImageError, match="overwrite the input"):
        q.add(photos[0], photos[0])
    with pytest.raises(ImageError, match="mask file not found"):
        q.add(photos[0], out, mask_path=tmp_path / "nomask.png")
    with pytest.raises(ImageError, match="already exists"):
        q.add(photos[0], photos[1])
    with pytest.raises(ValueError, match="preset"):
        q.add(photos[0], out, settings={"preset": "warp"})
    with pytest.raises(JobError, match="model file not found"):
        q.add(photos[0], out, settings={"model_path": str(tmp_path / "none.safetensors")})
    first = q.add(photos[0], out)
    with pytest.raises(ImageError, match=f"already the output of job {first}"):
        q.add(photos[1], out)
    assert [j.id for j in q.list()] == [first]


def test_move_reorders_and_claim_follows_order(home, photos):
    q = JobQueue()
    a, b, c, d = add_all(q, photos)
    q.move(d, 0)
    q.move(a, 99)
    q.move(b, 1)
    assert [j.id for j in q.list()] == [d, b, c, a]
    with pytest.raises(JobError, match="no such job"):
        q.move(1234, 0)
    owner = Owner()
    assert [q.claim(owner).id for _ in range(4)] == [d, b, c, a]
    assert q.claim(owner) is None


def test_state_changes(home, photos):
    q = JobQueue()
    a, b, c, _ = add_all(q, photos)
    assert q.cancel(a).state is JobState.CANCELLED
    assert q.get(a).finished_at is not None
    assert q.retry(a).state is JobState.QUEUED and q.get(a).finished_at is None
    assert q.pause(b).state is JobState.PAUSED
    with pytest.raises(JobError, match="cannot pause a paused job"):
        q.pause(b)
    assert q.cancel(b).state is JobState.CANCELLED
    with pytest.raises(JobError, match="cannot cancel a cancelled job"):
        q.cancel(b)
    with pytest.raises(JobError, match="cannot retry a queued job"):
        q.retry(c)
    for change in (q.cancel, q.retry, q.pause, q.remove, q.get):
        with pytest.raises(JobError, match="job 999: no such job"):
            change(999)


def test_running_job_cancel_pause_finish_and_remove(home, photos):
    q = JobQueue()
    a, b, _, _ = add_all(q, photos)
    owner = Owner()
    job = q.claim(owner)
    assert job.id == a and job.state is JobState.RUNNING and job.started_at is not None
    assert q.report(a, owner, 3, 10) is JobState.RUNNING
    assert (q.get(a).patches_done, q.get(a).patches_total) == (3, 10)
    with pytest.raises(JobError, match="cannot remove a running job"):
        q.remove(a)
    assert q.cancel(a).finished_at is None  # the runner finishes it after its batch
    assert q.report(a, owner, 4) is JobState.CANCELLED
    q.finish(a, owner)
    assert q.get(a).state is JobState.CANCELLED and q.get(a).finished_at is not None

    job = q.claim(owner)
    assert job.id == b
    q.pause(b)
    assert q.report(b, owner) is JobState.PAUSED
    q.finish(b, owner)
    assert q.retry(b).state is JobState.QUEUED
    assert q.claim(owner).id == b
    q.finish(b, owner, JobState.FAILED, "bad file")
    failed = q.get(b)
    assert failed.state is JobState.FAILED and failed.error == "bad file"
    assert q.retry(b).error is None


def test_remove_deletes_the_work_folder(home, photos):
    q = JobQueue()
    a, b, _, _ = add_all(q, photos)
    DirectoryPatchStore(q.get(a).work_dir).put(0, np.zeros((2, 2, 3), np.float32))
    q.remove(a)
    assert not (q.work_root / f"job-{a}").exists()
    assert [j.id for j in q.list()] == [b, b + 1, b + 2]


def test_remove_deletes_the_mask_file_the_app_wrote_but_not_the_users(home, photos, tmp_path):
    q = JobQueue()
    ours = q.new_mask_path(photos[0])
    again = q.new_mask_path(photos[0])
    assert ours.parent == home.resolve() / "masks" and again != ours  # one file per job, never shared
    users = tmp_path / "painted.mask.png"
    for mask in (ours, users):
        Image.new("L", (4, 4), 255).save(mask)
    a = q.add(photos[0], tmp_path / "a-out.png", mask_path=ours)
    b = q.add(photos[1], tmp_path / "b-out.png", mask_path=users)
    q.remove(a)
    q.remove(b)
    assert not ours.exists() and users.exists()


def test_concurrent_claims_never_share_a_job(home, photos, tmp_path):
    q = JobQueue()
    ids = add_all(q, photos)
    for i in range(12):
        path = tmp_path / f"more{i}.png"
        Image.new("RGB", (2, 2)).save(path)
        ids.append(q.add(path, tmp_path / f"more{i}-out.png"))
    claimed: list[int] = []

    def worker():
        mine, owner = JobQueue(home), Owner()
        while (job := mine.claim(owner)) is not None:
            claimed.append(job.id)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)


def test_job_of_a_dead_runner_is_claimed_again(home, photos):
    q = JobQueue()
    a, b, _, _ = add_all(q, photos)
    assert q.claim(Owner(pid=os.getppid())).id == a  # a runner that lives
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_owner = Owner(pid=int(dead.stdout))
    assert q.claim(dead_owner).id == b
    q.report(b, dead_owner, 5, 9)
    job = q.claim(Owner())  # b: its runner's pid is gone; a: its runner lives
    assert job.id == b and job.patches_done == 5 and job.patches_total == 9
    assert q.get(a).state is JobState.RUNNING
    assert q.report(b, dead_owner, 6) is None  # the old owner lost it and cannot write
    q.finish(b, dead_owner, JobState.DONE)
    assert q.get(b).state is JobState.RUNNING and q.get(b).patches_done == 5


def test_stale_heartbeat_or_forgotten_token_is_orphaned(home, photos, monkeypatch):
    q = JobQueue()
    a, b, _, _ = add_all(q, photos)
    q.claim(Owner(pid=os.getppid()))
    ghost = Owner()  # this very process, but a runner that no longer exists (pid reuse)
    queue_module._LIVE_TOKENS.discard(ghost.token)
    q.claim(ghost)
    with sqlite3.connect(q.db_path) as db:
        db.execute("UPDATE jobs SET heartbeat = heartbeat - ? WHERE id = ?", (queue_module.STALE_AFTER_S + 1, a))
    me = Owner()
    assert {q.claim(me).id, q.claim(me).id} == {a, b}


def test_newer_schema_is_refused(home):
    q = JobQueue()
    with sqlite3.connect(q.db_path) as db:
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(JobError, match="newer version"):
        JobQueue()


def test_patch_store(tmp_path):
    store = DirectoryPatchStore(tmp_path / "w", key="a")
    assert store.get(0) is None and len(store) == 0
    patch = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
    store.put(7, patch)
    again = DirectoryPatchStore(tmp_path / "w", key="a")
    assert np.array_equal(again.get(7), patch) and again.get(7).dtype == np.float32 and len(again) == 1
    assert not list((tmp_path / "w").glob(".*.tmp"))
    (tmp_path / "w" / ".patch-0000009.npy.dead.tmp").write_bytes(b"half")
    assert not list(DirectoryPatchStore(tmp_path / "w", key="a").folder.glob(".*.tmp"))
    (tmp_path / "w" / "patch-0000008.npy").write_bytes(b"\x93NUMPY garbage")
    assert again.get(8) is None  # a damaged file is computed again, not trusted
    assert len(DirectoryPatchStore(tmp_path / "w", key="b")) == 0  # other input/settings: dropped
