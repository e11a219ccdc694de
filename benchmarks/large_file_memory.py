"""Peak resident memory of ``restorer restore`` on a large 16-bit TIFF, file to file.

What stays in memory for a whole scan is the file path: reading, the float copy, the assembler,
the change map, writing the TIFF and its provenance. The solve itself works a batch of 64x64
windows at a time. So the scan (``--megapixels``, 3:2, smooth colour noise with grain, 16 bits
per channel, written with tifffile) gets a mask of a few short scratches (``--scratches``), and
``restorer restore --mask`` runs in a child process whose peak resident memory ``wait4`` reports.
``--auto`` lets the detectors find the mask instead (``--mask auto --sensitivity S``), so the
detection's time and memory are in the figures too. The child gets this process's environment:
``OMP_NUM_THREADS=1`` measures one thread.

    python -m benchmarks.large_file_memory --megapixels 50 --preset fast
    python -m benchmarks.large_file_memory --megapixels 50 --preset fast --auto --sensitivity 0.5
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import tifffile
import torch
from PIL import Image

from benchmarks.child_process import run_restorer
from benchmarks.results_file import write_result



def write_scan(path: Path, megapixels: float, seed: int) -> tuple[int, int]:
    """A smooth 16-bit RGB picture with grain, written band by band to keep this process small."""
    height = int(round(math.sqrt(megapixels * 1e6 / 1.5)))
    width = int(round(height * 1.5))
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0.2, 0.8, (max(height // 256, 2), max(width // 256, 2), 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    scan = np.empty((height, width, 3), np.uint16)
    for top in range(0, height, 1024):
        band = smooth[top : top + 1024] + rng.normal(0, 0.01, smooth[top : top + 1024].shape).astype(np.float32)
        scan[top : top + 1024] = np.round(np.clip(band, 0, 1) * 65535).astype(np.uint16)
    del smooth
    tifffile.imwrite(path, scan, photometric="rgb")
    return height, width


def write_mask(path: Path, height: int, width: int, scratches: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    for _ in range(scratches):
        x, y = rng.uniform(0, width - 200), rng.uniform(0, height - 200)
        end = (int(x + rng.uniform(50, 200)), int(y + rng.uniform(50, 200)))
        cv2.line(mask, (int(x), int(y)), end, 255, 2)
    Image.fromarray(mask).save(path)
    return float((mask > 0).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megapixels", type=float, default=50.0)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--scratches", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--auto", action="store_true", help="--mask auto: the detectors find the mask")
    parser.add_argument("--sensitivity", type=float, default=0.0, help="with --auto: the detectors' sensitivity")
    parser.add_argument("--tag", default="", help="suffix of the JSON file name")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="large-file-") as work:
        scan, mask, out = Path(work) / "scan.tif", Path(work) / "mask.png", Path(work) / "restored.tif"
        height, width = write_scan(scan, args.megapixels, args.seed)
        masked = write_mask(mask, height, width, args.scratches, args.seed)
        masking = ["--mask", "auto", "--sensitivity", str(args.sensitivity)] if args.auto else ["--mask", str(mask)]
        seconds, peak_gb = run_restorer(["restore", str(scan), "-o", str(out), *masking, "--preset", args.preset,
                                         "--device", "cpu", "--quiet"])
        record = json.loads((Path(work) / "restored.tif.provenance.json").read_text())
        row = {"megapixels": round(height * width / 1e6, 2), "size": [width, height], "bits": 16,
               "input_mb": round(scan.stat().st_size / 1e6, 1),
               "masked_share": record["extra"]["detector"]["repaired_fraction"] if args.auto else masked,
               "patches": record["patch_stats"]["patches"], "seconds": round(seconds, 1),
               "peak_rss_gb": round(peak_gb, 2)}
    print(f"{row['megapixels']} MP 16-bit TIFF ({row['input_mb']} MB), {row['patches']} patches, "
          f"{row['seconds']} s, peak resident {row['peak_rss_gb']} GB")
    report = {"benchmark": "large_file_memory", "cpu": platform.processor() or platform.machine(),
              "versions": {"python": platform.python_version(), "torch": torch.__version__},
              "settings": {"preset": args.preset, "mask": "auto" if args.auto else f"{args.scratches} scratches",
                           "sensitivity": args.sensitivity if args.auto else None, "seed": args.seed,
                           "threads": os.environ.get("OMP_NUM_THREADS", "default")}, "result": row}
    write_result("large_file_memory", args.tag, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
