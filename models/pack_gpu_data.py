"""Pack the training data for a lent GPU machine into .gpudata/ (git-ignored, carried by `run`).

The machine receives at most 64 MiB, the working tree (~20 MiB, checkpoint included) counted in.
Nothing is re-encoded lossily: BSDS432 travels as its original JPEGs (the sampler downscales
every JPEG 2-3x anyway), Urban100 as lossless WebP crops of its PNG originals (the central
CROP x CROP pixels of every image: lossless, so the content stays clean, and all images rather
than a few whole ones), and the first KODAK Kodak24 images as lossless WebP under eval/kodak24
for held-out bits/dim and the speed benchmark (RESTORER_EVAL_DATA=.gpudata/eval).

    python models/pack_gpu_data.py [--crop 192] [--kodak 4] [--budget-mib 42]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def lossless_webp(source: Path, target: Path, crop: int | None) -> None:
    with Image.open(source) as image:
        image = image.convert("RGB")
        if crop and min(image.size) > crop:
            left, top = (image.width - crop) // 2, (image.height - crop) // 2
            image = image.crop((left, top, left + crop, top + crop))
        image.save(target, "WEBP", lossless=True, quality=100, method=6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crop", type=int, default=192)
    parser.add_argument("--kodak", type=int, default=4)
    parser.add_argument("--budget-mib", type=float, default=42.0)
    parser.add_argument("--out", type=Path, default=ROOT / ".gpudata")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    (args.out / "train" / "bsds432").mkdir(parents=True)
    (args.out / "train" / "urban100").mkdir()
    (args.out / "eval" / "kodak24").mkdir(parents=True)
    for jpeg in sorted((SHARED / "train" / "bsds432").glob("*.jpg")):
        shutil.copy2(jpeg, args.out / "train" / "bsds432" / jpeg.name)
    for png in sorted((SHARED / "eval" / "kodak24").glob("*.png"))[: args.kodak]:
        lossless_webp(png, args.out / "eval" / "kodak24" / f"{png.stem}.webp", None)
    budget = args.budget_mib * 2**20
    used = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    packed = 0
    for png in sorted((SHARED / "train" / "urban100").glob("*.png")):
        target = args.out / "train" / "urban100" / f"{png.stem}.webp"
        lossless_webp(png, target, args.crop)
        size = target.stat().st_size
        if used + size > budget:
            target.unlink()
            break
        used += size
        packed += 1
    print(f"packed {args.out}: BSDS432 JPEGs, {packed} Urban100 lossless crops, {args.kodak} Kodak images; {used / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
