"""Tears and emulsion loss: a piece of the picture is gone and the paper or base shows through.

Parameter ranges (one region per call):
- flake (p 0.65): a lobed blob (radial polygon, lobes U(0.3, 1), elongation U(1, 2.5)) 5-60 px
  across (log-uniform, capped so its area stays near the pixel budget) anywhere in the image;
- worn or torn edge (p 0.35): a strip along one image side, 10-100 % of that side long
  (capped by the budget), its depth 3-25 px varying along the side (smooth noise, down to 0),
  or a torn-off corner 10-60 px across;
- edge: ragged (geometry.fractal_edge, amount U(0.5, 1.5) px scaled down for small flakes),
  soft edge sigma U(0.3, 0.7) px;
- fill: the image's paper / base colour (palette.paper), or with p 0.2 a grey card mount behind
  the print (palette.mount), with a fibre texture (smooth noise at 1.5
  and 6 px, +-4 % and +-3 %), opaque;
- rim (p 0.6): a 1-2 px ring around the hole, lighter than the paper (a light base: white
  0.97; a dark base: grey 0.5-0.7), opacity U(0.3, 0.7), where the emulsion broke.
"""

from __future__ import annotations

import cv2
import numpy as np

from .canvas import Canvas, Layer
from .geometry import fill_polygon, fractal_edge, pad_patch, radial_polygon, smooth_noise_1d, smooth_noise_2d, soften
from . import palette
from .palette import is_light
from .shapes import ShapeLibrary


def _flake(canvas: Canvas, rng: np.random.Generator, budget: float) -> tuple[tuple, dict]:
    h, w = canvas.shape
    size = float(np.exp(rng.uniform(np.log(5.0), np.log(60.0))))
    size = float(np.clip(size, 5.0, np.sqrt(budget * 4.0 / np.pi) * 0.85))
    elong = float(rng.uniform(1.0, 2.5))
    poly = radial_polygon(size / 2 / np.sqrt(elong), rng.uniform(0.3, 1.0), rng, jagged=0.5, elongation=elong)
    patch = fill_polygon(poly + rng.uniform([0, 0], [w, h]), 0.0)
    return patch, {"form": "flake", "size": round(size, 1), "elongation": round(elong, 2)}


def _edge(canvas: Canvas, rng: np.random.Generator, budget: float) -> tuple[tuple, dict]:
    h, w = canvas.shape
    side = int(rng.integers(5))  # four sides, or a corner
    if side == 4:
        size = float(np.clip(rng.uniform(10, 60), 10, np.sqrt(budget * 2.0) * 1.1))
        corner = np.array([float(rng.choice([0, w])), float(rng.choice([0, h]))])
        inward = np.sign(np.array([w / 2, h / 2]) - corner)
        a, b = rng.uniform(0.5, 1.0, 2) * size
        poly = np.array([corner - inward * 3, corner + [inward[0] * a, -inward[1] * 3],
                         corner + [inward[0] * a * 0.55, inward[1] * b * 0.55], corner + [-inward[0] * 3, inward[1] * b]])
        return fill_polygon(poly, 0.0), {"form": "corner", "size": round(size, 1)}
    length_side = w if side in (0, 2) else h
    depth = float(rng.uniform(3, 25))
    length = float(np.clip(rng.uniform(0.1, 1.0) * length_side, 10.0, max(budget / (0.5 * depth), 10.0)))
    start = rng.uniform(0, max(length_side - length, 0) + 1)
    n = max(int(length), 3)
    s = np.linspace(start, start + length, n)
    d = depth * np.clip(0.6 + 0.5 * smooth_noise_1d(n, rng.uniform(10, 60), rng), 0, 1.2)
    d *= np.clip(np.minimum(s - start, start + length - s) / 8.0, 0, 1)  # fade in and out
    inner = np.stack([s, d], axis=1)
    outer = np.array([[start + length, -3.0], [start, -3.0]])
    local = np.concatenate([inner, outer])  # (along, depth) with depth 0 at the edge
    x, y = local[:, 0], local[:, 1]
    poly = {0: np.stack([x, y], 1), 1: np.stack([w - y, x], 1), 2: np.stack([x, h - y], 1), 3: np.stack([y, x], 1)}[side]
    return fill_polygon(poly, 0.0), {"form": "edge", "side": side, "length": round(length, 1), "depth": round(depth, 1)}


def draw(canvas: Canvas, rng: np.random.Generator, budget: float, shapes: ShapeLibrary | None,
         state: dict) -> tuple[list[Layer], dict]:
    edge = rng.random() < 0.35
    patch, params = _edge(canvas, rng, budget) if edge else _flake(canvas, rng, budget)
    amount = float(rng.uniform(0.5, 1.5)) * min(1.0, params.get("size", 30.0) / 20.0)
    alpha, top, left = pad_patch(patch, int(np.ceil(2 * amount)) + 2)
    soft = float(rng.uniform(0.3, 0.7))
    hard = fractal_edge(alpha, amount, canvas.noise(top, left, *alpha.shape, rng))
    alpha = soften(hard, soft)
    through = "mount" if rng.random() < 0.2 else "paper"
    paper = palette.mount(rng) if through == "mount" else canvas.paper
    fibres = 0.04 * smooth_noise_2d(*alpha.shape, 1.5, rng) + 0.03 * smooth_noise_2d(*alpha.shape, 6.0, rng)
    fill = paper * (1 + fibres)[:, :, None]
    layers = [Layer(alpha, top, left, np.clip(fill, 0, 1).astype(np.float32))]
    rim = rng.random() < 0.6
    if rim:
        ring_width = int(rng.integers(1, 3))
        inside = (hard > 0.5).astype(np.uint8)
        ring = cv2.dilate(inside, np.ones((2 * ring_width + 1,) * 2, np.uint8)) - inside
        ring = soften(ring.astype(np.float32), soft) * (1 - alpha)
        colour = np.full(3, 0.97 if is_light(paper) else rng.uniform(0.5, 0.7), np.float32)
        layers.append(Layer(ring * float(rng.uniform(0.3, 0.7)), top, left, colour))
    params.update(ragged=round(amount, 2), soft=round(soft, 3), rim=bool(rim), through=through)
    return layers, params
