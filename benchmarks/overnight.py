"""An overnight batch, end to end: large scans with realistic dust, hairs and scratches, queued
with ``--mask auto`` (and, with ``--masks auto truth``, with their true masks) and run by ``restorer queue run --until-empty`` as an archivist would.

Each scan is a mosaic of the test split's photos (McMaster18, CBSD68, at their own resolution)
filling ``--megapixels`` at 3:2, each photo damaged by ``restorer_app.damage_sim`` with dust,
hairs, print and film scratches only (0.1-0.4 % of its pixels: a dusty but sound print; no
cracks or tears, which an archivist paints). The queue runs in a child process with its own
``RESTORER_HOME``; the child's peak resident memory comes from ``wait4``.

Per scan: seconds end to end (queue start to finish: reading, detection, solving, writing), the
solve alone (the provenance's duration), seconds per megapixel and per damaged megapixel (of the
true damage), patches solved against tiles in the image, and the share of the true damage that
the detected mask covered (the restoration cannot be faster than the damage it misses).
``--whole-image-side S`` also times cleaning every pixel (``--scope image``) on an S x S crop of
the first scan, in process: seconds per megapixel.
Projected scans per 12-hour night = 43,200 s / mean seconds per scan.

    python -m benchmarks.overnight --megapixels 4 --scans 2 --presets fast standard --masks auto truth --whole-image-side 512
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.child_process import run_restorer
from benchmarks.datasets import load_eval_set
from benchmarks.results_file import write_result
from restorer_app.damage_sim import SIM_VERSION, SimSpec, default_shape_library, simulate
from restorer_app.jobs.queue import JobQueue
from restorer_app.restore.pipeline import restore_image
from restorer_app.restore.settings import RestoreSettings

NIGHT_S = 12 * 3600
DAMAGE = SimSpec.only("dust", "hair", "print_scratch", "film_scratch", fraction=(0.001, 0.004), tone="keep",
                      jpeg=None)


def make_scan(megapixels: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 3:2 mosaic of damaged test photos (uint8 RGB) and its true damage mask (bool)."""
    height = int(round(math.sqrt(megapixels * 1e6 / 1.5)))
    width = int(round(height * 1.5))
    photos = load_eval_set("mcmaster18") + load_eval_set("cbsd68")
    rng = np.random.default_rng(seed)
    shapes = default_shape_library()
    scan = np.zeros((height, width, 3), np.uint8)
    truth = np.zeros((height, width), bool)
    y = 0
    while y < height:
        x, row_height = 0, 0
        while x < width:
            photo = photos[int(rng.integers(len(photos)))].image
            if rng.random() < 0.5:
                photo = photo.transpose(1, 0, 2)
            damaged = simulate(photo, rng, DAMAGE, shapes)
            h, w = min(photo.shape[0], height - y), min(photo.shape[1], width - x)
            scan[y : y + h, x : x + w] = np.round(damaged.image[:h, :w] * 255).astype(np.uint8)
            truth[y : y + h, x : x + w] = damaged.mask[:h, :w]
            x += w
            row_height = max(row_height, h)
        y += row_height
    return scan, truth


def run_queue(home: Path, scans: list[Path], outputs: Path, preset: str, device: str, mask: str,
              sensitivity: float) -> dict:
    """Queue every scan with ``--mask auto`` (or its true mask) and run the queue in a child
    process until it is empty."""
    queue = JobQueue(home)
    settings = RestoreSettings(preset=preset, device=device, sensitivity=sensitivity).to_dict()
    ids = [queue.add(str(scan), str(outputs / f"{scan.stem}.{preset}.png"), settings=settings,
                     mask_path="auto" if mask == "auto" else str(true_mask_path(scan)))
           for scan in scans]
    env = {**os.environ, "RESTORER_HOME": str(home)}
    wall, peak_gb = run_restorer(["queue", "run", "--until-empty", "-q"], env=env, quiet=False)
    return {"wall_s": wall, "peak_rss_gb": peak_gb, "jobs": [queue.get(i) for i in ids]}


def true_mask_path(scan: Path) -> Path:
    return scan.with_name(scan.stem + ".truth.png")


def scan_row(job, truth: np.ndarray, preset: str, mask: str) -> dict:
    if job.state.value != "done":
        raise RuntimeError(f"job {job.id} ({job.input_path}) ended {job.state.value}: {job.error}")
    record = json.loads(Path(job.output_path + ".provenance.json").read_text())
    changed = np.asarray(Image.open(job.output_path + ".changes.png").convert("RGB"))
    repaired = changed.any(axis=2)  # the change map marks every pixel the restoration replaced
    megapixels = truth.size / 1e6
    damaged_mp = truth.sum() / 1e6
    seconds = job.finished_at - job.started_at
    stats = record["patch_stats"]
    return {"scan": Path(job.input_path).name, "preset": preset, "mask": mask, "megapixels": round(megapixels, 3),
            "true_damage_share": float(truth.mean()), "true_damage_covered": float(repaired[truth].mean()),
            "repaired_share": float(repaired.mean()), "seconds": round(seconds, 1),
            "solve_seconds": record["duration_s"], "s_per_mp": round(seconds / megapixels, 2),
            "s_per_damaged_mp": round(seconds / damaged_mp, 1), "patches": stats["patches"],
            "tiles_in_image": stats["tiles_in_image"]}


