"""What ``restorer detect`` costs on a large scan: seconds per megapixel and peak resident memory.

The scan is the overnight benchmark's mosaic of test photos with realistic dust, hairs and
scratches (``benchmarks.overnight.make_scan``), written as a PNG. ``restorer detect`` runs in a
child process per sensitivity (0: the hand-set chain alone, the default; above 0: the chain and
the learned segmenter); its wall time includes reading the scan and writing the mask, and its
peak resident memory comes from ``wait4``. The child gets this process's environment:
``OMP_NUM_THREADS=1`` measures one thread (the issue's yardstick).

    OMP_NUM_THREADS=1 python -m benchmarks.detection_speed --megapixels 12 --sensitivities 0 0.5
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.child_process import run_restorer
from benchmarks.overnight import make_scan
from benchmarks.results_file import write_result


def detect_in_child(scan: Path, mask: Path, sensitivity: float) -> dict:
    seconds, peak_gb = run_restorer(["detect", str(scan), "-o", str(mask), "--overwrite",
                                     "--sensitivity", str(sensitivity)])
    found = np.asarray(Image.open(mask)) > 0
    return {"seconds": round(seconds, 1), "peak_rss_gb": round(peak_gb, 2),
            "flagged_share": round(float(found.mean()), 5)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--sensitivities", type=float, nargs="+", default=[0.0, 0.5])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="", help="suffix of the JSON file name")
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="detection-speed-") as work:
        scan_path, mask_path = Path(work) / "scan.png", Path(work) / "mask.png"
        scan, truth = make_scan(args.megapixels, args.seed)
        Image.fromarray(scan).save(scan_path)
        megapixels = scan.shape[0] * scan.shape[1] / 1e6
        for sensitivity in args.sensitivities:
            row = {"sensitivity": sensitivity, **detect_in_child(scan_path, mask_path, sensitivity)}
            row["seconds_per_megapixel"] = round(row["seconds"] / megapixels, 2)
            row["true_damage_share"] = round(float(truth.mean()), 5)
            rows.append(row)
            print(f"sensitivity {sensitivity}: {row['seconds']} s for {megapixels:.1f} MP "
                  f"({row['seconds_per_megapixel']} s/MP), peak {row['peak_rss_gb']} GB, "
                  f"flagged {100 * row['flagged_share']:.2f} % (true damage {100 * row['true_damage_share']:.2f} %)")
    report = {"benchmark": "detection_speed", "cpu": platform.processor() or platform.machine(),
              "versions": {"python": platform.python_version(), "torch": torch.__version__},
              "settings": {"megapixels": round(megapixels, 2), "size": [scan.shape[1], scan.shape[0]],
                           "seed": args.seed, "threads": os.environ.get("OMP_NUM_THREADS", "default")},
              "rows": rows}
    write_result("detection_speed", args.tag, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
