"""Tile seams and the 8-pixel checkerboard, measured instead of eyeballed.

Why: the deepest latent is an 8x8 grid of cells (8 pixels each) and tiles meet every 56 pixels,
so structure that the restoration adds on either lattice shows up in the error image
(restored - clean) as a pattern that repeats with the lattice. Two numbers per image:

* grid: RMS over the 64 phases (y mod 8, x mod 8) of the phase-averaged error, in 1/255.
  Independent errors also leave a residue here; ``grid floor`` is its expected size
  (error RMS / sqrt(pixels per phase)), so grid / floor near 1 means no checkerboard.
* seam: RMS of the error's step between neighbouring pixels across tile boundaries, divided by
  the same step everywhere else; 1.0 means the boundaries are invisible in the error.

    python -m benchmarks.artifacts --limit 4 --crop 256 --degradations noise25 multi --presets fast best
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch

from benchmarks.datasets import load_eval_set
from benchmarks.quality import add_extra_preset_argument, register_extra_presets
from restorer_app import runtime
from restorer_app.flow.weights import default_model_path, load_model
from restorer_app.restore.degradations import degrade
from restorer_app.restore.pipeline import MARGIN, restore_image
from restorer_app.restore.settings import RestoreSettings

RESULTS = Path(__file__).parent / "results"
CELL = 8


def grid_amplitude(error: np.ndarray) -> tuple[float, float]:
    """(RMS of the phase-averaged error, its expected value for independent errors), in 1/255."""
    h, w = (s - s % CELL for s in error.shape)
    cells = error[:h, :w].reshape(h // CELL, CELL, w // CELL, CELL)
    phases = cells.mean(axis=(0, 2))
    phases -= phases.mean()
    floor = error[:h, :w].std() / np.sqrt(cells.shape[0] * cells.shape[2])
    return float(np.sqrt((phases**2).mean()) * 255), float(floor * 255)


def seam_ratio(error: np.ndarray, core: int) -> float:
    """RMS error step across tile boundaries over the RMS step elsewhere (both axes)."""
    across, elsewhere = [], []
    for axis in (0, 1):
        steps = np.diff(error, axis=axis)
        boundary = np.zeros(steps.shape[axis], dtype=bool)
        boundary[core - 1 :: core] = True  # step between pixel k*core-1 and k*core
        moved = np.moveaxis(steps, axis, 0)
        across.append(moved[boundary].ravel())
        elsewhere.append(moved[~boundary].ravel())
    rms = lambda v: np.sqrt(np.mean(np.concatenate(v) ** 2))  # noqa: E731
    return float(rms(across) / rms(elsewhere))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["kodak24"])
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--degradations", nargs="+", default=["noise25", "multi"])
    parser.add_argument("--presets", nargs="+", default=["fast", "best"])
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tag", default="run")
    add_extra_preset_argument(parser)
    args = parser.parse_args()
    runtime.configure()
    register_extra_presets(args.extra_preset)
    model = load_model(args.model, args.device)
    core = model.config.patch_size - 2 * MARGIN
    rows = []
    for set_name in args.sets:
        for index, item in enumerate(load_eval_set(set_name, crop=args.crop, limit=args.limit)):
            for degradation in args.degradations:
                degraded, mask = degrade(item.image, degradation, np.random.default_rng(index))
                outputs = {"input": degraded}
                for preset in args.presets:
                    settings = RestoreSettings(preset=preset, device=args.device)
                    outputs[preset] = restore_image(degraded, mask, settings, model=model)
                for method, restored in outputs.items():
                    error = (restored - item.image).mean(axis=2)
                    grid, floor = grid_amplitude(error)
                    row = {"set": set_name, "image": item.name, "degradation": degradation, "method": method,
                           "grid": grid, "grid_floor": floor, "seam": seam_ratio(error, core)}
                    rows.append(row)
                    print(f"{set_name}/{item.name} {degradation} {method}: grid {grid:.3f} (floor {floor:.3f}), "
                          f"seam {row['seam']:.3f}", flush=True)
    write(args, rows, model)


def write(args, rows, model) -> None:
    keys = sorted({(r["set"], r["degradation"], r["method"]) for r in rows})
    lines = ["| set | damage | method | grid (1/255) | floor (1/255) | grid / floor | seam ratio |",
             "|---|---|---|---|---|---|---|"]
    for key in keys:
        mine = [r for r in rows if (r["set"], r["degradation"], r["method"]) == key]
        grid, floor, seam = (float(np.mean([r[k] for r in mine])) for k in ("grid", "grid_floor", "seam"))
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {grid:.3f} | {floor:.3f} | {grid / floor:.2f} | {seam:.3f} |")
    table = "\n".join(lines)
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "artifacts", "tag": args.tag, "device": args.device, "torch": torch.__version__,
              "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
              "model": {"path": str(args.model), "info": getattr(model, "info", {})},
              "settings": vars(args), "rows": rows}
    (RESULTS / f"artifacts_{args.tag}.json").write_text(json.dumps(report, indent=1, default=float))
    (RESULTS / f"artifacts_{args.tag}.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
