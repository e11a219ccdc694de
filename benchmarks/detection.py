"""Automatic damage detection: the detector against a morphological top-hat baseline.

The test images are built from the evaluation photos: each photo is downscaled 2x (area
averaging, which also removes most of the photo's own noise and JPEG blocks), centre-cropped to at
most 256x256 and damaged with the "scratches" degradation (film grain sigma 5, then dust specks,
fibres and thin scratches on 1-3 % of the pixels; seed = 1000 x the set's index + the photo's). Every second
photo is also used as a greyscale copy (its luminance), damaged with another seed.

Per image: pixel precision, recall and F1 with 1-px tolerance (a flagged pixel is right when a
truly damaged pixel lies in its 3x3 neighbourhood; a damaged pixel is found when a flagged one
does), for the detector (its suggested mask), the repair mask that ``--mask auto`` restores (with
the damage network's gate) and the baseline, plus the fraction of pixels flagged on the same crop
with grain only (no damage). Kodak24 is the validation set (every threshold of the detector and
the baseline was chosen on it); McMaster18 and CBSD68 are the test sets.

    python -m benchmarks.detection [--sets kodak24 mcmaster18 cbsd68] [--limit N] [--tag NAME]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Callable, NamedTuple

import cv2
import numpy as np
import torch

from benchmarks.baselines import inpaint, navier_stokes
from benchmarks.datasets import EVAL_SETS, centre_crop, load_eval_set
from benchmarks.metrics import masked_psnr
from restorer_app.restore.degradations import SCRATCH_GRAIN_SIGMA, add_gaussian_noise, add_scratches, degradation_info
from restorer_app.restore.detect import detect_damage, repair_mask, tophat_baseline

RESULTS = Path(__file__).parent / "results"
CROP = 256
DOWNSCALE = 2
SETUP = f"{DOWNSCALE}x-downscaled centre crops of at most {CROP}x{CROP} (every second photo also in grey)"
# "detector" is the suggested mask (scored by F1); "repair" the mask ``--mask auto`` restores
DETECTORS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "detector": detect_damage, "repair": repair_mask, "tophat": tophat_baseline}


class Case(NamedTuple):
    set: str
    name: str  # photo name, with "-grey" for the greyscale copy
    clean: np.ndarray  # the truth a restoration is scored against
    grainy: np.ndarray  # grain only: what a detector must leave alone
    damaged: np.ndarray
    mask: np.ndarray


def prepare(image: np.ndarray) -> np.ndarray:
    """Downscale ``DOWNSCALE``x by area averaging, then centre-crop to at most ``CROP`` a side."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (w // DOWNSCALE, h // DOWNSCALE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(centre_crop(small, CROP))


def greyscale(image: np.ndarray) -> np.ndarray:
    """HxWx1 luminance (Rec. 601 weights, as a greyscale scan would store it)."""
    return (image @ np.array([0.299, 0.587, 0.114], np.float32))[:, :, None]


def build_cases(set_name: str, limit: int | None = None, first: int = 0) -> list[Case]:
    """The cases of photos ``first`` to ``limit`` (0-based, end excluded) of a set; a photo's
    damage depends on its place in the set only, so a range gives the same cases as the whole."""
    cases = []
    set_seed = 1000 * EVAL_SETS.index(set_name)
    for index, item in enumerate(load_eval_set(set_name, limit=limit, first=first), start=first):
        image = prepare(item.image)
        variants = [(item.name, image, set_seed + index)]
        if index % 2 == 0:
            variants.append((f"{item.name}-grey", greyscale(image), set_seed + 500 + index))
        for name, clean, seed in variants:
            damaged, mask = add_scratches(clean, seed)
            grainy = add_gaussian_noise(clean, SCRATCH_GRAIN_SIGMA, seed)
            cases.append(Case(set_name, name, clean, grainy, damaged, mask))
    return cases


def tolerant_scores(predicted: np.ndarray, truth: np.ndarray) -> dict:
    """Precision, recall and F1 with 1-px (3x3 neighbourhood) tolerance."""
    near = np.ones((3, 3), np.uint8)
    near_truth = cv2.dilate(truth.astype(np.uint8), near).astype(bool)
    near_predicted = cv2.dilate(predicted.astype(np.uint8), near).astype(bool)
    flagged, damaged = int(predicted.sum()), int(truth.sum())
    precision = float((predicted & near_truth).sum() / flagged) if flagged else 1.0
    recall = float((truth & near_predicted).sum() / damaged) if damaged else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def evaluate(case: Case, detector: Callable[[np.ndarray], np.ndarray]) -> dict:
    """Pixel scores, flags on the grain-only crop, and what the mask is worth for a repair: PSNR
    inside the true damage when Navier-Stokes fills the predicted mask (a missed pixel keeps its
    debris, a clean pixel in the mask loosens the fill beside it)."""
    started = time.perf_counter()
    predicted = detector(case.damaged)
    seconds = time.perf_counter() - started
    filled = inpaint(navier_stokes, case.damaged, predicted, degradation_info("scratches"))
    return {**tolerant_scores(predicted, case.mask), "seconds": seconds,
            "clean_flagged": float(detector(case.grainy).mean()),
            "fill_psnr": masked_psnr(case.clean, filled, case.mask)}


