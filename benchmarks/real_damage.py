"""Damage detection on realistic damage: the learned segmenter, the hand-set chain's repair mask, their
union (``--mask auto`` above sensitivity 0) and a top-hat baseline, on simulated and real damage.

Cases: every evaluation photo, downscaled 2x by area averaging and centre-cropped to at most
384x384, damaged by the damage simulator (``restorer_app.damage_sim``, default spec: every class,
0.3-15 % of the pixels, a random tone, grain, blur and JPEG; seed = 1000 x the set's index + the
photo's). Kodak24 is the validation split (the threshold and the mask growth are chosen on it);
McMaster18 and CBSD68 are the test split.

Per case, for the segmenter's repair mask (its detection grown by ``--grow`` px,
``models/damage-segmenter.safetensors`` or ``--weights``), for the product's ``--mask auto``
(``restore.detect.repair_mask``), for the union of the two and for a morphological top-hat baseline (``detect.tophat_baseline``):
- pixel precision, recall, F1 against the simulator's mask (exact pixels, no tolerance);
- defects left visibly unrepaired: connected pieces of >= 5 damaged pixels outside the repair
  mask, as a share of the true defects (connected pieces of the true mask of >= 5 pixels), per
  class: what a person still sees after the repair; and the same share among the clearly
  visible defects alone (the damage changed them by >= 25/255 at the median: the faint ones,
  10-25/255, sit near a scan's grain and are most of those the segmenter misses wholly);
- false flags: the share of the same picture's clean (grain, blur and JPEG only) version flagged;
- Navier-Stokes fill of the repair mask: PSNR inside the true damage, next to N-S given the true
  mask and the damaged input's own PSNR there.
With ``--damage scratches`` the cases carry the project's older synthetic ``scratches`` damage
instead (grain, then crisp near-white / near-black lines and specks): what the product's chain was
built for, so a detector that replaces it must not lose them.
With ``--look-again PX`` also the union after the product's second look (``look_again``: the
damaged picture filled by Navier-Stokes inside the union, the segmenter run again, what it finds
within PX px of the union added): whether detecting on the repaired result finds what the first
look left; with ``--flow`` too, the flow's repair of the union and the product's second pass
over it (the segmenter run on the flow's result).
Then the human-masked real scan ``abraham.jpg`` (pixel F1 of the detection against the person's
mask) when ``../shared/data/realdata`` is there.

    python -m benchmarks.real_damage [--sets kodak24 mcmaster18 cbsd68] [--limit N] [--grow PX]
        [--sensitivity S] [--damage simulator|scratches] [--weights PATH] [--tag NAME]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from benchmarks.datasets import EVAL_SETS, centre_crop, load_eval_set
from benchmarks.metrics import masked_psnr
from restorer_app.damage_sim import DAMAGE_CLASSES, SIM_VERSION, simulate
from restorer_app.damage_sim import default_shape_library
from benchmarks.baselines import inpaint, navier_stokes
from restorer_app.damage_sim.spec import class_id
from restorer_app.restore.damage_finder import combine, grow, second_pass_mask
from restorer_app.restore.degradations import SCRATCH_GRAIN_SIGMA, add_gaussian_noise, degradation_info, paint_scratches
from restorer_app.restore.detect import repair_mask, tophat_baseline
from restorer_app.restore.segmenter import load_segmenter, segment, sensitivity_threshold

RESULTS = Path(__file__).parent / "results"
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "realdata"
CROP, DOWNSCALE = 384, 2
VISIBLE_PIECE = 5  # px: a piece of damage this large left outside the repair mask is seen
#: A defect whose pixels the damage changed by at least this much (median over the defect, the
#: largest change of the three channels: 25/255) is clearly visible; the mask's own threshold,
#: 0.04 (10/255), also counts the faint ones, near the grain of a scan.
CLEAR_CONTRAST = 0.1


def prepare(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    small = cv2.resize(image, (w // DOWNSCALE, h // DOWNSCALE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(centre_crop(small, CROP))


def pixel_scores(predicted: np.ndarray, truth: np.ndarray) -> dict:
    hit = int((predicted & truth).sum())
    precision = hit / max(int(predicted.sum()), 1) if predicted.any() else 1.0
    recall = hit / max(int(truth.sum()), 1) if truth.any() else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def defects_left(truth: np.ndarray, classes: np.ndarray, repair: np.ndarray, contrast: np.ndarray) -> dict:
    """True defects (pieces >= VISIBLE_PIECE px) and those with a visible piece left unrepaired,
    in all, per class (a piece's class: its most common one) and, under "clear", those of median
    ``contrast`` (per pixel: the damage's largest change of a channel) >= CLEAR_CONTRAST."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(truth.astype(np.uint8), connectivity=8)
    left_over = truth & ~repair
    _, left_labels, left_stats, _ = cv2.connectedComponentsWithStats(left_over.astype(np.uint8), connectivity=8)
    visible_left = np.isin(left_labels, np.flatnonzero(left_stats[:, cv2.CC_STAT_AREA] >= VISIBLE_PIECE)[1:])
    totals = {"all": [0, 0], "clear": [0, 0], **{name: [0, 0] for name in DAMAGE_CLASSES}}
    for piece in range(1, count):
        if stats[piece, cv2.CC_STAT_AREA] < VISIBLE_PIECE:
            continue
        where = labels == piece
        name = DAMAGE_CLASSES[int(np.bincount(classes[where], minlength=len(DAMAGE_CLASSES) + 1)[1:].argmax())]
        seen = bool(visible_left[where].any())
        clear = ("clear",) if np.median(contrast[where]) >= CLEAR_CONTRAST else ()
        for key in ("all", name, *clear):
            totals[key][0] += 1
            totals[key][1] += seen
    return totals


def navier_stokes_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return inpaint(navier_stokes, image, mask, degradation_info("scratches"))


def flow_restore(image: np.ndarray, repair: np.ndarray, preset: str) -> np.ndarray:
    from restorer_app.restore.pipeline import restore_image
    from restorer_app.restore.settings import RestoreSettings

    return restore_image(image, repair, RestoreSettings(preset=preset, device="cpu", scope="mask"))


def flow_psnr(case, repair: np.ndarray, preset: str) -> float:
    return masked_psnr(case.clean, flow_restore(case.image, repair, preset), case.mask)


def flow_look_again(case, net, threshold: float, repair: np.ndarray, reach: int, preset: str) -> tuple[float, float]:
    """PSNR inside the damage after the flow's repair of ``repair``, and after the product's second
    pass over what the segmenter finds again in that result (as ``restore_file`` does)."""
    restored = flow_restore(case.image, repair, preset)
    again = second_pass_mask(repair, segment(net, restored).probability >= threshold, reach)
    second = flow_restore(restored, again, preset) if again.any() else restored
    return masked_psnr(case.clean, restored, case.mask), masked_psnr(case.clean, second, case.mask)


@dataclass
class ScratchCase:
    """A case of the ``scratches`` degradation, shaped like the simulator's result."""

    image: np.ndarray
    clean: np.ndarray  # the same grain, no damage
    mask: np.ndarray
    classes: np.ndarray
    tone: str = "keep"


def scratches_case(image: np.ndarray, seed: int) -> ScratchCase:
    rng = np.random.default_rng(seed)
    grainy = add_gaussian_noise(image, SCRATCH_GRAIN_SIGMA, rng)
    damaged, mask = paint_scratches(grainy, rng)
    return ScratchCase(damaged, grainy, mask, mask.astype(np.uint8) * class_id("print_scratch"))


def look_again(net, threshold: float, filled: np.ndarray, repair: np.ndarray, reach: int) -> np.ndarray:
    """The repair mask after the product's second look (``damage_finder.second_pass_mask``): the
    segmenter run again on the picture ``filled`` inside ``repair`` (by Navier-Stokes, a stand-in
    for the flow's repair), what it finds within ``reach`` px of ``repair`` added to it."""
    return repair | second_pass_mask(repair, segment(net, filled).probability >= threshold, reach)


def evaluate(net, image, seed, shapes, threshold, grow_px, flow: str | None = None, damage: str = "simulator",
             reach: int = 0) -> dict:
    case = simulate(image, seed, shapes=shapes) if damage == "simulator" else scratches_case(image, seed)
    contrast = np.abs(case.image - case.clean).max(axis=2)
    started = time.perf_counter()
    found = segment(net, case.image).probability >= threshold
    seconds = time.perf_counter() - started
    repair = grow(found, grow_px)
    base = tophat_baseline(case.image)
    product = repair_mask(case.image)
    product_clean = repair_mask(case.clean)
    union = combine(product, found)
    clean_found = segment(net, case.clean).probability >= threshold
    union_filled = navier_stokes_fill(case.image, union)
    row = {"damaged_fraction": float(case.mask.mean()), "tone": case.tone, "seconds": seconds,
           "segmenter": {**pixel_scores(found, case.mask), "clean_flagged": float(clean_found.mean()),
                         "defects": defects_left(case.mask, case.classes, repair, contrast),
                         "ns_psnr": masked_psnr(case.clean, navier_stokes_fill(case.image, repair), case.mask)},
           "product": {**pixel_scores(product, case.mask), "clean_flagged": float(product_clean.mean()),
                       "defects": defects_left(case.mask, case.classes, product, contrast),
                       "ns_psnr": masked_psnr(case.clean, navier_stokes_fill(case.image, product), case.mask)},
           "union": {**pixel_scores(union, case.mask),
                     "clean_flagged": float((product_clean | clean_found).mean()),
                     "defects": defects_left(case.mask, case.classes, union, contrast),
                     "ns_psnr": masked_psnr(case.clean, union_filled, case.mask)},
           "tophat": {**pixel_scores(base, case.mask), "clean_flagged": float(tophat_baseline(case.clean).mean()),
                      "defects": defects_left(case.mask, case.classes, grow(base, grow_px), contrast)},
           "ns_true_mask_psnr": masked_psnr(case.clean, navier_stokes_fill(case.image, case.mask), case.mask),
           "input_psnr": masked_psnr(case.clean, case.image, case.mask)}
    if reach:
        again = look_again(net, threshold, union_filled, union, reach)
        first_clean = combine(product_clean, clean_found)
        added_clean = look_again(net, threshold, navier_stokes_fill(case.clean, first_clean), first_clean,
                                 reach) & ~first_clean
        row["look_again"] = {**pixel_scores(again, case.mask),
                             "clean_flagged": float((product_clean | clean_found | added_clean).mean()),
                             "defects": defects_left(case.mask, case.classes, again, contrast),
                             "ns_psnr": masked_psnr(case.clean, navier_stokes_fill(case.image, again), case.mask)}
    if flow is not None:
        row["segmenter"]["flow_psnr"] = flow_psnr(case, repair, flow)
        if reach:
            row["union"]["flow_psnr"], row["look_again"]["flow_psnr"] = flow_look_again(
                case, net, threshold, union, reach, flow)
    return row


def abraham(net, threshold, grow_px, reach: int = 0) -> dict | None:
    folder = REALDATA / "other" / "OpenCV_Projects"
    if not (folder / "abraham.jpg").is_file():
        return None
    image = np.asarray(Image.open(folder / "abraham.jpg").convert("RGB"), np.float32) / 255
    truth = np.asarray(Image.open(folder / "abraham_mask.png").convert("L")) > 127
    found = segment(net, image).probability >= threshold
    product = repair_mask(image)
    scores = {"detected": pixel_scores(found, truth), "repair_mask": pixel_scores(grow(found, grow_px), truth),
              "product": pixel_scores(product, truth), "union": pixel_scores(combine(product, found), truth),
              "tophat": pixel_scores(tophat_baseline(image), truth), "flagged_fraction": float(found.mean())}
    if reach:
        union = combine(product, found)
        scores["look_again"] = pixel_scores(look_again(net, threshold, navier_stokes_fill(image, union), union, reach),
                                            truth)
    return scores


def summarise(rows: list[dict]) -> list[dict]:
    table = []
    for set_name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == set_name]
        for method in ("segmenter", "product", "union", "tophat", "look_again"):
            if method not in mine[0]:
                continue
            defects = {k: [sum(r[method]["defects"][k][i] for r in mine) for i in (0, 1)]
                       for k in mine[0][method]["defects"]}
            table.append({
                "set": set_name, "method": method, "cases": len(mine),
                "f1": float(np.mean([r[method]["f1"] for r in mine])),
                "left_visible": defects["all"][1] / max(defects["all"][0], 1),
                "clear_left_visible": defects["clear"][1] / max(defects["clear"][0], 1),
                "clear_defects": defects["clear"][0],
                "left_by_class": {k: f"{v[1]}/{v[0]}" for k, v in defects.items() if k not in ("all", "clear") and v[0]},
                "clean_flagged": float(np.mean([r[method]["clean_flagged"] for r in mine])),
                "ns_psnr": float(np.mean([r[method]["ns_psnr"] for r in mine])) if method != "tophat" else None,
                "ns_true_mask_psnr": float(np.mean([r["ns_true_mask_psnr"] for r in mine])),
                "input_psnr": float(np.mean([r["input_psnr"] for r in mine])),
            })
            flows = [r for r in mine if "flow_psnr" in r[method]]
            if flows:
                table[-1].update(flow_cases=len(flows), flow_psnr=float(np.mean([r[method]["flow_psnr"] for r in flows])),
                                 flow_ns_true_mask_psnr=float(np.mean([r["ns_true_mask_psnr"] for r in flows])))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(EVAL_SETS), choices=EVAL_SETS)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--grow", type=int, default=2, help="px the segmenter's detection is grown by for its own repair mask (the product's union uses damage_finder.GROWTH)")
    parser.add_argument("--sensitivity", type=float, default=0.5)
    parser.add_argument("--weights", default=None, help="segmenter weights (default: the bundled ones)")
    parser.add_argument("--flow", choices=["fast", "standard", "best"], help="also restore with the flow")
    parser.add_argument("--flow-limit", type=int, default=6, help="cases per set restored with the flow")
    parser.add_argument("--damage", choices=("simulator", "scratches"), default="simulator")
    parser.add_argument("--look-again", type=int, default=0, metavar="PX",
                        help="also score the union after a second look (N-S fill, segment again, keep within PX px)")
    parser.add_argument("--tag", default="latest")
    args = parser.parse_args()
    torch.set_num_threads(1)
    net = load_segmenter(args.weights)
    threshold = sensitivity_threshold(args.sensitivity)
    shapes = default_shape_library()
    rows = []
    for set_name in args.sets:
        set_seed = 1000 * EVAL_SETS.index(set_name)
        for index, item in enumerate(load_eval_set(set_name, limit=args.limit)):
            flow = args.flow if index < args.flow_limit else None
            row = evaluate(net, prepare(item.image), set_seed + index, shapes, threshold, args.grow, flow, args.damage,
                           args.look_again)
            rows.append({"set": set_name, "name": item.name, **row})
    table = summarise(rows)
    real = abraham(net, threshold, args.grow, args.look_again)
    print(f"| set | method | cases | pixel F1 | defects left visible | of those >= 25/255 | clean flagged | N-S fill in damage "
          f"| N-S true mask | input |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for t in table:
        ns = f"{t['ns_psnr']:.2f}" if t["ns_psnr"] is not None else "-"
        print(f"| {t['set']} | {t['method']} | {t['cases']} | {t['f1']:.3f} | {100 * t['left_visible']:.1f} % "
              f"| {100 * t['clear_left_visible']:.1f} % of {t['clear_defects']} | {100 * t['clean_flagged']:.2f} % | {ns} | {t['ns_true_mask_psnr']:.2f} | {t['input_psnr']:.2f} |")
    for t in table:
        print(t["set"], t["method"], "left by class:", t["left_by_class"])
        if "flow_psnr" in t:
            print(f"{t['set']}: flow ({args.flow}) with the {t['method']} mask {t['flow_psnr']:.2f} dB inside the damage, "
                  f"N-S with the true mask {t['flow_ns_true_mask_psnr']:.2f} ({t['flow_cases']} cases)")
    if real is not None:
        print("abraham.jpg pixel F1: segmenter {:.3f} (grown {:.3f}), product {:.3f}, union {:.3f}, top-hat {:.3f}".format(
            real["detected"]["f1"], real["repair_mask"]["f1"], real["product"]["f1"], real["union"]["f1"],
            real["tophat"]["f1"]))
        if "look_again" in real:
            print(f"abraham.jpg pixel F1 after a second look: {real['look_again']['f1']:.3f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"real_damage_{args.tag}.json"
    out.write_text(json.dumps({
        "setup": f"{DOWNSCALE}x-downscaled centre crops of at most {CROP}x{CROP}",
        "damage": "damage_sim default spec" if args.damage == "simulator" else "scratches degradation",
        "sim_version": SIM_VERSION,
        "threshold": threshold, "sensitivity": args.sensitivity, "grow_px": args.grow,
        "weights": args.weights or "bundled", "look_again_px": args.look_again, "flow": args.flow, "flow_limit": args.flow_limit, "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "summary": table, "abraham": real, "cases": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
