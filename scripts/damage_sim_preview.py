"""Contact sheets of the damage simulator: one PNG per damage class and one of mixed damage.

Each row is one training photo (a random crop): the damaged picture | its mask over it, coloured
by class. Sheets go to runs/damage_sim_preview/ (git-ignored). Also times ``simulate`` on
256x256 crops with the shape library loaded.

    python scripts/damage_sim_preview.py [--n 6] [--crop 256] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from restorer_app.damage_sim import DAMAGE_CLASSES, SimSpec, default_shape_library, simulate  # noqa: E402

TRAIN = REPO.parent / "shared" / "data" / "train"
#: overlay colour per class id (0 unused)
COLOURS = np.array([[0, 0, 0], [255, 60, 60], [255, 160, 0], [255, 255, 0], [0, 220, 255],
                    [60, 255, 60], [255, 0, 255], [60, 120, 255], [180, 90, 30]], np.float32) / 255


def load_crops(n: int, crop: int, rng: np.random.Generator) -> list[np.ndarray]:
    files = sorted(TRAIN.rglob("*.jpg")) + sorted(TRAIN.rglob("*.png"))
    crops = []
    for i in rng.choice(len(files), n, replace=False):
        img = np.asarray(Image.open(files[i]).convert("RGB"), np.float32) / 255.0
        if crop:
            h, w = img.shape[:2]
            y, x = int(rng.integers(0, max(h - crop, 0) + 1)), int(rng.integers(0, max(w - crop, 0) + 1))
            img = img[y : y + crop, x : x + crop]
        crops.append(img)
    return crops


def overlay(result) -> np.ndarray:
    out = result.image.copy()
    m = result.mask
    out[m] = 0.35 * out[m] + 0.65 * COLOURS[result.classes[m]]
    return out


def sheet(rows: list[np.ndarray], path: Path) -> None:
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=1.0) for r in rows]
    Image.fromarray(np.round(np.concatenate(padded) * 255).astype(np.uint8)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6)
    parser.add_argument("--crop", type=int, default=256, help="square crop size (0: whole photo)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "damage_sim_preview")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # one core, as one data-loader worker would use it
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    shapes = default_shape_library()
    print(f"shape library: {'none' if shapes is None else len(shapes)} shapes ({time.perf_counter() - t0:.2f} s)")
    rng = np.random.default_rng(args.seed)
    crops = load_crops(args.n, args.crop, rng)
    gap = np.ones((crops[0].shape[0], 4, 3), np.float32)
    for k, name in enumerate((*DAMAGE_CLASSES, "mixed")):
        spec = SimSpec() if name == "mixed" else SimSpec.only(name)
        rows = []
        for i, img in enumerate(crops):
            result = simulate(img, args.seed * 10_000 + k * 100 + i, spec, shapes)
            gap = np.ones((img.shape[0], 4, 3), np.float32)
            rows.append(np.concatenate([result.image, gap, overlay(result)], axis=1))
            print(f"{name:14s} #{i}: tone {result.tone:9s} target {result.target_fraction:6.2%} "
                  f"masked {result.mask.mean():6.2%} defects {len(result.defects)}")
        sheet(rows, args.out / f"{name}.png")
    # timing on 256x256 crops, default spec, library loaded: wall clock and this process's CPU time
    timing = [img[:256, :256] for img in load_crops(20, 256, rng)]
    wall, cpu = [], []
    for i in range(200):
        t, c = time.perf_counter(), time.process_time()
        simulate(timing[i % len(timing)], 10_000 + i, SimSpec(), shapes)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    for name, values in (("wall", np.array(wall) * 1000), ("cpu", np.array(cpu) * 1000)):
        print(f"simulate 256x256 ({name}): median {np.median(values):.1f} ms, mean {values.mean():.1f} ms, "
              f"p90 {np.percentile(values, 90):.1f} ms, max {values.max():.1f} ms")


if __name__ == "__main__":
    main()
