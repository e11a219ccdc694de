"""Dust and dirt: small specks lying on the print or film when it was scanned.

Parameter ranges (one speck per call):
- kind: dust (p 0.5), dirt (p 0.2) or a crisp speck (p 0.3). Crisp specks are what a sharp scan
  of a print shows most often: a lobed blob of radius 0.7-3 px (log-uniform, times the geometric
  mean of debris_scale), hard-edged (soft edge sigma U(0, 0.4) px), opacity U(0.7, 1), at a light
  or dark extreme (palette.debris_level with no mid tones). Without them the real shapes,
  scaled and softened as below, left the detector blind to 1-4 px specks.
- shape of dust and dirt: a real annotated speck from the ShapeLibrary (dust 70 %, dirt 30 %), rotated by
  U(0, 360) degrees, mirrored with p 0.5, scaled log-uniformly 0.5-2x (SimSpec.debris_scale:
  scans of prints come at different dpi; smaller when the remaining pixel budget is small, down
  to 0.5x, and a shape too large even then is redrawn up to 3 times); its coarse polygon
  outline gets a ragged edge (geometry.fractal_edge, amount 0.5 px x scale) pulled in by
  U(0, 0.5) px x scale. Without a library: a lobed blob (radial polygon) of radius 1-5 px
  log-uniform (dust) or 2.5-10 px with elongation 1-2 (dirt), ragged by 0.15 x its radius
  (sizes times the geometric mean of debris_scale).
- look: a neutral grey level (palette.debris_level: light 0.75-1, dark 0-0.25 or mid 0.3-0.7),
  opacity U(0.3, 1), soft edge = Gaussian blur of the alpha with sigma U(0.3, 1.5) px; dirt
  gets a mottled inside (alpha x (0.8 + 0.3 fractal noise), clipped to [0, 1]).
- placement: uniform over the image, or (p 0.4) near one of 1-4 cluster centres per image
  (Gaussian spread 5-40 px), as debris gathers on a scan.
"""

from __future__ import annotations

import numpy as np

from .canvas import Canvas, Layer
from .geometry import fill_polygon, fractal_edge, pad_patch, place_mask, radial_polygon, soften
from .palette import debris_level, luma_at
from .shapes import ShapeLibrary


def _position(canvas: Canvas, rng: np.random.Generator, state: dict) -> tuple[float, float]:
    h, w = canvas.shape
    if "clusters" not in state:
        n = int(rng.integers(1, 5))
        state["clusters"] = [(rng.uniform(0, w), rng.uniform(0, h), rng.uniform(5, 40)) for _ in range(n)]
    if rng.random() < 0.4:
        cx, cy, spread = state["clusters"][int(rng.integers(len(state["clusters"])))]
        return float(np.clip(rng.normal(cx, spread), 0, w - 1)), float(np.clip(rng.normal(cy, spread), 0, h - 1))
    return float(rng.uniform(0, w)), float(rng.uniform(0, h))


def _crisp_speck(canvas: Canvas, rng: np.random.Generator, at: tuple[float, float],
                 size: float) -> tuple[list[Layer], dict]:
    radius = size * float(np.exp(rng.uniform(np.log(0.7), np.log(3.0))))
    soft = float(rng.uniform(0.0, 0.4))
    patch = fill_polygon(radial_polygon(radius, rng.uniform(0.1, 0.4), rng) + list(at), 0.0)
    alpha, top, left = pad_patch(patch, int(np.ceil(3 * soft)) + 1)
    opacity = float(rng.uniform(0.7, 1.0))
    level = debris_level(luma_at(canvas.image, *at), rng, mid_share=0.0)
    params = {"kind": "speck", "source": "procedural", "scale": round(radius, 3), "soft": round(soft, 3),
              "opacity": round(opacity, 3), "level": round(level, 3)}
    return [Layer(soften(alpha, soft) * opacity, top, left, np.full(3, level, np.float32))], params


def draw(canvas: Canvas, rng: np.random.Generator, budget: float, shapes: ShapeLibrary | None,
         state: dict) -> tuple[list[Layer], dict]:
    x, y = _position(canvas, rng, state)
    draw_kind = rng.random()
    kind = "dust" if draw_kind < 0.5 else "dirt" if draw_kind < 0.7 else "speck"
    lo, hi = state.get("debris_scale", (0.5, 2.0))
    if kind == "speck":
        return _crisp_speck(canvas, rng, (x, y), float(np.sqrt(lo * hi)))
    soft = float(rng.uniform(0.3, 1.5))
    shape = None
    if shapes is not None:
        for _ in range(4):  # a shape that fits the remaining budget at its smallest scale
            shape = shapes.sample(kind, rng)
            if shape is None or shape.sum() * lo * lo <= budget + 8:
                break
    if shape is not None:
        scale = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        scale = float(np.clip(np.sqrt((budget + 8) / max(shape.sum(), 1)), lo, scale))  # no larger than the budget
        patch = place_mask(shape, (x, y), rng.uniform(0, 2 * np.pi), scale, bool(rng.random() < 0.5), 0.0)
        ragged, source = 0.5 * scale, "library"
    else:
        size = float(np.sqrt(lo * hi))
        if kind == "dust":
            scale = size * float(np.exp(rng.uniform(np.log(1.0), np.log(5.0))))
            poly = radial_polygon(scale, rng.uniform(0.2, 0.6), rng)
        else:
            scale = size * float(np.exp(rng.uniform(np.log(2.5), np.log(10.0))))
            poly = radial_polygon(scale, rng.uniform(0.5, 1.0), rng, elongation=rng.uniform(1.0, 2.0))
        patch = fill_polygon(poly + [x, y], 0.0)
        ragged, source = 0.15 * scale, "procedural"
    # the annotated outlines are coarse polygons: a ragged edge, pulled in by up to 0.5 px a unit of scale
    alpha, top, left = pad_patch(patch, int(np.ceil(2 * ragged + 3 * soft)) + 1)
    noise = canvas.noise(top, left, *alpha.shape, rng)
    alpha = soften(fractal_edge(alpha, ragged, noise, shrink=float(rng.uniform(0, 0.5)) * min(scale, 2.0)), soft)
    if kind == "dirt" and min(alpha.shape) > 6:
        alpha = alpha * np.clip(0.8 + 0.3 * noise[::-1, ::-1], 0, 1)
    opacity = float(rng.uniform(0.3, 1.0))
    level = debris_level(luma_at(canvas.image, x, y), rng)
    params = {"kind": kind, "source": source, "scale": round(scale, 3), "soft": round(soft, 3),
              "opacity": round(opacity, 3), "level": round(level, 3)}
    return [Layer(alpha * opacity, top, left, np.full(3, level, np.float32))], params
