"""Cluster throughput: ``restorer cluster run --local 1`` against ``--local 2``, and what a batch costs.

- Throughput (patches/s) of the same fixed jobs (synthetic scans with noise25, the bundled model,
  one torch thread per worker) through ``queue run`` (one process, one thread), ``cluster run
  --local 1`` and ``--local 2``, each in a fresh RESTORER_HOME as a real command; the rate is
  patches / (last job's end - first job's start) from the queue, so Ray's start is left out (the
  wall time with it is given too). The outputs of all three must be identical.
- Shipping a batch: bytes out and back, the head's pickling, a worker round trip of a same-sized
  no-op (object store, task dispatch, both transfers) against the round trip of the real solve.
- Head costs per patch (patch store write with fsync, blending, unpickling) and per queue write,
  turned into the number of GPU workers at which each would saturate (CLUSTER_SCALING.md).

    python -m benchmarks.cluster_throughput                       # the measurement (about 10 min on 2 cores)
    python -m benchmarks.cluster_throughput --jobs 2 --side 64 --batch-size 4 --reps 1 --out /tmp/c.json  # smoke
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from restorer_app import runtime
from restorer_app.flow.weights import default_model_path
from restorer_app.jobs.patch_store import DirectoryPatchStore
from restorer_app.jobs.queue import JobQueue, JobState, Owner
from restorer_app.restore.degradations import degrade
from restorer_app.restore.pipeline import MARGIN, BatchResult, batch_work, make_plan
from restorer_app.restore.settings import RestoreSettings
from restorer_app.restore.tiling import Assembler, plan_tiles

RESULTS = Path(__file__).parent / "results"
PATCH = 64
LINKS_GBIT = (1, 10, 25)


def scan(side: int, seed: int) -> np.ndarray:
    """A photo-like picture (gradients, discs, texture) with noise25, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    image = np.stack([x / side, y / side, 0.5 + 0.3 * np.sin(x / 5.0) * np.cos(y / 7.0)], axis=2)
    for _ in range(6):
        cy, cx, r = rng.uniform(0, side, 2).tolist() + [rng.uniform(side / 20, side / 5)]
        image[(y - cy) ** 2 + (x - cx) ** 2 < r**2] = rng.uniform(0, 1, 3)
    return degrade(np.clip(image, 0, 1), "noise25", seed)[0]


