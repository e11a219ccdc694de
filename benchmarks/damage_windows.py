"""A repair solved in windows that follow the damage (``restore.windows``, the product) against the
fixed grid's tiles that touch the grown mask (as before): windows solved, PSNR inside the damage,
seconds.

The cases are ``step_probe``'s: each photo of ``--set`` centre-cropped to 256x256 with the
overnight benchmark's realistic dust, hairs and scratches (seed 100 + i), or with ``--damage
scratches`` cut and damaged as ``quality.py`` does. Both ways restore with the true mask,
``--preset`` (default ``standard``), scope mask; the Navier-Stokes fill of the same mask is the
classical reference. One thread is the yardstick (``OMP_NUM_THREADS=1``).

    OMP_NUM_THREADS=1 python -m benchmarks.damage_windows --set kodak24 --tag kodak24
    OMP_NUM_THREADS=1 python -m benchmarks.damage_windows --set kodak24 --damage scratches --limit 12 --tag kodak24_scratches
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time

import cv2
import numpy as np
import torch

from benchmarks.metrics import masked_psnr
from benchmarks.results_file import write_result
from benchmarks.step_probe import cases
from restorer_app.restore import pipeline
from restorer_app.restore.prefill import fill_holes
from restorer_app.restore.settings import RestoreSettings
from restorer_app.restore.tiling import extract_patch
from restorer_app.restore.windows import MASK_DILATION, grid_windows


def grid_tiles(grid, mask):
    """The layout before damage windows: every grid tile whose window touches the grown mask."""
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((2 * MASK_DILATION + 1,) * 2, np.uint8)) > 0
    touching = [w for w in grid_windows(grid) if extract_patch(grown, grid, w).any()]
    return [dataclasses.replace(w, index=i) for i, w in enumerate(touching)]


def restore(image, mask, preset: str, layout=None) -> tuple[np.ndarray, int, float]:
    """The restored image, the windows solved and the seconds, with the product's layout or ``layout``."""
    plans: list = []
    product = pipeline.damage_windows
    pipeline.damage_windows = layout or product
    started = time.perf_counter()
    try:
        restored = pipeline.restore_image(image, mask, RestoreSettings(preset=preset, device="cpu", scope="mask"),
                                          on_plan=plans.append)
    finally:
        pipeline.damage_windows = product
    return restored, plans[0].patches, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="kodak24", choices=("kodak24", "mcmaster18", "cbsd68"))
    parser.add_argument("--damage", choices=("realistic", "scratches"), default="realistic")
    parser.add_argument("--preset", default="standard")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--tag", default="", help="suffix of the JSON file name")
    args = parser.parse_args(argv)

    rows = []
    for name, image, mask, clean in cases(args.set, args.limit, args.damage):
        row = {"image": name, "damaged_fraction": float(mask.mean())}
        for way, layout in (("windows", None), ("grid", grid_tiles)):
            restored, solved, seconds = restore(image, mask, args.preset, layout)
            row[way] = {"windows": solved, "psnr_damaged": masked_psnr(clean, restored, mask), "seconds": seconds}
        row["ns_psnr_damaged"] = masked_psnr(clean, fill_holes(image, mask), mask)
        rows.append(row)
        print(f"{name}: windows {row['windows']['windows']} solved, {row['windows']['psnr_damaged']:.2f} dB in "
              f"{row['windows']['seconds']:.0f} s; grid {row['grid']['windows']}, {row['grid']['psnr_damaged']:.2f} dB "
              f"in {row['grid']['seconds']:.0f} s; N-S {row['ns_psnr_damaged']:.2f} dB", flush=True)
    summary = {way: {"windows": int(sum(r[way]["windows"] for r in rows)),
                     "psnr_damaged": float(np.mean([r[way]["psnr_damaged"] for r in rows])),
                     "seconds": float(sum(r[way]["seconds"] for r in rows))} for way in ("windows", "grid")}
    summary["ns_psnr_damaged"] = float(np.mean([r["ns_psnr_damaged"] for r in rows]))
    print(f"\n{args.set} ({args.damage}, {len(rows)} photos, {args.preset})")
    print(f"{'layout':<8} {'solved':>7} {'dB inside':>10} {'seconds':>8}")
    for way in ("windows", "grid"):
        s = summary[way]
        print(f"{way:<8} {s['windows']:>7} {s['psnr_damaged']:>10.3f} {s['seconds']:>8.0f}")
    print(f"{'N-S':<8} {'':>7} {summary['ns_psnr_damaged']:>10.3f}")
    report = {"benchmark": "damage_windows", "cpu": platform.processor() or platform.machine(),
              "versions": {"python": platform.python_version(), "torch": torch.__version__},
              "settings": {"set": args.set, "damage": args.damage, "preset": args.preset, "limit": args.limit,
                           "threads": os.environ.get("OMP_NUM_THREADS", "default")},
              "summary": summary, "rows": rows}
    write_result("damage_windows", args.tag, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
