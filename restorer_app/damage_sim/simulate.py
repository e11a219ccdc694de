"""Damage a clean photo the way old prints and film scans are damaged, with an exact mask.

``simulate`` tones the photo, draws defects class by class into a pixel budget, then applies
the scan finish to the damaged and the clean picture alike.

Choices, stated once:
- Classes are drawn in physical order: stains, creases, cracks, tears (in the print), then
  print and film scratches, then hairs and dust (lying on top at scan time), so later ones
  cover earlier ones.
- The budget (see spec.py) is split among the enabled classes; a class whose share is below
  the smallest defect it can draw (``MIN_BUDGET`` px; for film scratches 2 px per pixel of the
  image's longer side) hands its share to the others (if all are below, the most heavily
  weighted class takes it all). No class gets more than ``CAP`` of the image (beyond that it
  stops looking like any real photo: 3 % of film scratches, 5 % of hairs, 8 % of print
  scratches or creases, 12 % of tears); the excess goes to the uncapped classes, and when every
  enabled class is capped the image gets less than the target.
- Each class draws at least one defect, and more until the mask pixels it added come within
  half its ``MIN_BUDGET`` of its share, or it says it is done (creases: 3 at most), or 12
  defects in a row added nothing, or 6 in a row were too large, or 3000 were drawn. Defects
  shrink to fit a small remaining share, down to their minimum size; one that would add more
  than the remaining share plus ``MIN_BUDGET`` (3x that before the class's first visible
  defect) is undone (too large) and the next one is asked to fit 0.6x the budget, so the
  damaged fraction stays near its target.
- The mask and class rules are the canvas's (canvas.py): visibility threshold 0.04.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import cracks, creases, dust, hair, palette, scratches, stains, tears
from .canvas import Canvas
from .finish import apply_finish, draw_finish
from .shapes import ShapeLibrary
from .spec import DAMAGE_CLASSES, SimSpec, class_id
from .tones import apply_tone, pick_tone

ORDER = ("stain", "crease", "crack", "tear", "print_scratch", "film_scratch", "hair", "dust")
DRAW = {
    "dust": dust.draw, "hair": hair.draw, "print_scratch": scratches.draw_print,
    "film_scratch": scratches.draw_film, "crack": cracks.draw, "crease": creases.draw,
    "tear": tears.draw, "stain": stains.draw,
}
#: Pixels of budget below which a class is not drawn at all (about its smallest defect).
MIN_BUDGET = {"dust": 10, "hair": 20, "print_scratch": 25, "crack": 20, "crease": 60, "tear": 20,
              "stain": 20}
#: Largest share of the image one class may cover.
CAP = {"dust": 0.15, "hair": 0.05, "print_scratch": 0.08, "film_scratch": 0.03, "crack": 0.15,
       "crease": 0.08, "tear": 0.12, "stain": 0.15}
MAX_IDLE = 12
MAX_REJECTED = 6
MAX_DEFECTS = 3000


@dataclass
class SimulatedDamage:
    """A damaged picture, its clean target and what was done to it.

    image: float32 HxWx3 in [0, 1], toned, damaged, then grain / blur / JPEG of the scan.
    clean: the same toned picture with the same finish (same noise draw) and no damage.
    mask: bool HxW, every pixel the damage visibly changed (before the finish), soft edges included.
    classes: uint8 HxW, id (DAMAGE_CLASSES index + 1) of the defect dominating each masked pixel.
    defects: one dict per defect drawn: class, bbox (top, left, bottom, right), pixels (mask
    pixels it added) and its drawn parameters. tone, finish and target_fraction: the per-image draws.
    """

    image: np.ndarray
    clean: np.ndarray
    mask: np.ndarray
    classes: np.ndarray
    defects: list[dict]
    tone: str = "keep"
    finish: dict = field(default_factory=dict)
    target_fraction: float = 0.0


def _as_float_rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    img = img.astype(np.float32)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    return np.clip(img, 0.0, 1.0)


def _min_budget(name: str, shape: tuple[int, int]) -> float:
    """The smallest share worth drawing for a class (film scratches must span half the image)."""
    return scratches.min_footprint(shape) if name == "film_scratch" else float(MIN_BUDGET[name])


def _budgets(spec: SimSpec, shape: tuple[int, int], fraction: float, rng: np.random.Generator) -> dict[str, float]:
    """Pixel budget of each enabled class (see the module docstring)."""
    area = shape[0] * shape[1]
    names = [n for n in DAMAGE_CLASSES if spec.classes.get(n, 0.0) > 0]
    weights = np.array([spec.classes[n] for n in names]) * rng.gamma(spec.mix_concentration, 1.0, len(names))
    weights = np.maximum(weights, 1e-12)
    minimum = np.array([_min_budget(n, shape) for n in names], float)
    cap = np.array([CAP[n] for n in names]) * area
    total = fraction * area
    active = np.ones(len(names), bool)
    while True:
        shares = np.where(active, total * weights / weights[active].sum(), 0.0)
        small = active & (shares < minimum)
        if small.any() and small.sum() < active.sum():
            active &= ~small
            continue
        if small.all():  # nothing fits: the most heavily weighted class takes it all
            active = np.zeros(len(names), bool)
            active[int(np.argmax(weights))] = True
            shares = np.where(active, total, 0.0)
        break
    for _ in range(len(names)):  # cap, and hand the excess to the uncapped active classes
        over = shares > cap
        if not over.any():
            break
        excess = float((shares - cap)[over].sum())
        shares = np.minimum(shares, cap)
        room = active & (shares < cap)
        if not room.any():
            break
        shares[room] += excess * weights[room] / weights[room].sum()
    return {n: float(s) for n, s in zip(names, shares) if s > 0}


def simulate(clean: np.ndarray, rng: np.random.Generator | int, spec: SimSpec | None = None,
             shapes: ShapeLibrary | None = None) -> SimulatedDamage:
    """Damage ``clean`` (float32 HxWx3 in [0, 1], or uint8); the same seed gives the same result
    bit for bit. ``shapes``: real debris shapes (None: dust, dirt and hairs drawn procedurally)."""
    rng = np.random.default_rng(rng)
    spec = SimSpec() if spec is None else spec
    img = _as_float_rgb(clean)
    h, w = img.shape[:2]
    tone = pick_tone(spec.tone, spec.tone_probs, rng)
    toned = apply_tone(img, tone)
    canvas = Canvas(toned, palette.paper(rng))
    lo, hi = spec.fraction
    fraction = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    budgets = _budgets(spec, (h, w), fraction, rng)
    defects: list[dict] = []
    for name in ORDER:
        if name not in budgets:
            continue
        share, added_total, idle, rejected, count = budgets[name], 0, 0, 0, 0
        least = _min_budget(name, (h, w))
        state: dict = {"debris_scale": spec.debris_scale,  # per class and image: clusters, groups
                       "plate_crack_share": spec.plate_crack_share}
        cid = class_id(name)
        while ((added_total <= 0 or share - added_total >= 0.5 * least)
               and idle < MAX_IDLE and rejected < MAX_REJECTED and count < MAX_DEFECTS):
            remaining = share - added_total
            # after a too-large defect, ask for a smaller one
            layers, params = DRAW[name](canvas, rng, remaining * 0.6**rejected, shapes, state)
            if params.get("done"):  # the class draws no more on this image
                break
            count += 1
            slack = least if added_total > 0 else 3 * least  # the first defect may be its smallest
            added, box = canvas.apply(cid, layers, limit=remaining + slack)
            if added < 0:  # too large: undone
                rejected += 1
                continue
            rejected = 0
            idle = idle + 1 if added == 0 else 0
            added_total += added
            if box is not None:
                defects.append({"class": name, "bbox": tuple(int(v) for v in box), "pixels": int(added), **params})
    canvas.finish()
    finish = draw_finish(spec, rng)
    image, clean_out = apply_finish([canvas.image, toned], finish, mono=tone != "keep", rng=rng)
    return SimulatedDamage(image=image, clean=clean_out, mask=canvas.mask, classes=canvas.classes,
                           defects=defects, tone=tone, finish=finish, target_fraction=fraction)
