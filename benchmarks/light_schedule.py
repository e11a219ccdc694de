"""`standard` on clean scans with sparse realistic dust: its holes schedule with and without the
light variant for barely damaged windows (``PRESETS["standard"]["holes_only"]["light"]``).

Each photo of ``--set`` is centre-cropped to 256x256 and damaged by the overnight benchmark's
spec (``benchmarks.overnight.DAMAGE``: dust, hairs, print and film scratches on 0.1-0.4 % of the
pixels; photo i with seed 100 + i), then restored with its true mask (``--scope mask``) twice:
as the product does ("light") and with the light variant removed ("holes schedule everywhere").
Reported: PSNR inside the damage, seconds, per image and on average. One thread is the yardstick
(``OMP_NUM_THREADS=1``). A photo whose noise estimate keeps the short path (not a clean scan)
gives the same result both ways.

    OMP_NUM_THREADS=1 python -m benchmarks.light_schedule --set kodak24 --tag kodak24
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time

import numpy as np
import torch

from benchmarks.datasets import centre_crop, load_eval_set
from benchmarks.metrics import masked_psnr
from benchmarks.overnight import DAMAGE
from benchmarks.results_file import write_result
from restorer_app.damage_sim import default_shape_library, simulate
from restorer_app.restore.pipeline import restore_image
from restorer_app.restore.settings import PRESETS, RestoreSettings

CROP = 256


def restore(case, plans: list) -> tuple[float, float]:
    started = time.perf_counter()
    restored = restore_image(case.image, case.mask, RestoreSettings(preset="standard", device="cpu", scope="mask"),
                             on_plan=plans.append)
    return masked_psnr(case.clean, restored, case.mask), time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="kodak24", choices=("kodak24", "mcmaster18", "cbsd68"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--tag", default="", help="suffix of the JSON file name")
    args = parser.parse_args(argv)

    shapes = default_shape_library()
    product = PRESETS["standard"]
    without = copy.deepcopy(product)
    without["holes_only"].pop("light")
    rows = []
    for i, photo in enumerate(load_eval_set(args.set)[: args.limit]):
        case = simulate(centre_crop(photo.image, CROP), np.random.default_rng(100 + i), DAMAGE, shapes)
        plans: list = []
        light_psnr, light_s = restore(case, plans)
        PRESETS["standard"] = without
        try:
            before_psnr, before_s = restore(case, plans)
        finally:
            PRESETS["standard"] = product
        rows.append({"image": photo.name, "damaged_fraction": float(case.mask.mean()), "tiles": plans[0].patches,
                     "light_tiles": plans[0].light_patches, "light": {"psnr_damaged": light_psnr, "seconds": light_s},
                     "holes_schedule_everywhere": {"psnr_damaged": before_psnr, "seconds": before_s}})
        print(f"{photo.name}: {plans[0].light_patches} of {plans[0].patches} tiles light, "
              f"{light_psnr:.2f} dB in {light_s:.0f} s against {before_psnr:.2f} dB in {before_s:.0f} s", flush=True)
    summary = {way: {"psnr_damaged": float(np.mean([r[way]["psnr_damaged"] for r in rows])),
                     "seconds": float(sum(r[way]["seconds"] for r in rows))}
               for way in ("light", "holes_schedule_everywhere")}
    print(f"{args.set}, {len(rows)} photos: light {summary['light']['psnr_damaged']:.3f} dB in "
          f"{summary['light']['seconds']:.0f} s; holes schedule everywhere "
          f"{summary['holes_schedule_everywhere']['psnr_damaged']:.3f} dB in "
          f"{summary['holes_schedule_everywhere']['seconds']:.0f} s")
    report = {"benchmark": "light_schedule", "cpu": platform.processor() or platform.machine(),
              "versions": {"python": platform.python_version(), "torch": torch.__version__},
              "settings": {"set": args.set, "crop": CROP, "damage": "benchmarks.overnight.DAMAGE", "preset": "standard",
                           "light": product["holes_only"]["light"], "threads": os.environ.get("OMP_NUM_THREADS", "default")},
              "summary": summary, "rows": rows}
    write_result("light_schedule", args.tag, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
