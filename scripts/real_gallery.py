"""Gallery of the automatic damage mask on the real scans of ../shared/data/realdata.

For every scan (or those named): input | the automatic mask over it (``damage_finder.find_damage``:
red where the hand-set chain found damage, blue where only the learned segmenter did) | the
``--mask auto`` restoration (``restore_file`` with that mask, found once) | its change map, side by
side in one PNG per scan under ``runs/gallery/`` (git-ignored: the scans may not be copied into the repository,
see realdata/SOURCE.md). A scan larger than ``--max-side`` is first downscaled (area averaging)
into a temporary copy. Also prints, per scan, the share of pixels flagged and the classes found.

    python scripts/real_gallery.py [--preset fast] [--max-side 800] [--only abraham d.png ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from restorer_app.cli_detect import write_mask  # noqa: E402
from restorer_app.jobs.restore_file import changes_path, restore_file  # noqa: E402
from restorer_app.restore.damage_finder import find_damage  # noqa: E402
from restorer_app.restore.settings import RestoreSettings  # noqa: E402

REALDATA = ROOT.parent / "shared" / "data" / "realdata"
OUT = ROOT / "runs" / "gallery"
ANNOTATIONS = {"mask.jpg", "abraham_mask.png"}  # not photos


def scans(only: list[str]) -> list[Path]:
    found = sorted(p for p in REALDATA.rglob("*") if p.suffix.lower() in (".png", ".jpg") and p.name not in ANNOTATIONS)
    return [p for p in found if not only or any(name in str(p.relative_to(REALDATA)) for name in only)]


def downscaled_copy(path: Path, folder: Path, max_side: int, name: str) -> Path:
    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = max_side / max(im.size)
        if scale < 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BOX)
        copy = folder / f"{name}.png"
        im.save(copy)
    return copy


def overlay(before: np.ndarray, mask: np.ndarray, colour) -> np.ndarray:
    marked = before.copy()
    marked[mask] = (0.4 * marked[mask] + 0.6 * np.array(colour)).astype(np.uint8)
    return marked


def sheet(scan: Path, output: Path, chain: np.ndarray, learned: np.ndarray) -> Image.Image:
    before = np.asarray(Image.open(scan).convert("RGB"))
    after = np.asarray(Image.open(output).convert("RGB"))
    changes = np.asarray(Image.open(changes_path(output)).convert("RGB"))
    gap = np.full((before.shape[0], 8, 3), 255, np.uint8)
    marked = overlay(overlay(before, learned & ~chain, (0, 90, 255)), chain, (255, 0, 0))
    panels = [before, marked, after, changes]
    return Image.fromarray(np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--max-side", type=int, default=800)
    parser.add_argument("--sensitivity", type=float, default=0.5, help="of the automatic mask")
    parser.add_argument("--only", nargs="*", default=[], help="parts of the scans' paths to keep")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    settings = RestoreSettings(preset=args.preset, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        for path in scans(args.only):
            name = str(path.relative_to(REALDATA).with_suffix("")).replace("/", "_")  # a.png is in two folders
            copy = downscaled_copy(path, Path(tmp), args.max_side, name)
            output = Path(tmp) / f"{name}-restored.png"
            started = time.perf_counter()
            pixels = np.asarray(Image.open(copy).convert("RGB"))
            image = pixels.astype(np.float32) / 255
            damage = find_damage(image, args.sensitivity)  # what --mask auto restores, found once
            chain = damage.chain
            write_mask(Path(tmp) / "mask.png", damage.repair, overwrite=True)
            summary = restore_file(copy, output, settings, mask_path=Path(tmp) / "mask.png")
            sheet(copy, output, chain, damage.repair).save(OUT / f"{name}.png")
            print(f"{name}: {100 * damage.repair.mean():.2f} % repaired ({summary['patches']} patches; chain "
                  f"{100 * chain.mean():.2f} %), kinds {damage.classes}, {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
