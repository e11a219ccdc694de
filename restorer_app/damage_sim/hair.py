"""Hairs and fibres: thin smooth bent curves lying on the film or print.

Parameter ranges (one hair per call):
- path: a real annotated hair from the ShapeLibrary (p 0.7 when it has hairs; long hairs
  p 0.35 when the budget allows 150 px, else short hairs), rotated U(0, 360) deg, mirrored
  p 0.5, scaled log-uniformly 0.5-2x (SimSpec.debris_scale), then thinned to its middle ``width`` px
  (the annotations outline a hair 4-8 px wide). Otherwise procedural: a meandering path
  10-180 px long (log-uniform, times the geometric mean of debris_scale, capped by the budget) whose heading wanders by
  U(0.2, 1.5) rad over U(15, 80) px.
- width 1-3 px, drawn as 1 + 2 U^3 (most are near 1-1.5 px); soft edge sigma U(0.3, 0.7) px.
- look: a neutral grey level (palette.debris_level), opacity U(0.5, 1).
"""

from __future__ import annotations

import numpy as np

from .canvas import Canvas, Layer
from .geometry import place_mask, ridge, soften, stroke, wander
from .palette import debris_level, luma_at
from .shapes import ShapeLibrary


def draw(canvas: Canvas, rng: np.random.Generator, budget: float, shapes: ShapeLibrary | None,
         state: dict) -> tuple[list[Layer], dict]:
    h, w = canvas.shape
    x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
    width = float(1.0 + 2.0 * rng.random() ** 3)
    soft = float(rng.uniform(0.3, 0.7))
    kind = "long_hair" if budget > 150 and rng.random() < 0.35 else "short_hair"
    shape = shapes.sample(kind, rng) if shapes is not None and rng.random() < 0.7 else None
    lo, hi = state.get("debris_scale", (0.5, 2.0))
    if shape is not None:
        scale = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        alpha, top, left = place_mask(shape, (x, y), rng.uniform(0, 2 * np.pi), scale, bool(rng.random() < 0.5), 0.0)
        alpha = soften(ridge(alpha, width), soft)
        params = {"source": "library", "kind": kind, "scale": round(scale, 3)}
    else:
        length = float(np.exp(rng.uniform(np.log(10.0), np.log(180.0)))) * float(np.sqrt(lo * hi))
        length = max(min(length, budget / (width + 2.0 + 4.0 * soft)), 10.0)
        path = wander(np.array([x, y]), length, rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 1.5),
                      rng.uniform(15, 80), rng)
        alpha, top, left = stroke(path, width, soft)
        params = {"source": "procedural", "length": round(length, 1)}
    opacity = float(rng.uniform(0.5, 1.0))
    level = debris_level(luma_at(canvas.image, x, y), rng)
    params.update(width=round(width, 2), soft=round(soft, 3), opacity=round(opacity, 3), level=round(level, 3))
    return [Layer(alpha * opacity, top, left, np.full(3, level, np.float32))], params
