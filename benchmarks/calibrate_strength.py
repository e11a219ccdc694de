"""Calibrate ``--strength auto``: PSNR against lambda = factor x auto-estimate, per degradation.

Patches are independent of their batch companions, so every (image, factor) pair is solved in
one large batch: a sweep costs about one restoration of all the patches together. Prints a
table and writes JSON with the best factor per degradation and how far auto (factor 1) is from it.

    python benchmarks/calibrate_strength.py --degradations noise15 noise25 jpeg20 multi --factors 0.5 1 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.datasets import load_eval_set
from benchmarks.metrics import psnr
from restorer_app import runtime
from restorer_app.flow.weights import default_model_path, load_model
from restorer_app.restore.degradations import degrade
from restorer_app.restore.pipeline import CLEAN_SIGMA, extract_windows, start_points, to_batch
from restorer_app.restore.settings import PRESETS
from restorer_app.devices import bf16_supported
from restorer_app.restore.solver import solve_batch
from restorer_app.restore.strength import auto_lambda
from restorer_app.restore.tiling import Assembler, extract_patch, plan_tiles

RESULTS = Path(__file__).parent / "results"


def sweep(model, images, degradation, factors, preset, device, seed=0) -> list[dict]:
    jobs, x_hat, valid, start, lam = [], [], [], [], []
    for index, item in enumerate(images):
        degraded, mask = degrade(item.image, degradation, np.random.default_rng(seed * 1000 + index))
        base, sigma = auto_lambda(degraded, mask)
        grid = plan_tiles(*degraded.shape[:2], patch=model.config.patch_size)
        tiles = list(grid.tiles())
        patches, damaged = extract_windows(degraded, mask, grid, tiles)
        starts = start_points(patches, damaged)
        for factor in factors:
            jobs.append((item, degraded, mask, grid, tiles, factor, base * factor, sigma, len(x_hat)))
            x_hat += list(patches)
            valid += list(~damaged)
            start += starts
            lam += [base * factor] * len(tiles)
    schedule = PRESETS[preset]
    started = time.perf_counter()
    result = solve_batch(model, to_batch(x_hat, device) - 0.5, to_batch(valid, device), to_batch(start, device) - 0.5,
                         torch.tensor(lam, dtype=torch.float32, device=device), schedule["stages"], schedule["lr"],
                         schedule["fp32_tail"], torch.bfloat16 if bf16_supported(torch.device(device)) else None)
    seconds = time.perf_counter() - started
    restored = (result.x + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    rows = []
    for item, degraded, mask, grid, tiles, factor, lam_value, sigma, first in jobs:
        output = np.empty_like(degraded)
        assembler = Assembler(grid, output)
        for offset, tile in enumerate(tiles):
            patch = restored[first + offset]
            if mask is not None and sigma < CLEAN_SIGMA:
                patch = np.where(extract_patch(~mask, grid, tile)[:, :, None], extract_patch(degraded, grid, tile), patch)
            assembler.add(tile, patch)
        rows.append({"image": item.name, "degradation": degradation, "factor": factor, "lambda": lam_value,
                     "sigma_est": sigma * 255, "psnr": psnr(item.image, np.clip(output, 0, 1)),
                     "input_psnr": psnr(item.image, degraded)})
    print(f"{degradation}: {len(x_hat)} patches in one batch, {seconds:.0f} s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["kodak24"])
    parser.add_argument("--limit", type=int, default=3)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--degradations", nargs="+", default=["noise15", "noise25", "jpeg20", "multi"])
    parser.add_argument("--factors", nargs="+", type=float, default=[0.5, 1.0, 2.0])
    parser.add_argument("--preset", default="standard")
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tag", default="calibration")
    args = parser.parse_args()
    runtime.configure()
    model = load_model(args.model, args.device)
    images = [item for name in args.sets for item in load_eval_set(name, crop=args.crop, limit=args.limit)]
    rows, summary = [], []
    for degradation in args.degradations:
        mine = sweep(model, images, degradation, args.factors, args.preset, args.device)
        rows += mine
        means = {f: float(np.mean([r["psnr"] for r in mine if r["factor"] == f])) for f in args.factors}
        best = max(means, key=means.get)
        summary.append({"degradation": degradation, "mean_psnr_by_factor": means, "best_factor": best,
                        "auto_minus_best_db": means.get(1.0, float("nan")) - means[best],
                        "input_psnr": float(np.mean([r["input_psnr"] for r in mine if r["factor"] == best]))})
        print(f"| {degradation} | input {summary[-1]['input_psnr']:.2f} | "
              + " | ".join(f"x{f}: {v:.2f}" for f, v in means.items()) + f" | best x{best} |", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"strength_{args.tag}.json").write_text(json.dumps(
        {"benchmark": "strength calibration", "settings": vars(args), "model": load_model(args.model).info,
         "summary": summary, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
