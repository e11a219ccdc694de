"""`standard` on clean scans with sparse realistic dust: its holes schedule as the product runs it
against a variant of the light schedule for barely damaged windows
(``PRESETS["standard"]["holes_only"]["light"]``): without it, or with some of its keys changed.

Each photo of ``--set`` is centre-cropped to 256x256 and damaged by the overnight benchmark's
spec (``benchmarks.overnight.DAMAGE``: dust, hairs, print and film scratches on 0.1-0.4 % of the
pixels; photo i with seed 100 + i), then restored with its true mask (``--scope mask``) twice:
as the product does ("product") and with the variant ("variant": the light schedule removed, or
with ``--light-change JSON`` merged into it). The Navier-Stokes fill of the same mask is the
classical reference. Reported: PSNR inside the damage, seconds, per image and on average. One
thread is the yardstick (``OMP_NUM_THREADS=1``). A photo whose noise estimate keeps the short path
(not a clean scan) gives the same result both ways.

    OMP_NUM_THREADS=1 python -m benchmarks.light_schedule --set kodak24 --tag kodak24
    OMP_NUM_THREADS=1 python -m benchmarks.light_schedule --set kodak24 --light-change '{"flips": 1}'
"""

from __future__ import annotations

import argparse
import copy
import json
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
from restorer_app.restore.prefill import fill_holes
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
    parser.add_argument("--light-change", type=json.loads, default=None, metavar="JSON",
                        help='keys merged into the light schedule for the variant, e.g. \'{"flips": 1}\' '
                             "(default: the variant has no light schedule)")
    parser.add_argument("--tag", default="", help="suffix of the JSON file name")
    args = parser.parse_args(argv)

    shapes = default_shape_library()
    product = PRESETS["standard"]
    variant = copy.deepcopy(product)
    if args.light_change is None:
        variant["holes_only"].pop("light")
    else:
        variant["holes_only"]["light"].update(args.light_change)
    rows = []
    for i, photo in enumerate(load_eval_set(args.set)[: args.limit]):
        case = simulate(centre_crop(photo.image, CROP), np.random.default_rng(100 + i), DAMAGE, shapes)
        plans: list = []
        product_psnr, product_s = restore(case, plans)
        PRESETS["standard"] = variant
        try:
            variant_psnr, variant_s = restore(case, plans)
        finally:
            PRESETS["standard"] = product
        ns_psnr = masked_psnr(case.clean, fill_holes(case.image, case.mask), case.mask)
        rows.append({"image": photo.name, "damaged_fraction": float(case.mask.mean()), "tiles": plans[0].patches,
                     "light_tiles": plans[0].light_patches, "product": {"psnr_damaged": product_psnr, "seconds": product_s},
                     "variant": {"psnr_damaged": variant_psnr, "seconds": variant_s}, "ns_psnr_damaged": ns_psnr})
        print(f"{photo.name}: {plans[0].light_patches} of {plans[0].patches} tiles light, product "
              f"{product_psnr:.2f} dB in {product_s:.0f} s, variant {variant_psnr:.2f} dB in {variant_s:.0f} s, "
              f"N-S {ns_psnr:.2f} dB", flush=True)
    summary = {way: {"psnr_damaged": float(np.mean([r[way]["psnr_damaged"] for r in rows])),
                     "seconds": float(sum(r[way]["seconds"] for r in rows))}
               for way in ("product", "variant")}
    summary["ns_psnr_damaged"] = float(np.mean([r["ns_psnr_damaged"] for r in rows]))
    print(f"{args.set}, {len(rows)} photos: product {summary['product']['psnr_damaged']:.3f} dB in "
          f"{summary['product']['seconds']:.0f} s; variant {summary['variant']['psnr_damaged']:.3f} dB in "
          f"{summary['variant']['seconds']:.0f} s; N-S {summary['ns_psnr_damaged']:.3f} dB")
    report = {"benchmark": "light_schedule", "cpu": platform.processor() or platform.machine(),
              "versions": {"python": platform.python_version(), "torch": torch.__version__},
              "settings": {"set": args.set, "crop": CROP, "damage": "benchmarks.overnight.DAMAGE", "preset": "standard",
                           "light": product["holes_only"]["light"],
                           "variant_light": variant["holes_only"].get("light"), "threads": os.environ.get("OMP_NUM_THREADS", "default")},
              "summary": summary, "rows": rows}
    write_result("light_schedule", args.tag, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
