"""``restorer detect``: suggest a damage mask for one scan.

The mask is an 8-bit PNG the size of the scan, 255 = damaged, ready for ``restore --mask`` or
for touching up in the GUI. By default it is the mask ``restore --mask auto`` and the GUI's
Detect damage use (:func:`restorer_app.restore.damage_finder.find_damage`: crisp debris found by
the hand-set chain, and with ``--sensitivity`` above 0 realistic damage found by the learned
segmenter, grown over its soft edge); ``--tight`` writes it without that growth.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from restorer_app.restore.settings import DEFAULT_SENSITIVITY


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("detect", help="suggest a damage mask (dust, hairs, scratches, cracks, tears, stains)")
    p.add_argument("input", metavar="INPUT", help="scanned photo (PNG, JPEG or TIFF)")
    p.add_argument("-o", "--output", required=True, metavar="MASK", help="mask to write (.png, 255 = damaged)")
    p.add_argument("--overwrite", action="store_true", help="replace MASK if it exists")
    p.add_argument("--tight", action="store_true", help="the damage found, without the growth over its soft edges")
    p.add_argument("--sensitivity", type=float, default=DEFAULT_SENSITIVITY, metavar="S",
                   help="0-1 (default %(default)s: crisp dust and scratches only); above 0 a learned detector adds "
                   "cracks, tears, hairs and stains, and marks more of the picture")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from restorer_app.imaging.io import read_image
    from restorer_app.restore.damage_finder import find_damage

    source, output = Path(args.input), Path(args.output)
    check_mask_path(output, source, args.overwrite)
    if not 0.0 <= args.sensitivity <= 1.0:
        raise ValueError(f"sensitivity {args.sensitivity}: must lie between 0 and 1")
    damage = find_damage(read_image(source).pixels, args.sensitivity)
    mask = damage.found if args.tight else damage.repair
    write_mask(output, mask, args.overwrite)
    flagged = int(np.count_nonzero(mask))
    kinds = f" ({', '.join(damage.classes)})" if damage.classes else ""
    found = f"{flagged / mask.size:.2%} of the pixels flagged{kinds}" if flagged else "no damage found"
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
