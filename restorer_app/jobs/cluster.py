"""Run the queue on a Ray cluster: this process is the head, Ray actors solve the batches.

The head runs several :class:`JobRunner` on threads, so claiming, heartbeats, progress in the
database, pause and cancel, the patch store, assembly and the outputs are the single-machine
code; only the batches go elsewhere. A batch travels as a :class:`BatchWork` (its tiles' windows,
plain arrays) to an actor, one per GPU or CPU slot, which solves it with the same
:func:`solve_work` and a model it is sent once; the patches come back to the head and are stored
and blended in batch order. So outputs equal ``restorer queue run``'s bit for bit on the same
device and thread count (a CPU actor runs one torch thread, so N of them share N cores).

Faults: an actor that dies mid-batch is restarted by Ray and its batches are retried on it (a
batch that kills its worker MAX_TASK_RETRIES + 1 times fails its job alone). Actors die with the
head; a restarted head claims the orphaned jobs again and resumes from their stored patches.

Ray is imported in this module only, and only inside functions: the app runs without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

import restorer_app
from restorer_app.devices import bf16_supported, describe_devices, resolve_device
from restorer_app.flow.glow import FlowConfig
from restorer_app.flow.weights import default_model_path, load_model, read_metadata
from restorer_app.jobs.queue import JobQueue
from restorer_app.jobs.runner import JobRunner
from restorer_app.restore.pipeline import BatchResult, BatchWork, solve_work
from restorer_app.restore.settings import RestoreSettings
from restorer_app.restore.solver import SolveStopped

#: A job thread waiting for a batch or a free slot polls its stop flag this often (pause/cancel).
POLL_S = 0.1
#: Retries of a batch whose worker died (Ray restarts the actor every time).
MAX_TASK_RETRIES = 2
#: Batches in flight per worker: one solving, the next already there, so no worker waits for the head.
SLOTS_PER_WORKER = 2


class ClusterError(ValueError):
    """Ray missing or a cluster that cannot run the workers asked for (one line, exit status 2)."""


@dataclass(frozen=True)
class ShippedModel:
    """Weights put in Ray's object store once per head; workers fetch them on first use, so they
    need neither the head's files nor the same models folder."""

    key: str  # content hash
    blob: Any  # ray.ObjectRef of the file's bytes (inside a dataclass, so Ray does not fetch it for every call)


class Worker:
    """The body of a Ray actor: one process per GPU or CPU slot, keeping the models it was sent."""

    def __init__(self, threads: int | None):
        from restorer_app import runtime

        runtime.configure()  # as the CLI does (flushing denormals is part of the result)
        if threads:
            torch.set_num_threads(threads)
        self.models: dict[tuple[str, str], torch.nn.Module] = {}

    def describe(self) -> dict:
        return {"host": socket.gethostname(), "pid": os.getpid(), "threads": torch.get_num_threads(),
                "device": describe_devices()[-1]}  # the accelerator where there is one

    def resolve(self, device_name: str) -> tuple[str, bool, int]:
        """The device ``device_name`` means here, whether bf16 pays off on it, and the torch threads
        that solve a batch here (a job records them, so its resumed batches are solved alike)."""
        device = resolve_device(device_name)
        return str(device), bf16_supported(device), torch.get_num_threads()

    def solve(self, model: ShippedModel, device_name: str, work: BatchWork) -> BatchResult | None:
        import ray

        device = resolve_device(device_name)
        try:  # a batch the head gave up on (pause, cancel) stops between two optimiser steps ...
            return solve_work(self._model(model, device), work, device,
                              should_stop=ray.get_runtime_context().is_canceled)
        except SolveStopped:
            return None  # ... and nobody waits for its result

    def _model(self, model: ShippedModel, device: torch.device):
        key = (model.key, str(device))
        if key not in self.models:
            import ray

            with tempfile.TemporaryDirectory(prefix="restorer-model-") as folder:
                path = Path(folder) / "model.safetensors"
                path.write_bytes(ray.get(model.blob))
                self.models[key] = load_model(path, device)
        return self.models[key]


