"""``restorer detect``: suggest a damage mask (dust, fibres, thin scratches) for one scan.

The mask is an 8-bit PNG the size of the scan, 255 = damaged, ready for ``restore --mask`` or
for touching up in the GUI. By default it is the mask ``restore --mask auto`` and the GUI's
Detect damage use (:func:`restorer_app.restore.detect.repair_mask`: every defect found, grown to
its whole extent); ``--tight`` writes the detector's tighter suggestion
(:func:`~restorer_app.restore.detect.detect_damage`, the one scored by pixel F1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("detect", help="suggest a damage mask (dust and scratches) for a photo")
    p.add_argument("input", metavar="INPUT", help="scanned photo (PNG, JPEG or TIFF)")
    p.add_argument("-o", "--output", required=True, metavar="MASK", help="mask to write (.png, 255 = damaged)")
    p.add_argument("--overwrite", action="store_true", help="replace MASK if it exists")
    p.add_argument("--tight", action="store_true", help="only the surest pixels (best pixel F1), not the repair mask")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from restorer_app.imaging.io import read_image
    from restorer_app.restore.detect import detect_damage, repair_mask

    source, output = Path(args.input), Path(args.output)
    check_mask_path(output, source, args.overwrite)
    mask = (detect_damage if args.tight else repair_mask)(read_image(source).pixels)
    write_mask(output, mask, args.overwrite)
    flagged = int(np.count_nonzero(mask))
    found = f"{flagged / mask.size:.2%} of the pixels flagged" if flagged else "no damage found"
    print(f"wrote {output}: {found}")
    return 0


def check_mask_path(output: Path, source: Path, overwrite: bool) -> None:
    """Refuse a mask path before reading the scan: not .png, existing, or the scan itself."""
    from restorer_app.imaging.errors import ImageError
    from restorer_app.imaging.io import check_output_path

    if output.suffix.lower() != ".png":
        raise ImageError(output, "a mask is written as PNG; name it .png")
    check_output_path(output, source, overwrite)


def write_mask(path: Path, mask: np.ndarray, overwrite: bool = False) -> None:
    """Write a bool mask atomically as an 8-bit greyscale PNG, 255 = damaged."""
    from PIL import Image

    from restorer_app.imaging.atomic import atomic_output

    with atomic_output(path, overwrite) as f:
        Image.fromarray(mask.astype(np.uint8) * 255).save(f, format="PNG")