def whole_image_rate(scan: np.ndarray, side: int, preset: str, device: str) -> dict:
    """Seconds per megapixel of cleaning every pixel of a ``side`` crop from the scan's centre."""
    top, left = (scan.shape[0] - side) // 2, (scan.shape[1] - side) // 2
    crop = scan[top : top + side, left : left + side].astype(np.float32) / 255.0
    started = time.monotonic()
    restore_image(crop, None, RestoreSettings(preset=preset, device=device, scope="image"))
    seconds = time.monotonic() - started
    return {"preset": preset, "side": side, "seconds": round(seconds, 1),
            "s_per_mp": round(seconds / (side * side / 1e6), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megapixels", type=float, default=24.0, help="size of each scan")
    parser.add_argument("--scans", type=int, default=2)
    parser.add_argument("--presets", nargs="+", default=["fast", "standard"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--masks", nargs="+", default=["auto"], choices=("auto", "truth"),
                        help="auto: the product's detector; truth: the simulator's mask (the cost of repairing "
                             "all of the damage, whatever the detector finds)")
    parser.add_argument("--sensitivity", type=float, default=RestoreSettings.sensitivity, help="of --mask auto")
    parser.add_argument("--whole-image-side", type=int, default=0, help="also time --scope image on a crop this big")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="folder for scans, outputs and queues (default: a temporary one)")
    parser.add_argument("--tag", default="", help="suffix of the JSON file name")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="overnight-"))
    (work / "scans").mkdir(parents=True, exist_ok=True)
    scans, truths = [], {}
    for i in range(args.scans):
        path = work / "scans" / f"scan{i:02d}_{args.megapixels:g}mp.png"
        scan, truth = make_scan(args.megapixels, args.seed + i)
        Image.fromarray(scan).save(path)
        Image.fromarray(truth.astype(np.uint8) * 255).save(true_mask_path(path))
        scans.append(path)
        truths[path.name] = truth
    rows, runs, whole = [], [], []
    for preset in args.presets:
        for mask in args.masks:
            outputs = work / f"out-{preset}-{mask}"
            outputs.mkdir(exist_ok=True)
            run = run_queue(work / f"home-{preset}-{mask}", scans, outputs, preset, args.device, mask, args.sensitivity)
            run_rows = [scan_row(job, truths[Path(job.input_path).name], preset, mask) for job in run["jobs"]]
            mean_s = float(np.mean([r["seconds"] for r in run_rows]))
            runs.append({"preset": preset, "mask": mask, "wall_s": round(run["wall_s"], 1),
                         "peak_rss_gb": round(run["peak_rss_gb"], 2), "mean_s_per_scan": round(mean_s, 1),
                         "scans_per_night": round(NIGHT_S / mean_s, 1)})
            rows += run_rows
        if args.whole_image_side:
            first = np.asarray(Image.open(scans[0]))
            whole.append(whole_image_rate(first, args.whole_image_side, preset, args.device))

    print(f"{'scan':<22} {'preset':<9} {'mask':<6} {'MP':>6} {'damage':>7} {'covered':>8} {'s':>8} {'s/MP':>7} "
          f"{'s/dmg MP':>9} {'patches':>8}")
    for r in rows:
        print(f"{r['scan']:<22} {r['preset']:<9} {r['mask']:<6} {r['megapixels']:6.1f} {100 * r['true_damage_share']:6.2f}% "
              f"{100 * r['true_damage_covered']:7.1f}% {r['seconds']:8.1f} {r['s_per_mp']:7.1f} "
              f"{r['s_per_damaged_mp']:9.0f} {r['patches']:>4}/{r['tiles_in_image']}")
    for r in runs:
        print(f"{r['preset']}, mask {r['mask']}: {r['mean_s_per_scan']:.0f} s a scan, {r['scans_per_night']:.1f} scans a 12-hour night, "
              f"peak {r['peak_rss_gb']:.2f} GB")
    for r in whole:
        print(f"{r['preset']} whole image ({r['side']} px crop): {r['s_per_mp']:.0f} s per megapixel")

    report = {
        "benchmark": "overnight", "device": args.device, "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "cores": os.cpu_count(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "damage_sim": SIM_VERSION},
        "settings": {"megapixels": args.megapixels, "scans": args.scans, "presets": args.presets, "seed": args.seed,
                     "masks": args.masks, "sensitivity": args.sensitivity, "damage": {"classes": sorted(DAMAGE.classes), "fraction": DAMAGE.fraction}},
        "runs": runs, "scans": rows, "whole_image": whole,
    }
    write_result("overnight", args.tag, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
