"""Pack the training data for a lent GPU machine into .gpudata/ (git-ignored, carried by `run`).

The machine receives at most 64 MiB, the working tree (~30 MiB: the campaigns' checkpoint and
weights) counted in, so the default budget is what the tree leaves under 63 MiB.
Nothing is re-encoded lossily: Urban100 travels as lossless WebP crops of its PNG originals (the
central CROP x CROP pixels of every image: lossless, so the content stays clean, and all images
rather than a few whole ones), BSDS432 as its original JPEGs (the sampler downscales every JPEG
2-3x anyway), and the first KODAK Kodak24 images as lossless WebP under eval/kodak24 for held-out
bits/dim and the speed benchmark (RESTORER_EVAL_DATA=.gpudata/eval). Urban100 is packed first and
BSDS432 fills what is left, so the GPU sees every Urban100 crop beside most of BSDS432: packed the
other way round, the budget the tree leaves holds only 0-2 of the 80 Urban100 crops.
The real debris shapes (../shared/data/damage_shapes, 1.4 MiB) go to damage_shapes/ for the damage
segmenter's simulator (RESTORER_DAMAGE_SHAPES); like the photos they only travel to the device:
.gpudata is git-ignored, and nothing of it enters the repository.

    python models/pack_gpu_data.py [--crop 160] [--kodak 2] [--budget-mib MiB]

``--checks`` packs instead what the CUDA checks of ``benchmarks/cuda_checks.sh`` need, into
.gpudata-checks/ (git-ignored too): under site/, what the device's Python lacks: platformdirs and
the PNG part of imagecodecs (its whole wheel, 26 MiB, would not fit beside the working tree); the first KODAK
Kodak24 images, every McMaster18 photo and as many CBSD68 photos as the budget leaves (the
overnight benchmark's mosaics), all lossless; no training photos.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PNG_MODULES = {"_png", "_imcd", "_shared", "_shared_cython"}  # imagecodecs' parts that PNG needs
SHARED = ROOT.parent / "shared" / "data"


def travelling_tree_bytes() -> int:
    """Bytes of the files that travel with every `run`: tracked and untracked-not-ignored."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    files = (ROOT / name.decode() for name in listed if name)
    return sum(f.stat().st_size for f in files if f.is_file())


def lossless_webp(source: Path, target: Path, crop: int | None) -> None:
    with Image.open(source) as image:
        image = image.convert("RGB")
        if crop and min(image.size) > crop:
            left, top = (image.width - crop) // 2, (image.height - crop) // 2
            image = image.crop((left, top, left + crop, top + crop))
        image.save(target, "WEBP", lossless=True, quality=100, method=6)


def pack_checks(out: Path, kodak: int, budget: float) -> None:
    """platformdirs and imagecodecs' PNG codec under <out>/site, and the evaluation photos the CUDA checks read
    (RESTORER_EVAL_DATA=<out>/eval), lossless; CBSD68 fills what the budget leaves."""
    import imagecodecs
    import platformdirs

    shutil.rmtree(out, ignore_errors=True)
    package = Path(imagecodecs.__file__).parent
    (out / "site" / "imagecodecs").mkdir(parents=True)
    (out / "site" / "imagecodecs.libs").mkdir()
    for part in [*package.glob("*.py"), *(p for p in package.glob("_*.so") if p.name.split(".")[0] in PNG_MODULES)]:
        shutil.copy2(part, out / "site" / "imagecodecs" / part.name)
    for library in package.parent.glob("imagecodecs.libs/libpng*"):
        shutil.copy2(library, out / "site" / "imagecodecs.libs" / library.name)
    shutil.copytree(Path(platformdirs.__file__).parent, out / "site" / "platformdirs",
                    ignore=shutil.ignore_patterns("__pycache__"))
    counts, wanted = {}, {}
    used = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    for name, limit in (("kodak24", kodak), ("mcmaster18", None), ("cbsd68", None)):
        (out / "eval" / name).mkdir(parents=True)
        sources = sorted(p for p in (SHARED / "eval" / name).iterdir() if p.suffix.lower() in {".png", ".tif", ".bmp"})
        wanted[name], counts[name] = len(sources[:limit]), 0
        for source in sources[:limit]:
            target = out / "eval" / name / f"{source.stem}.webp"
            lossless_webp(source, target, None)
            if used + target.stat().st_size > budget:
                target.unlink()
                break
            used += target.stat().st_size
            counts[name] += 1
    if counts["kodak24"] < wanted["kodak24"] or counts["mcmaster18"] < wanted["mcmaster18"] or not counts["cbsd68"]:
        raise SystemExit(f"pack_gpu_data: error: the evaluation photos do not fit the {budget / 2**20:.1f} MiB "
                         f"the working tree leaves (packed {counts})")
    print(f"packed {out}: imagecodecs' PNG codec, photos {counts}; {used / 2**20:.1f} MiB of a "
          f"{budget / 2**20:.1f} MiB budget")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crop", type=int, default=160)
    parser.add_argument("--kodak", type=int, default=2)
    parser.add_argument("--budget-mib", type=float, help="default: 63 MiB less the travelling tree")
    parser.add_argument("--checks", action="store_true", help="pack the evaluation photos of the CUDA checks instead")
    parser.add_argument("--out", type=Path, help="default: .gpudata (.gpudata-checks with --checks)")
    args = parser.parse_args()
    budget = args.budget_mib * 2**20 if args.budget_mib else 63 * 2**20 - travelling_tree_bytes()
    if args.checks:
        pack_checks(args.out or ROOT / ".gpudata-checks", args.kodak, budget)
        return
    args.out = args.out or ROOT / ".gpudata"
    shutil.rmtree(args.out, ignore_errors=True)
    (args.out / "train" / "bsds432").mkdir(parents=True)
    (args.out / "train" / "urban100").mkdir()
    (args.out / "eval" / "kodak24").mkdir(parents=True)
    shutil.copytree(SHARED / "damage_shapes", args.out / "damage_shapes")
    for png in sorted((SHARED / "eval" / "kodak24").glob("*.png"))[: args.kodak]:
        lossless_webp(png, args.out / "eval" / "kodak24" / f"{png.stem}.webp", None)
    used = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    urban = bsds = 0
    for png in sorted((SHARED / "train" / "urban100").glob("*.png")):
        target = args.out / "train" / "urban100" / f"{png.stem}.webp"
        lossless_webp(png, target, args.crop)
        urban += 1
        used += target.stat().st_size
    if used > budget:
        raise SystemExit(f"pack_gpu_data: error: the Urban100 crops alone need {used / 2**20:.1f} MiB, "
                         f"over the {budget / 2**20:.1f} MiB budget; pass a smaller --crop")
    for jpeg in sorted((SHARED / "train" / "bsds432").glob("*.jpg")):
        size = jpeg.stat().st_size
        if used + size > budget:
            break
        shutil.copy2(jpeg, args.out / "train" / "bsds432" / jpeg.name)
        used += size
        bsds += 1
    print(f"packed {args.out}: {urban} Urban100 lossless crops, {bsds} of "
          f"{len(list((SHARED / 'train' / 'bsds432').glob('*.jpg')))} BSDS432 JPEGs, "
          f"{args.kodak} Kodak images, the debris shapes; {used / 2**20:.1f} MiB of a {budget / 2**20:.1f} MiB budget")


if __name__ == "__main__":
    main()