class WorkerPool:
    """The actors and what the job threads share: device answers, shipped models, batch slots."""

    def __init__(self, workers: int, gpus_per_worker: float = 0, threads: int | None = 1):
        import ray

        actor = ray.remote(num_cpus=1, num_gpus=gpus_per_worker, max_restarts=-1,
                           max_task_retries=MAX_TASK_RETRIES)(Worker)
        self.actors = [actor.remote(threads) for _ in range(workers)]
        self.lookahead = SLOTS_PER_WORKER * workers
        self.slots = threading.Semaphore(self.lookahead)  # batches submitted and not yet taken
        self.busy = [0] * workers  # each actor's batches submitted and not yet taken
        self.busy_lock, self.cache_lock = threading.Lock(), threading.Lock()
        self.devices: dict[str, tuple[torch.device, bool, int]] = {}
        self.models: dict[tuple, ShippedModel] = {}

    def describe(self) -> list[dict]:
        """Each worker's host, pid, torch threads and device (waits until they have all started)."""
        return [_get(actor.describe.remote()) for actor in self.actors]

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)

    def solver_for(self, settings: RestoreSettings) -> "RaySolver":
        return RaySolver(self, settings)

    def device(self, name: str) -> tuple[torch.device, bool, int]:
        """What ``name`` (auto, cpu, cuda) means on the workers, whether bf16 pays off there, and
        their torch threads."""
        with self.cache_lock:
            if name not in self.devices:
                device, bf16, threads = _get(self.actors[0].resolve.remote(name))
                self.devices[name] = torch.device(device), bf16, threads
            return self.devices[name]

    def model(self, path: Path) -> ShippedModel:
        import ray

        info = path.stat()
        stamp = (str(path), info.st_size, info.st_mtime_ns)
        with self.cache_lock:
            if stamp not in self.models:
                data = path.read_bytes()
                self.models[stamp] = ShippedModel(hashlib.sha256(data).hexdigest(), ray.put(data))
            return self.models[stamp]

    def reserve(self, wait: bool, should_stop: Callable[[], bool] | None) -> bool:
        """A slot for one more batch; waiting polls ``should_stop`` (SolveStopped)."""
        if not wait:
            return self.slots.acquire(blocking=False)
        while not self.slots.acquire(timeout=POLL_S):
            if should_stop is not None and should_stop():
                raise SolveStopped(0, 0)
        return True

    def submit(self, model: ShippedModel, device_name: str, work: BatchWork) -> "_InFlight":
        """Send a batch (its slot reserved) to the worker with the fewest untaken ones."""
        with self.busy_lock:
            index = min(range(len(self.actors)), key=self.busy.__getitem__)
            self.busy[index] += 1
        try:
            return _InFlight(self, index, self.actors[index].solve.remote(model, device_name, work))
        except BaseException:
            self._taken(index)
            raise

    def _taken(self, index: int) -> None:
        with self.busy_lock:
            self.busy[index] -= 1
        self.slots.release()


class RaySolver:
    """One job's batches on the pool (the Solver of restore_image). The model's metadata is read
    here on the head, so a broken model file fails its job before any batch is sent."""

    def __init__(self, pool: WorkerPool, settings: RestoreSettings):
        self.pool, self.device_name = pool, settings.device
        self.model_path = Path(settings.model_path or default_model_path())
        self.model_info = read_metadata(self.model_path)
        self.patch_size = FlowConfig.from_dict(self.model_info["config"]).patch_size
        self.device, self.bf16, self.threads = pool.device(settings.device)
        self.model = pool.model(self.model_path)
        self.lookahead = pool.lookahead

    def submit(self, make_work: Callable[[], BatchWork], wait: bool,
               should_stop: Callable[[], bool] | None) -> "_InFlight | None":
        if not self.pool.reserve(wait, should_stop):
            return None
        try:
            work = make_work()
        except BaseException:
            self.pool.slots.release()
            raise
        return self.pool.submit(self.model, self.device_name, work)