def make_jobs(folder: Path, count: int, side: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = folder / f"scan{i}.png"
        Image.fromarray(np.round(scan(side, i) * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def run_queue(home: Path, sources: list[Path], settings: dict, command: list[str]) -> dict:
    """Queue the jobs in a fresh home and run ``restorer COMMAND`` on them as its own process."""
    queue = JobQueue(home)
    for src in sources:
        queue.add(src, home / f"out-{src.name}", settings=settings)
    env = {**os.environ, "RESTORER_HOME": str(home), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "restorer_app.cli", *command, "--until-empty"], env=env, check=True,
                   capture_output=True, text=True)
    wall = time.perf_counter() - started
    jobs = queue.list()
    if any(job.state is not JobState.DONE for job in jobs):
        raise RuntimeError(f"{' '.join(command)}: {[(job.id, job.state, job.error) for job in jobs]}")
    patches = sum(job.patches_total for job in jobs)
    span = max(job.finished_at for job in jobs) - min(job.started_at for job in jobs)
    return {"runner": " ".join(command), "patches": patches, "seconds": span, "wall_seconds": wall,
            "patches_per_s": patches / span, "outputs": [job.output_path for job in jobs]}


def same_outputs(runs: list[dict]) -> bool:
    def pixels(path):
        with Image.open(path) as im:
            return np.asarray(im)

    first = runs[0]["outputs"]
    return all(np.array_equal(pixels(a), pixels(b)) for run in runs[1:] for a, b in zip(first, run["outputs"]))


def shipping(source: Path, settings: RestoreSettings, reps: int) -> dict:
    """One batch of the first job: the real solve's round trip on a worker against a no-op's."""
    import ray

    from restorer_app.jobs import cluster

    with Image.open(source) as im:
        colour = np.asarray(im, dtype=np.float32) / 255.0
    grid = plan_tiles(*colour.shape[:2], patch=PATCH, margin=MARGIN)
    tiles = list(grid.tiles())
    plan = make_plan(colour, None, settings, torch.device("cpu"), grid, tiles)
    work = batch_work(colour, None, grid, tiles[: plan.batch_size], plan)
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, logging_level=logging.WARNING)
    try:
        pool = cluster.WorkerPool(1)
        model = pool.model(Path(settings.model_path or default_model_path()))
        actor = pool.actors[0]

        def solve():
            return ray.get(actor.solve.remote(model, "cpu", work))

        result = solve()  # the first one also loads the model
        echo = ray.remote(num_cpus=1)(_echo)
        ray.get(echo.remote(work))
        solve_s = _mean_time(solve, reps)
        echo_s = _mean_time(lambda: ray.get(echo.remote(work)), max(reps, 5))
        pool.close()
    finally:
        ray.shutdown()
    sent, back = pickle.dumps(work, protocol=5), pickle.dumps(result, protocol=5)
    return {"patches": len(work), "bytes_sent": len(sent), "bytes_back": len(back),
            "pickle_s": _mean_time(lambda: pickle.dumps(work, protocol=5), 5),
            "unpickle_result_s": _mean_time(lambda: pickle.loads(back), 5),
            "roundtrip_noop_s": echo_s, "roundtrip_solve_s": solve_s, "overhead_fraction": echo_s / solve_s}


def _echo(work) -> BatchResult:
    """What a worker sends back for ``work``, without solving it."""
    return BatchResult(np.zeros((len(work), PATCH, PATCH, 4), np.float32), [{"loss": 0.0}] * len(work))


def _mean_time(call, reps: int) -> float:
    started = time.perf_counter()
    for _ in range(reps):
        call()
    return (time.perf_counter() - started) / reps


def head_costs(folder: Path, count: int = 200) -> dict:
    """Seconds per patch the head spends whatever the workers do, and per queue write."""
    rng = np.random.default_rng(0)
    patches = rng.random((count, PATCH, PATCH, 4), dtype=np.float32)
    store = DirectoryPatchStore(folder / "store", "bench")
    store_s = _mean_time(lambda: [store.put(i, p) for i, p in enumerate(patches)], 1) / count
    grid = plan_tiles(PATCH * 16, PATCH * 16, patch=PATCH, margin=MARGIN)  # about 300 tiles
    assembler = Assembler(grid, np.empty((grid.height, grid.width, 4), np.float32))
    blend_s = _mean_time(lambda: [assembler.add(t, patches[t.index % count]) for t in grid.tiles()], 1) / len(grid)
    result = pickle.dumps(BatchResult(patches, [{"loss": 0.0}] * count), protocol=5)
    unpickle_s = _mean_time(lambda: pickle.loads(result), 5) / count
    queue = JobQueue(folder / "home")
    owner = Owner()
    source = folder / "one.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(source)
    job = queue.add(source, folder / "one-out.png")
    queue.claim(owner)
    write_s = _mean_time(lambda: queue.report(job, owner, 1, 2, 1.5, 10.0), count)
    return {"store_put_s": store_s, "blend_s": blend_s, "unpickle_s": unpickle_s,
            "per_patch_s": store_s + blend_s + unpickle_s, "queue_write_s": write_s}


def saturation(head: dict, ship: dict) -> dict:
    """GPU workers at which each head resource is used up, with the H100 speeds of results/."""
    bytes_per_patch = (ship["bytes_sent"] + ship["bytes_back"]) / ship["patches"]
    rates = {}
    for preset in ("fast", "standard", "best"):
        path = RESULTS / f"speed_cuda_h100_{preset}.json"
        if path.is_file():
            row = json.loads(path.read_text())["presets"][0]
            rates[preset] = row["patches"] / row["seconds"]
    out = {}
    for preset, rate in rates.items():
        batches_per_s = rate / 256  # the default GPU batch
        out[preset] = {
            "gpu_patches_per_s": rate,
            "head_patches": 1 / head["per_patch_s"] / rate,
            # each job thread writes at most every 0.5 s (SYNC_EVERY_S) and once per batch
            "queue_writes": 1 / head["queue_write_s"] / (2 + batches_per_s),
            **{f"network_{g}_gbit": g * 1e9 / 8 / (rate * bytes_per_patch) for g in LINKS_GBIT},
        }
    return {"bytes_per_patch": bytes_per_patch, "workers_at_saturation": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4, help="scans queued")
    parser.add_argument("--side", type=int, default=336, help="pixels a side (336: 36 patches)")
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=3, help="timed solves of one batch")
    parser.add_argument("--out", type=Path, default=RESULTS / "cluster_throughput.json")
    args = parser.parse_args()
    runtime.configure()
    torch.set_num_threads(1)
    import ray

    settings = RestoreSettings(preset=args.preset, device="cpu", batch_size=args.batch_size)
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as folder:
        folder = Path(folder)
        sources = make_jobs(folder, args.jobs, args.side)
        runs = [run_queue(folder / "queue", sources, settings.to_dict(), ["queue", "run", "-q"])]
        for workers in args.workers:
            runs.append(run_queue(folder / f"cluster{workers}", sources, settings.to_dict(),
                                  ["cluster", "run", "--local", str(workers)]))
        identical = same_outputs(runs)
        ship = shipping(sources[0], settings, args.reps)
        head = head_costs(folder)
    rate = {run["runner"]: run["patches_per_s"] for run in runs}
    cluster_rates = [rate[f"cluster run --local {w}"] for w in args.workers]
    report = {
        "benchmark": "cluster_throughput",
        "device": _cpu_name(), "cores": os.cpu_count(), "torch_threads_per_worker": 1,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "ray": ray.__version__,
                     "numpy": np.__version__},
        "settings": {"jobs": args.jobs, "side": args.side, "batch_size": args.batch_size, "preset": args.preset,
                     "model": str(default_model_path().name), "degradation": "noise25 (synthetic scans)"},
        "runs": [{k: v for k, v in run.items() if k != "outputs"} for run in runs],
        "speedup": cluster_rates[-1] / cluster_rates[0],
        "identical_outputs": identical,
        "shipping": ship,
        "head": head,
        **saturation(head, ship),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    _print(report)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _print(report: dict) -> None:
    print(f"{report['device']}, {report['cores']} cores; {report['settings']}")
    print(f"{'runner':28} {'patches':>8} {'seconds':>9} {'wall s':>8} {'patches/s':>10}")
    for run in report["runs"]:
        print(f"{run['runner']:28} {run['patches']:8d} {run['seconds']:9.1f} {run['wall_seconds']:8.1f} "
              f"{run['patches_per_s']:10.3f}")
    print(f"speedup {report['speedup']:.2f}x, outputs identical: {report['identical_outputs']}")
    s = report["shipping"]
    print(f"batch of {s['patches']}: {s['bytes_sent'] / 1e6:.2f} MB out, {s['bytes_back'] / 1e6:.2f} MB back; "
          f"pickle {s['pickle_s'] * 1e3:.1f} ms; no-op round trip {s['roundtrip_noop_s'] * 1e3:.1f} ms; "
          f"solve round trip {s['roundtrip_solve_s']:.2f} s; overhead {s['overhead_fraction']:.2%}")
    h = report["head"]
    print(f"head per patch: store {h['store_put_s'] * 1e3:.2f} ms, blend {h['blend_s'] * 1e3:.3f} ms, "
          f"unpickle {h['unpickle_s'] * 1e3:.3f} ms; queue write {h['queue_write_s'] * 1e3:.2f} ms")
    for preset, row in report["workers_at_saturation"].items():
        cells = ", ".join(f"{k} {v:.0f}" for k, v in row.items() if k != "gpu_patches_per_s")
        print(f"H100 workers at saturation ({preset}, {row['gpu_patches_per_s']:.1f} patches/s each): {cells}")


if __name__ == "__main__":
    main()
