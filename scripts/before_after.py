"""The README's before/after picture: a Kodak24 crop damaged by the project's simulator of old-print
damage, repaired by the product's command line with the damage mask, side by side.

Photo: kodim04 of the Kodak Photo CD Photo Sampler (Eastman Kodak Company), read at run time from
../shared/data/eval/kodak24/ (free to use for any purpose associated with electronic imaging).
The damage is simulated (``restorer_app.damage_sim``: sepia toning, cracks, a crease, scratches,
a hair and dust, with the exact mask), because no real damaged scan in ../shared/data/ may be
copied into the repository. The mask given to ``restorer restore`` is the simulator's, standing
in for one painted with the app's brush: ``--mask auto`` does not find damage of this kind yet.

    python scripts/before_after.py [--out docs/images/before-after.jpg] [--preset fast] [--seed 2]

About two minutes on one CPU thread. The intermediate files (damaged PNG, mask, restored PNG,
provenance and change map) go to a temporary folder, or to --keep DIR.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from restorer_app.damage_sim import SimSpec, default_shape_library, simulate  # noqa: E402

PHOTO = ROOT.parent / "shared" / "data" / "eval" / "kodak24" / "kodim04.png"
#: (left, top, side) of the region of kodim04 (512x768) that is cut, then downscaled to SIDE.
REGION = (40, 120, 432)
SIDE = 320
GAP = 8
SPEC = SimSpec(classes={"dust": 1.0, "hair": 0.5, "print_scratch": 0.8, "crack": 1.0, "crease": 0.5},
               fraction=(0.03, 0.05), tone="sepia", grain=(2.0, 3.0), blur=(0.0, 0.0), jpeg=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "images" / "before-after.jpg"))
    parser.add_argument("--photo", default=str(PHOTO))
    parser.add_argument("--preset", default="fast", choices=["fast", "standard", "best"])
    parser.add_argument("--seed", type=int, default=2, help="the simulator's seed")
    parser.add_argument("--keep", help="folder for the intermediate files (default: a temporary one)")
    args = parser.parse_args()

    photo = Path(args.photo)
    if not photo.is_file():
        raise SystemExit(f"before_after: {photo}: photo not found (pass --photo with Kodak24's kodim04.png)")
    left, top, side = REGION
    with Image.open(photo) as image:
        crop = image.convert("RGB").crop((left, top, left + side, top + side)).resize((SIDE, SIDE), Image.LANCZOS)
    damaged = simulate(np.asarray(crop, np.float32) / 255.0, args.seed, SPEC, default_shape_library())

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        scan, mask, restored = work / "damaged.png", work / "mask.png", work / "restored.png"
        Image.fromarray(np.round(damaged.image * 255).astype(np.uint8)).save(scan)
        Image.fromarray(damaged.mask.astype(np.uint8) * 255).save(mask)
        subprocess.run([sys.executable, "-m", "restorer_app.cli", "restore", str(scan), "-o", str(restored),
                        "--mask", str(mask), "--preset", args.preset, "--overwrite"], check=True)
        with Image.open(scan) as before, Image.open(restored) as after:
            sheet = Image.new("RGB", (2 * SIDE + GAP, SIDE), "white")
            sheet.paste(before.convert("RGB"), (0, 0))
            sheet.paste(after.convert("RGB"), (SIDE + GAP, 0))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=88, optimize=True)
    print(f"before_after: {out} ({out.stat().st_size // 1024} KB), mask {damaged.mask.mean():.1%} of the pixels")


if __name__ == "__main__":
    main()
