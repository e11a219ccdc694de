"""Speed follows damage: `--scope mask` against `--scope image` on a large scan with a few scratches.

A photo (Kodak24 kodim01, resized to SIDE x SIDE with Lanczos) gets a few wide curved scratches
covering COVERAGE of its pixels (no dust: specks scattered everywhere would touch every tile).
Both scopes run the same preset through ``restore_image``; the table gives tiles solved, seconds
and the ratio. Each batch runs a fixed number of steps whatever the content, so the image scope
can be timed on its first ``--image-batches`` batches and extrapolated by its batch count (the
JSON says which figures are measured and which are extrapolated).

    python -m benchmarks.scope_speed --side 2048 --coverage 0.02 --preset standard --image-batches 2
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from benchmarks.datasets import load_eval_set
from restorer_app import runtime
from restorer_app.flow.weights import default_model_path, load_model
from restorer_app.restore.pipeline import RestoreCancelled, restore_image
from restorer_app.restore.settings import RestoreSettings

RESULTS = Path(__file__).parent / "results"


def large_photo(side: int) -> np.ndarray:
    image = load_eval_set("kodak24", limit=1)[0].image
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_LANCZOS4).clip(0, 1).astype(np.float32)


def few_scratches(side: int, coverage: float, count: int, seed: int) -> np.ndarray:
    """``count`` smooth curves across the image, as wide as it takes to cover ``coverage``."""
    rng = np.random.default_rng(seed)
    curves = []
    for _ in range(count):
        ends = rng.uniform(0, side, (2, 2))
        middle = ends.mean(axis=0) + rng.normal(0, side / 8, 2)
        t = np.linspace(0, 1, 200)[:, None]
        curves.append(((1 - t) ** 2 * ends[0] + 2 * t * (1 - t) * middle + t**2 * ends[1]).astype(np.int32))
    for width in range(1, side):
        mask = np.zeros((side, side), np.uint8)
        cv2.polylines(mask, curves, False, 1, thickness=width)
        if mask.mean() >= coverage:
            return mask.astype(bool)
    raise ValueError("coverage out of reach")


def run(image, mask, settings, model, max_batches: int | None) -> dict:
    plans, done, started = [], [0], time.perf_counter()

    def count(progress) -> None:
        done[0] = progress.done

    def stop() -> bool:  # polled often; true once the timed batches are all finished
        return max_batches is not None and done[0] >= max_batches * plans[0].batch_size

    try:
        restore_image(image, mask, settings, model=model, on_plan=plans.append, on_progress=count, should_stop=stop)
        finished = True
    except RestoreCancelled:
        finished = False
    seconds = time.perf_counter() - started
    plan = plans[0]
    total_batches = math.ceil(plan.patches / plan.batch_size)
    timed = total_batches if finished else done[0] // plan.batch_size
    return {"scope": plan.scope, "tiles_solved": plan.patches, "tiles_in_image": plan.tiles_in_image,
            "schedule": plan.schedule, "sigma": plan.sigma,
            "batches": total_batches, "batches_timed": timed, "measured_seconds": seconds,
            "seconds": seconds if finished else seconds / max(timed, 1) * total_batches, "extrapolated": not finished}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=2048)
    parser.add_argument("--coverage", type=float, default=0.02)
    parser.add_argument("--scratches", type=int, default=5)
    parser.add_argument("--preset", default="standard")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--image-batches", type=int, default=2, help="batches of the image scope to time (0: all)")
    parser.add_argument("--out", type=Path, default=RESULTS / "scope_speed.json")
    args = parser.parse_args()
    runtime.configure()
    image = large_photo(args.side)
    mask = few_scratches(args.side, args.coverage, args.scratches, seed=0)
    image[mask] = 0.95  # light scratches
    model = load_model(default_model_path(), args.device)
    rows = []
    for scope, limit in (("mask", None), ("image", args.image_batches or None)):
        settings = RestoreSettings(preset=args.preset, device=args.device, scope=scope)
        rows.append(run(image, mask, settings, model, limit))
        r = rows[-1]
        print(f"| {scope} | {r['tiles_solved']} of {r['tiles_in_image']} tiles | {r['seconds']:.0f} s"
              f"{' (extrapolated from %d of %d batches)' % (r['batches_timed'], r['batches']) if r['extrapolated'] else ''} |",
              flush=True)
    ratio = rows[0]["seconds"] / rows[1]["seconds"]
    print(f"mask / image time: {ratio:.3f} (target <= 0.25); damaged pixels {mask.mean():.2%}")
    report = {"benchmark": "scope_speed", "device": args.device, "cpu": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
              "model": str(default_model_path()), "side": args.side, "megapixels": args.side**2 / 1e6,
              "damaged_fraction": float(mask.mean()), "scratches": args.scratches, "preset": args.preset,
              "rows": rows, "mask_over_image": ratio}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
