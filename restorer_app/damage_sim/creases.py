"""Creases and folds: a print bent sharply keeps a long line: a low relief (lit on one flank,
shadowed on the other) and, where the emulsion cracked on the ridge, a broken light line.

Parameter ranges (one crease per call):
- line: straight or gently curved (sagitta up to 4 % of the length) at any angle, across the
  whole image when the budget allows (p 0.7), else a segment from 30 px long, its length capped
  by the budget (about budget / (0.6 W)); the ends of a segment fade over 15 % of its length.
- relief, total width W = U(3, 15) px (at most budget / 18, but 3 px or more): a light band
  (Gaussian, sigma W / 6, opacity U(0.1, 0.4), the paper colour or white) and a dark band on
  one side (Gaussian, sigma W / 5, W / 3 off the line, opacity U(0.1, 0.4), black); its
  strength varies by 0.5-1 along the line (smooth noise over 20-60 px).
- cracked ridge (p 0.75): a jagged light line on the crease (sideways jitter 0.3-1.2 px,
  changing every 2-6 px), U(1, 2.5) px wide swelling and pinching by 0.5-1.3x over 3-12 px,
  ragged edge (0.3 x width), opacity U(0.6, 1), soft edge sigma 0.3-0.6 px, with a few gaps
  where a smooth noise over 10-40 px falls below U(-1.5, -0.6) (about 5-25 % missing).
- at most ``MAX_CREASES`` = 3 creases per image (a print folded more often is rare); the
  class's remaining budget then goes unused.
"""

from __future__ import annotations

import numpy as np

from .canvas import Canvas, Layer
from .geometry import combine, fractal_edge, pad_patch, runs, smooth_noise_1d, soften, stroke
from .palette import is_light
from .shapes import ShapeLibrary


MAX_CREASES = 3


def _bow(along: np.ndarray, sagitta: float, half: float) -> np.ndarray:
    """Sideways offset of a gently curved line: a parabola ``sagitta`` deep over +-``half``."""
    return sagitta * (1.0 - np.minimum((along / half) ** 2, 1.0))


def draw(canvas: Canvas, rng: np.random.Generator, budget: float, shapes: ShapeLibrary | None,
         state: dict) -> tuple[list[Layer], dict]:
    state["count"] = state.get("count", 0) + 1
    if state["count"] > MAX_CREASES:
        return [], {"done": True}
    h, w = canvas.shape
    width = float(min(rng.uniform(3.0, 15.0), max(3.0, budget / (0.6 * 30.0))))  # a small budget: a narrow one
    angle = float(rng.uniform(0, np.pi))
    tangent = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-tangent[1], tangent[0]])
    centre = rng.uniform([0.1 * w, 0.1 * h], [0.9 * w, 0.9 * h])
    diag = float(np.hypot(h, w))
    full = budget >= 0.6 * width * diag and rng.random() < 0.7
    length = 2 * diag if full else float(np.clip(budget / (0.6 * width), 30.0, diag))
    sagitta = float(rng.uniform(-0.04, 0.04)) * min(length, diag)
    ends = centre + np.outer([-length / 2, length / 2], tangent)
    reach = 2 * width + abs(sagitta)
    top, left = int(np.floor(max(ends[:, 1].min() - reach, 0))), int(np.floor(max(ends[:, 0].min() - reach, 0)))
    bottom, right = int(np.ceil(min(ends[:, 1].max() + reach, h))), int(np.ceil(min(ends[:, 0].max() + reach, w)))
    if bottom - top < 2 or right - left < 2:
        return [], {}
    yy, xx = np.mgrid[top:bottom, left:right].astype(np.float32)
    px, py = xx - centre[0], yy - centre[1]
    along = px * tangent[0] + py * tangent[1]
    u = along / (length / 2)  # -1..1 along the crease
    d = px * normal[0] + py * normal[1] - _bow(along, sagitta, min(length, diag) / 2)  # signed distance across
    fade = (np.abs(u) <= 1).astype(np.float32) if full else np.clip((1 - np.abs(u)) / 0.15, 0, 1)
    n = int(length) + 2
    strength_1d = np.clip(0.75 + 0.25 * smooth_noise_1d(n, rng.uniform(20, 60), rng), 0.5, 1.0)
    strength = strength_1d[np.clip(((u + 1) / 2 * (n - 1)).astype(int), 0, n - 1)] * fade
    light_op, shadow_op = float(rng.uniform(0.1, 0.4)), float(rng.uniform(0.1, 0.4))
    side = 1.0 if rng.random() < 0.5 else -1.0
    light = canvas.paper if is_light(canvas.paper) else np.full(3, rng.uniform(0.85, 0.98), np.float32)
    band = (light_op * np.exp(-0.5 * (d / (width / 6)) ** 2) * strength).astype(np.float32)
    shade = (shadow_op * np.exp(-0.5 * ((d + side * width / 3) / (width / 5)) ** 2) * strength).astype(np.float32)
    layers = [Layer(shade, top, left, np.zeros(3, np.float32)), Layer(band, top, left, light)]
    cracked = rng.random() < 0.75
    if cracked:  # the broken ridge: a jagged thin line along the crease, swelling and pinching
        span = min(length, 2 * diag)
        m = max(int(span), 2)
        s = np.linspace(-span / 2, span / 2, m)
        jitter = rng.uniform(0.3, 1.2) * smooth_noise_1d(m, rng.uniform(2, 6), rng)
        offset = (_bow(s, sagitta, min(length, diag) / 2) + jitter)[:, None]
        path = centre + s[:, None] * tangent + offset * normal
        inside = (path[:, 0] > -5) & (path[:, 0] < w + 5) & (path[:, 1] > -5) & (path[:, 1] < h + 5)
        keep = inside & (smooth_noise_1d(m, rng.uniform(10, 40), rng) > rng.uniform(-1.5, -0.6))
        if not full:
            keep &= np.abs(s / (length / 2)) < 0.85
        ridge_w, ridge_op = float(rng.uniform(1.0, 2.5)), float(rng.uniform(0.6, 1.0))
        soft = float(rng.uniform(0.3, 0.6))
        widths = ridge_w * np.clip(0.7 + 0.4 * smooth_noise_1d(m, rng.uniform(3, 12), rng), 0.5, 1.3)
        pieces = [stroke(path[a:b], widths[a:b]) for a, b in runs(keep, 3)]
        if pieces:
            ragged = 0.3 * ridge_w
            alpha, t, le = pad_patch(combine(pieces), int(np.ceil(2 * ragged + 3 * soft)) + 1)
            alpha = soften(fractal_edge(alpha, ragged, canvas.noise(t, le, *alpha.shape, rng)), soft)
            layers.append(Layer(alpha * ridge_op, t, le, light))
    params = {"width": round(width, 2), "length": round(min(length, diag), 1), "full": bool(full),
              "angle": round(float(np.rad2deg(angle)), 1), "light_opacity": round(light_op, 3),
              "shadow_opacity": round(shadow_op, 3), "cracked": bool(cracked)}
    return layers, params