def run(sets: list[str], limit: int | None) -> list[dict]:
    rows = []
    for set_name in sets:
        for case in build_cases(set_name, limit):
            truth_filled = inpaint(navier_stokes, case.damaged, case.mask, degradation_info("scratches"))
            row = {"set": case.set, "image": case.name, "size": list(case.damaged.shape),
                   "damaged_fraction": float(case.mask.mean()),
                   "true_mask_fill_psnr": masked_psnr(case.clean, truth_filled, case.mask)}
            for method, detector in DETECTORS.items():
                row[method] = evaluate(case, detector)
            rows.append(row)
            print(f"{case.set}/{case.name}: " + ", ".join(
                f"{m} F1 {row[m]['f1']:.3f} (P {row[m]['precision']:.2f} R {row[m]['recall']:.2f})" for m in DETECTORS),
                flush=True)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    table = []
    for set_name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == set_name]
        for method in DETECTORS:
            column = lambda key: np.array([r[method][key] for r in mine])  # noqa: E731
            table.append({"set": set_name, "method": method, "images": len(mine),
                          "mean_f1": float(column("f1").mean()), "min_f1": float(column("f1").min()),
                          "precision": float(column("precision").mean()), "recall": float(column("recall").mean()),
                          "clean_flagged": float(column("clean_flagged").mean()),
                          "fill_psnr": float(column("fill_psnr").mean()),
                          "seconds": float(column("seconds").mean())})
    return table


def markdown(table: list[dict]) -> str:
    lines = ["| set | method | crops | mean F1 | min F1 | precision | recall | flagged on clean | "
             "N-S fill, damaged px (dB) | s/image |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for e in table:
        lines.append(f"| {e['set']} | {e['method']} | {e['images']} | {e['mean_f1']:.3f} | {e['min_f1']:.3f} | "
                     f"{e['precision']:.3f} | {e['recall']:.3f} | {e['clean_flagged'] * 100:.3f} % | "
                     f"{e['fill_psnr']:.2f} | {e['seconds']:.3f} |")
    return "\n".join(lines)


def time_large(detector: Callable[[np.ndarray], np.ndarray], side: int = 2048) -> float:
    """Seconds for ``detector`` on a side x side (4-megapixel) damaged photo."""
    photo = cv2.resize(load_eval_set("kodak24", limit=1)[0].image, (side, side), interpolation=cv2.INTER_CUBIC)
    damaged, _ = add_scratches(np.clip(photo, 0, 1), 0)
    started = time.perf_counter()
    detector(damaged)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(EVAL_SETS), choices=EVAL_SETS)
    parser.add_argument("--limit", type=int, help="photos per set (default: all)")
    parser.add_argument("--tag", default="", help="suffix of the output files: detection[_TAG].json")
    args = parser.parse_args()
    rows = run(args.sets, args.limit)
    table = summarise(rows)
    seconds_4mp = {name: time_large(DETECTORS[name]) for name in ("detector", "repair")}
    report = {
        "benchmark": "detection",
        "cpu": platform.processor() or platform.machine(),
        "threads": cv2.getNumThreads(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "settings": {**vars(args), "downscale": DOWNSCALE, "crop": CROP, "tolerance_px": 1,
                     "degradation": degradation_info("scratches"), "validation_set": "kodak24"},
        "seconds_4mp": seconds_4mp,
        "summary": table,
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "detection" + (f"_{args.tag}" if args.tag else "")
    text = (f"Damage detection, \"scratches\" degradation on {SETUP}; F1 with 1-px tolerance. Kodak24 is the "
            "validation set (all thresholds were chosen on it); McMaster18 and CBSD68 are the test sets.\n\n"
            + markdown(table) + "\n\nN-S filling the true mask instead: " + ", ".join(
                f"{name} {np.mean([r['true_mask_fill_psnr'] for r in rows if r['set'] == name]):.2f} dB"
                for name in dict.fromkeys(r["set"] for r in rows))
            + f".\n\nOn a 2048x2048 photo: suggested mask {seconds_4mp['detector']:.2f} s, "
            f"repair mask {seconds_4mp['repair']:.2f} s (OpenCV threads: {cv2.getNumThreads()}, "
            f"torch threads: {torch.get_num_threads()})\n")
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=1))
    (RESULTS / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
