"""Restoration speed and memory: seconds per megapixel per preset, batching gain, peak memory.

- Per preset: a real restoration of a photo crop (default 320x320 = 0.1 MP, 36 patches), with
  seconds per megapixel derived from it (time is linear in the number of 64x64 tiles).
- Batched vs one patch at a time (the paper's procedure) on the same patches, same steps.
- Peak resident memory of a whole-image restoration at 0.25, 1 and 4 megapixels, each in a
  fresh process, with a one-step-per-level schedule (memory does not depend on the step count).

    python benchmarks/speed.py [--device cpu] [--presets fast standard best] [--out results/speed_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.datasets import load_eval_set
from restorer_app import runtime
from restorer_app.flow.weights import default_model_path, load_model
from restorer_app.restore.degradations import degrade
from restorer_app.restore.ensemble import views_for
from restorer_app.restore.pipeline import MARGIN, default_batch_tiles, restore_image
from restorer_app.restore.settings import PRESETS, RestoreSettings
from restorer_app.restore.tiling import plan_tiles

RESULTS = Path(__file__).parent / "results"


def photo(side: int) -> np.ndarray:
    image = load_eval_set("kodak24", limit=1)[0].image
    reps = (side // image.shape[0] + 1, side // image.shape[1] + 1, 1)
    return np.ascontiguousarray(np.tile(image, reps)[:side, :side])


def time_preset(preset: str, device: str, side: int, batch_size: int | None = None) -> dict:
    degraded, _ = degrade(photo(side), "noise25", 0)
    settings = RestoreSettings(preset=preset, device=device, batch_size=batch_size)
    model = load_model(default_model_path(), device)
    started = time.perf_counter()
    restore_image(degraded, None, settings, model=model)
    seconds = time.perf_counter() - started
    megapixels = side * side / 1e6
    return {"preset": preset, "side": side, "patches": len(plan_tiles(side, side)), "seconds": seconds,
            "seconds_per_megapixel": seconds / megapixels, "steps": sum(s for _, s in PRESETS[preset]["stages"]),
            "views": len(views_for(PRESETS[preset], MARGIN)), "batch_tiles": batch_size or default_batch_tiles(torch.device(device))}


def batching_gain(device: str, side: int) -> dict:
    """Same patches, same 'fast' steps: one batch versus one patch per batch."""
    batched = time_preset("fast", device, side, batch_size=64)
    single = time_preset("fast", device, side, batch_size=1)
    return {"patches": batched["patches"], "batched_seconds": batched["seconds"], "single_seconds": single["seconds"],
            "speedup": single["seconds"] / batched["seconds"]}


def peak_memory_child(megapixels: float, device: str) -> None:
    """Run in a fresh process: restore an image of this size and print the peak RSS (MiB)."""
    # the presets' four mirrored views (they are solved in one batch), one step per level
    PRESETS["memory-probe"] = {"stages": [(1, 1), (2, 1), (3, 1)], "lr": 1e-2, "fp32_tail": 1, "flips": 4}
    side = int(round((megapixels * 1e6) ** 0.5))
    image = photo(side)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    restore_image(image, None, RestoreSettings(preset="memory-probe", device=device))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"megapixels": side * side / 1e6, "image_mib": image.nbytes / 2**20, "peak_rss_mib": peak,
                      "rss_before_restore_mib": before, "seconds": time.perf_counter() - started}))


def peak_memory(megapixels: float, device: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.speed", "--memory-child", str(megapixels), "--device", device],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--presets", nargs="+", default=["fast", "standard", "best"])
    parser.add_argument("--side", type=int, default=320)
    parser.add_argument("--batching-side", type=int, default=192, help="0: skip the batching comparison")
    parser.add_argument("--memory", nargs="*", type=float, default=[0.25, 1.0, 4.0], help="megapixels (none: skip)")
    parser.add_argument("--memory-child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--batch-tiles", type=int, help="tiles per batch (default: the device's, as the app sizes it)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    runtime.configure()
    if args.memory_child:
        peak_memory_child(args.memory_child, args.device)
        return
    report = {"benchmark": "speed", "device": args.device, "cpu": platform.processor() or platform.machine(),
              "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "python": platform.python_version(),
              "model": str(default_model_path()), "degradation": "noise25 (Kodak24 kodim01 tiled)"}
    report["presets"] = []
    for preset in args.presets:
        row = time_preset(preset, args.device, args.side, args.batch_tiles)
        report["presets"].append(row)
        print(f"| {preset} | {row['steps']} steps x {row['views']} views | {row['patches']} patches | {row['seconds']:.1f} s | "
              f"{row['seconds_per_megapixel'] / 60:.1f} min/MP |", flush=True)
    if args.batching_side:
        report["batching"] = b = batching_gain(args.device, args.batching_side)
        print(f"| batched vs one-at-a-time ('fast', {b['patches']} patches) | {b['batched_seconds']:.1f} s | "
              f"{b['single_seconds']:.1f} s | x{b['speedup']:.2f} |", flush=True)
    report["memory"] = []
    for megapixels in args.memory:
        row = peak_memory(megapixels, args.device)
        report["memory"].append(row)
        print(f"| {row['megapixels']:.2f} MP | image {row['image_mib']:.0f} MiB | peak RSS {row['peak_rss_mib']:.0f} MiB |", flush=True)
    out = args.out or RESULTS / f"speed_{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
