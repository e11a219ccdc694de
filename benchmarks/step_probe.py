"""PSNR inside the damage after 0, 1, ... 99 optimiser steps of `standard`'s holes schedule, on its
heavy windows (over ``light.below`` damaged): does a window converge, and when is it best?

Each photo of ``--set`` is centre-cropped to 256x256 and damaged by the overnight benchmark's
spec (seed 100 + i, as ``light_schedule.py``), or with ``--damage scratches`` cut and damaged as
``quality.py`` does (128-px crops of the 2x-downscaled photo, seed i). Its heavy windows are
optimised as the solver does (coarse to fine, the four mirrored views), in float32 throughout,
and before every step the views' average is scored against the clean window inside the damage,
with how far the damaged pixels moved since the last step. A probe for a per-patch convergence
stop (lab notebook E113); it repeats the solver's loop to see inside it (``solver._objective``).

    OMP_NUM_THREADS=1 python -m benchmarks.step_probe --set kodak24 --limit 5 --tag kodak24
    OMP_NUM_THREADS=1 python -m benchmarks.step_probe --set kodak24 --limit 12 --damage scratches --tag kodak24_scratches
"""

from __future__ import annotations

import argparse
import platform
import sys

import numpy as np
import torch

from benchmarks.datasets import centre_crop, load_eval_set
from benchmarks.overnight import DAMAGE
from benchmarks.quality import eval_crops
from benchmarks.results_file import write_result
from restorer_app.damage_sim import default_shape_library, simulate
from restorer_app.restore import pipeline
from restorer_app.restore.degradations import degrade
from restorer_app.restore.ensemble import average_views, to_view, views_for
from restorer_app.restore.settings import RestoreSettings
from restorer_app.restore.solver import _objective

CROP = 256


def cases(set_name: str, limit: int, damage: str):
    """(name, damaged image, mask, clean image) per photo."""
    if damage == "scratches":
        for i, crop in enumerate(eval_crops(set_name, crop=128, scale=2, limit=limit)):
            image, mask = degrade(crop.image, "scratches", np.random.default_rng(i))
            yield crop.name, image, mask, crop.image
        return
    shapes = default_shape_library()
    for i, photo in enumerate(load_eval_set(set_name)[:limit]):
        case = simulate(centre_crop(photo.image, CROP), np.random.default_rng(100 + i), DAMAGE, shapes)
        yield photo.name, case.image, case.mask, case.clean


def trajectory(model, work, views) -> list[torch.Tensor]:
    """The views' restorations before every optimiser step (N*V x 3 x P x P each)."""
    patches, damaged = work.windows[(0, 0)]
    x_hat, valid, start = (pipeline.to_batch(a, "cpu") for a in (patches, ~damaged, pipeline.start_points(patches, damaged)))
    x_hat, valid, start = (torch.cat([to_view(t, v) for v in views]) for t in (x_hat - 0.5, valid, start - 0.5))
    lam = torch.full((len(x_hat),), work.plan.lam)
    with torch.no_grad():
        latents = [model.encode(start)[0][0].clone()] + [None] * (model.config.levels - 1)
    seen = []
    with torch.enable_grad():
        for active, steps in work.schedule["stages"]:
            with torch.no_grad():
                filled = model.complete_latents(latents[:active] + [None] * (len(latents) - active))
            latents = [z.detach().clone() for z in filled]
            optimiser = torch.optim.Adam([z.requires_grad_(True) for z in latents[:active]], lr=work.schedule["lr"])
            for _ in range(steps):
                loss, x = _objective(model, latents, x_hat, valid, lam)
                optimiser.zero_grad(set_to_none=True)
                loss.sum().backward()
                optimiser.step()
                seen.append(x.detach().clamp(-0.5, 0.5))
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="kodak24", choices=("kodak24", "mcmaster18", "cbsd68"))
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--damage", choices=("realistic", "scratches"), default="realistic")
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    settings = RestoreSettings(preset="standard", device="cpu", scope="mask")
    model = pipeline.LocalSolver(settings).model.requires_grad_(False)
    rows = []
    for name, image, mask, clean_image in cases(args.set, args.limit, args.damage):
        grid = pipeline.plan_tiles(*mask.shape, patch=model.config.patch_size, margin=pipeline.MARGIN)
        solve = pipeline.windows_to_solve(grid, mask, "mask")
        plan = pipeline.make_plan(image, mask, settings, torch.device("cpu"), grid, solve)
        if "light" not in plan.schedule:
            continue  # not a clean scan: the short path, no holes schedule
        for tiles, schedule in zip(*pipeline.slice_batches(grid, mask, solve, plan, 64)):
            if schedule is not plan.schedule:
                continue  # light windows
            work = pipeline.batch_work(image, mask, grid, tiles, plan, schedule)
            views = views_for(schedule, grid.margin)
            means = torch.stack([average_views(list(x.split(len(tiles))), views)[0] for x in trajectory(model, work, views)])
            hole = torch.from_numpy(work.windows[(0, 0)][1])[:, None].float()
            clean = pipeline.to_batch([pipeline.extract_patch(clean_image, grid, t) for t in tiles], "cpu") - 0.5
            count = 3 * hole.flatten(1).sum(1)
            error = (((means - clean) ** 2) * hole).flatten(2).sum(2) / count
            moved = ((((means[1:] - means[:-1]) ** 2) * hole).flatten(2).sum(2) / count).sqrt()
            for j, tile in enumerate(tiles):
                rows.append({"image": name, "tile": tile.index, "pixels": int(hole[j].sum()),
                             "mse_by_step": error[:, j].tolist(), "moved_by_step": [0.0] + moved[:, j].tolist()})
        print(name, flush=True)
    steps = min(len(r["mse_by_step"]) for r in rows)
    weights = np.array([r["pixels"] for r in rows], float)
    pooled = [float(10 * np.log10(1 / np.average([r["mse_by_step"][k] for r in rows], weights=weights)))
              for k in range(steps)]
    for k in range(0, steps, 10):
        print(f"step {k}: {pooled[k]:.3f} dB inside the damage, {len(rows)} windows")
    settings_used = {"set": args.set, "damage": args.damage, "limit": args.limit, "schedule": "standard holes_only, float32"}
    write_result("step_probe", args.tag, {"benchmark": "step_probe", "cpu": platform.processor() or platform.machine(),
                                          "versions": {"torch": torch.__version__}, "settings": settings_used,
                                          "pooled_psnr_by_step": pooled, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