class _InFlight:
    """A submitted batch; it holds one of the pool's slots until it is taken or cancelled."""

    def __init__(self, pool: WorkerPool, actor: int, ref):
        self.pool, self.actor, self.ref, self.holds_slot = pool, actor, ref, True

    def result(self, steps, should_stop: Callable[[], bool] | None) -> BatchResult:
        import ray

        try:
            while not ray.wait([self.ref], timeout=POLL_S)[0]:
                if should_stop is not None and should_stop():
                    raise SolveStopped(0, 0)
            result = _get(self.ref)
        except BaseException:
            self.cancel()
            raise
        self._release()
        if steps is not None:
            steps.solved_elsewhere()
        return result

    def cancel(self) -> None:
        import ray

        ray.cancel(self.ref)  # waiting: dropped; running: its worker stops between two steps
        self._release()

    def _release(self) -> None:
        if self.holds_slot:
            self.holds_slot = False
            self.pool._taken(self.actor)


def _get(ref):
    """ray.get, with a worker's own exception raised as itself: one line for the queue list."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as failure:
        raise failure.cause from None
    except ray.exceptions.RayActorError:
        raise RuntimeError(f"a cluster worker died on this batch {MAX_TASK_RETRIES + 1} times") from None


@contextlib.contextmanager
def connect(local: int | None = None, address: str | None = None,
            gpus_per_worker: float | None = None) -> Iterator[WorkerPool]:
    """Start Ray on this machine (loopback only) with ``local`` workers, or join the cluster at
    ``address`` with a worker per GPU (``gpus_per_worker`` each) or, without GPUs, per CPU slot;
    the workers are stopped, and a local Ray with them, on exit."""
    try:
        import ray
    except ImportError:
        raise ClusterError('Ray is not installed: pip install -e ".[cluster]"') from None
    common = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if local is not None:
        if local < 1:
            raise ClusterError(f"--local {local}: at least one worker")
        ray.init(address="local", num_cpus=local, _node_ip_address="127.0.0.1", **common)
    else:
        try:  # the workers import this very code, whatever restorer they have installed
            ray.init(address=address, runtime_env={"py_modules": [str(Path(restorer_app.__file__).parent)]}, **common)
        except ConnectionError as exc:
            raise ClusterError(f"cannot join the Ray cluster at {address}: {exc.__cause__ or exc}") from None
    try:
        resources = ray.cluster_resources()
        gpus = resources.get("GPU", 0)
        per_worker = (1 if gpus else 0) if gpus_per_worker is None else gpus_per_worker
        workers = local if local is not None else int(gpus // per_worker if per_worker else resources.get("CPU", 0))
        if workers * per_worker > gpus:
            raise ClusterError(f"{workers} workers with {per_worker:g} GPUs each: the cluster has {gpus:g} GPUs")
        if workers < 1:
            raise ClusterError(f"the cluster has no {'GPU' if per_worker else 'CPU'} for a worker")
        pool = WorkerPool(workers, per_worker, threads=None if per_worker else 1)
        try:
            yield pool
        finally:
            pool.close()
    finally:
        ray.shutdown()


def run(queue: JobQueue, pool: WorkerPool, jobs_at_once: int, until_empty: bool = True,
        on_event: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None) -> None:
    """Run queued jobs, ``jobs_at_once`` at a time (small jobs have fewer batches than there are
    workers), until the queue is empty (``until_empty``) or ``should_stop()``. Ctrl-C pauses the
    running jobs, keeping their finished patches, and is raised again."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def halted() -> bool:
        return stop.is_set() or (should_stop is not None and should_stop())

    def work(runner: JobRunner) -> None:
        try:
            runner.run(until_empty=until_empty)
        except BaseException as exc:  # the database gone, say: the others stop too
            failures.append(exc)
            stop.set()

    threads = [threading.Thread(target=work, name=f"cluster-jobs-{i}", daemon=True,
                                args=(JobRunner(queue, on_event, halted, solver_for=pool.solver_for),))
               for i in range(jobs_at_once)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        stop.set()
        for thread in threads:
            thread.join()
        raise
    if failures:
        raise failures[0]
