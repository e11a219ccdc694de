"""Stains and foxing: translucent brown or yellow marks in the paper (damp, mould, rusting
impurities), seen only where the picture is light enough.

Parameter ranges (one mark per call):
- foxing spot (p 0.5): 5-15 px across, a round ragged blob, darker in the middle; with p 0.6
  it lies within 30 px of the previous spot (foxing comes in clusters);
- stain (p 0.5): 15-80 px across (log-uniform, capped by the pixel budget), a lobed blob with
  a soft edge (sigma 5-20 % of its size); with p 0.5 a darker tide line at its rim;
- colour: a dye multiplied into the picture, between brown (0.62, 0.42, 0.18) and yellow
  (0.90, 0.78, 0.35); opacity U(0.1, 0.5), mottled by +-25 % noise inside.
Only the part that changes the picture by the visibility threshold enters the mask (canvas).
"""

from __future__ import annotations

import cv2
import numpy as np

from .canvas import Canvas, Layer
from .geometry import fill_polygon, radial_polygon, smooth_noise_2d, soften
from .shapes import ShapeLibrary

BROWN = np.array([0.62, 0.42, 0.18], np.float32)
YELLOW = np.array([0.90, 0.78, 0.35], np.float32)


def draw(canvas: Canvas, rng: np.random.Generator, budget: float, shapes: ShapeLibrary | None,
         state: dict) -> tuple[list[Layer], dict]:
    h, w = canvas.shape
    foxing = rng.random() < 0.5
    if foxing:
        size = float(rng.uniform(5.0, 15.0))
        if "last" in state and rng.random() < 0.6:
            centre = np.clip(state["last"] + rng.uniform(-30, 30, 2), 0, [w - 1, h - 1])
        else:
            centre = rng.uniform([0, 0], [w, h])
        state["last"] = centre
        poly = radial_polygon(size / 2, rng.uniform(0.1, 0.4), rng, jagged=0.3)
        soft = size * float(rng.uniform(0.1, 0.25))
    else:
        size = float(np.exp(rng.uniform(np.log(15.0), np.log(80.0))))
        size = float(np.clip(size, 15.0, np.sqrt(budget * 4 / np.pi) * 1.2))
        centre = rng.uniform([0, 0], [w, h])
        poly = radial_polygon(size / 2, rng.uniform(0.3, 0.8), rng, jagged=rng.uniform(0.0, 0.4),
                              elongation=rng.uniform(1.0, 1.8))
        soft = size * float(rng.uniform(0.05, 0.2))
    alpha, top, left = fill_polygon(poly + centre, soft)
    hard = (alpha > 0.5).astype(np.uint8)
    tide = False
    if foxing:  # darker middle
        inner = cv2.distanceTransform(hard, cv2.DIST_L2, 3)
        alpha = alpha * (0.6 + 0.4 * np.clip(inner / max(inner.max(), 1e-6), 0, 1))
    elif rng.random() < 0.5:  # a tide line at the rim
        tide = True
        ring = hard - cv2.erode(hard, np.ones((3, 3), np.uint8), iterations=int(rng.integers(1, 4)))
        alpha = np.clip(0.6 * alpha + soften(ring.astype(np.float32), 1.0), 0, 1)
    alpha = alpha * np.clip(1 + 0.25 * smooth_noise_2d(*alpha.shape, max(size / 6, 2.0), rng), 0, 1.3)
    opacity = float(rng.uniform(0.1, 0.5))
    mix = float(rng.uniform(0, 1))
    dye = BROWN + (YELLOW - BROWN) * mix
    params = {"kind": "foxing" if foxing else "stain", "size": round(size, 1), "opacity": round(opacity, 3),
              "tint": round(mix, 3), "tide_line": tide, "soft": round(soft, 2)}
    return [Layer(np.clip(alpha * opacity, 0, 1).astype(np.float32), top, left, dye, "multiply")], params
