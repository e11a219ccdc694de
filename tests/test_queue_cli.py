"""``restorer queue``: the command line, two runner processes at once, and kill -9 mid-job."""

from __future__ import annotations

import json
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

from conftest import DEFAULT_THREADS, make_tiny_flow, synthetic_photo
from restorer_app.cli import main
from restorer_app.flow.weights import save_model
from restorer_app.imaging.provenance import provenance_path
from restorer_app.jobs.queue import JobQueue, JobState
from restorer_app.restore.settings import RestoreSettings


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(make_tiny_flow(patch_size=16, hidden=4, levels=2, steps=1), path)
    return path


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RESTORER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def save_photo(path: Path, size: int, seed: int = 0) -> Path:
    Image.fromarray(np.round(synthetic_photo(size, size, seed) * 255).astype(np.uint8)).save(path)
    return path


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def fast_settings(model_path, batch_size: int = 1) -> dict:
    """Tiny model, CPU, fp32, by default one patch per batch: many short batches to stop between."""
    return RestoreSettings(preset="fast", device="cpu", model_path=str(model_path), batch_size=batch_size,
                           mixed_precision=False).to_dict()


def runner(home: Path, threads: int | None = 1) -> subprocess.Popen:
    """``restorer queue run`` in a process of its own, on ``threads`` (None: as a fresh machine has them)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["RESTORER_HOME"] = str(home)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.Popen([sys.executable, "-m", "restorer_app.cli", "queue", "run", "--until-empty", "-q"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out


def test_cli_add_list_and_state_changes(home, tmp_path, capsys, model_path):
    src = save_photo(tmp_path / "scan.png", 8)
    out = tmp_path / "scan-restored.png"
    assert main(["queue", "add", str(src), "-o", str(out), "--preset", "fast", "--model", str(model_path)]) == 0
    assert capsys.readouterr().out.startswith("queued job 1: ")
    assert main(["queue", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["ID", "STATE", "PROGRESS", "INPUT", "->", "OUTPUT", "ERROR"]
    assert table[1].split() == ["1", "queued", "-", str(src), "->", str(out)]
    job = JobQueue().get(1)
    assert job.settings["preset"] == "fast" and job.settings["model_path"] == str(model_path)

    for argv, state in [(["cancel", "1"], "cancelled"), (["retry", "1"], "queued"), (["pause", "1"], "paused")]:
        assert main(["queue", *argv]) == 0
        assert capsys.readouterr().out.strip() == f"job 1: {state}"
    assert main(["queue", "retry", "1"]) == 0
    assert main(["queue", "remove", "1"]) == 0
    capsys.readouterr()
    assert main(["queue", "list"]) == 0 and capsys.readouterr().out.strip() == "no jobs"
    assert main(["queue", "run", "--until-empty"]) == 0  # nothing queued: returns at once


@pytest.mark.parametrize("argv, message", [
    (["add", "{tmp}/missing.png", "-o", "{tmp}/o.png"], "{tmp}/missing.png: file not found"),
    (["add", "{tmp}/scan.png", "-o", "{tmp}/scan.png"], "{tmp}/scan.png: output would overwrite the input"),
    (["add", "{tmp}/scan.png", "-o", "{tmp}/o.png", "--mask", "{tmp}/m.png"], "{tmp}/m.png: mask file not found"),
    (["add", "{tmp}/scan.png", "-o", "{tmp}/o.png", "--strength", "-1"], "strength -1.0: must be a positive number"),
    (["cancel", "7"], "job 7: no such job"),
    (["retry", "7"], "job 7: no such job"),
    (["remove", "7"], "job 7: no such job"),
])
def test_cli_errors_exit_2_with_one_line(home, tmp_path, capsys, argv, message):
    save_photo(tmp_path / "scan.png", 4)
    tmp = str(tmp_path.resolve())
    assert main(["queue", *[a.format(tmp=tmp) for a in argv]]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"restorer: error: {message.format(tmp=tmp)}") and err.count("\n") == 1


def test_two_runner_processes_do_each_job_exactly_once(home, tmp_path, model_path):
    q = JobQueue(home)
    ids = [q.add(save_photo(tmp_path / f"s{i}.png", 16, seed=i), tmp_path / f"o{i}.png", settings=fast_settings(model_path))
           for i in range(8)]
    outputs = [finish(p) for p in [runner(home), runner(home)]]
    done = [re.findall(r"^job (\d+) done:", out, re.M) for out in outputs]
    started = [re.findall(r"^job (\d+) started:", out, re.M) for out in outputs]
    assert all(done), outputs  # both runners took part
    assert sorted(int(i) for d in done for i in d) == ids
    assert sorted(int(i) for s in started for i in s) == ids
    assert all(job.state is JobState.DONE and Path(job.output_path).is_file() for job in q.list())


@pytest.mark.parametrize("threads", [None, 1], ids=["default-threads", "1-thread"])
def test_kill_9_mid_job_then_resume_gives_the_same_output(tmp_path, model_path, threads):
    src = save_photo(tmp_path / "scan.png", 32)  # 16 patches in 4 batches: the kill falls inside one
    homes = {name: tmp_path / name for name in ("reference", "victim")}
    for name, home in homes.items():
        JobQueue(home).add(src, tmp_path / f"{name}.png", settings=fast_settings(model_path, batch_size=4))
    finish(runner(homes["reference"], threads))  # alone: two processes on default threads would fight
    victim = runner(homes["victim"], threads)
    q = JobQueue(homes["victim"])
    deadline = time.monotonic() + 120
    while q.get(1).patches_done < 4:
        assert victim.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    job = q.get(1)
    stored = len(list(Path(job.work_dir).glob("patch-*.npy")))
    assert job.state is JobState.RUNNING and 4 <= stored < job.patches_total == 16
    assert not (tmp_path / "victim.png").exists()

    out = finish(runner(homes["victim"], threads))
    assert f"resuming: {stored} patches stored" in out
    computed = 16 - stored  # a batch stored in part is solved whole; its stored patches are kept
    assert f"({computed} patches computed, {16 - computed} from store)" in out
    record = json.loads(provenance_path(tmp_path / "victim.png").read_text())
    assert (record["patch_stats"]["computed"], record["patch_stats"]["resumed_from_store"]) == (computed, 16 - computed)
    reference = json.loads(provenance_path(tmp_path / "reference.png").read_text())
    assert record["extra"]["plan"]["threads"] == reference["extra"]["plan"]["threads"] == (threads or DEFAULT_THREADS)
    assert q.get(1).state is JobState.DONE and not Path(job.work_dir).exists()
    assert np.array_equal(pixels(tmp_path / "victim.png"), pixels(tmp_path / "reference.png"))


def test_list_shows_fractional_progress_and_eta_of_a_running_job(home, tmp_path, capsys, model_path):
    from restorer_app.jobs.queue import Owner

    src = save_photo(tmp_path / "scan.png", 8)
    q = JobQueue()
    running = q.add(src, tmp_path / "a.png", settings=fast_settings(model_path))
    queued = q.add(src, tmp_path / "b.png", settings=fast_settings(model_path))
    owner = Owner()
    assert q.claim(owner).id == running
    q.report(running, owner, 0, 25, progress=0.3, eta_s=None)  # the first steps: not measured yet

    def rows() -> dict[str, list[str]]:
        assert main(["queue", "list"]) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split() == ["ID", "STATE", "PROGRESS", "INPUT", "->", "OUTPUT", "ERROR"]
        return {line.split()[0]: line.split() for line in table[1:]}

    assert rows()[str(running)][1:5] == ["running", "0.3/25", "ETA", "estimating"]
    q.report(running, owner, 12, 25, progress=12.4, eta_s=95.0)  # as the runner writes it mid-batch
    listed = rows()
    assert listed[str(running)][1:4] == ["running", "12.4/25", "ETA"] and listed[str(running)][4] in ("01:35", "01:34")
    assert listed[str(queued)][1:3] == ["queued", "-"]
    q.finish(running, owner, JobState.PAUSED)
    assert rows()[str(running)][1:3] == ["paused", "12/25"]  # the unfinished batch is not kept
