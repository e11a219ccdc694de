"""Scratches: abrasions of a print's emulsion (print_scratch) and of a film's base or emulsion
that run along the film's path through a camera or projector (film_scratch).

Print scratches (one per call):
- path: a cubic Bezier curve 10 px to the image diagonal long (log-uniform, capped by the
  pixel budget at about budget / (width + 2 + 4 x soft edge sigma)), bend U(0, 0.2)
  (near-straight to clearly curved), sideways wobble 0-1 px;
- width 1-12 px, drawn as 1 + 11 U^3 (most are 1-3 px, wide ones rare), tapering to 30 % at
  both ends and varying +-15 % along the length; a scratch over 5 px wide is a scuff (p 0.6):
  3-7 parallel fine scratches 1-2 px wide spread over its width, each over part of its length;
- broken (p 0.5): drawn only where a smooth noise along the path exceeds U(-1, 0);
- edge ragged by 0.2 x width (geometry.fractal_edge); a scratch over 3 px wide is streaky inside
  (alpha x (0.75 + 0.5 fractal noise), clipped to [0.3, 1]);
- look: light (p 0.7: the paper colour, or white 0.92-1 on a dark base) or dark (grey
  0.02-0.25, and at most 1 + 2 U px wide: dark scratches are fine lines); opacity U(0.5, 1)
  (U(0.3, 0.7) above 5 px); soft edge sigma U(0.4, 1.0) px.

Film scratches (one per call):
- a nearly straight line, vertical (p 0.75, fixed per image) or horizontal, tilted N(0, 0.5)
  degrees, spanning U(0.6, 1) of the image along its direction (capped by the budget as above,
  but never below 0.5; a budget too small even for that draws the thinnest, 1 px, sharpest),
  drifting sideways by smooth noise of 0-1.5 px; with p 0.5 within 25 px of the previous one;
- width 1-4 px, drawn as 1 + 3 U^2; soft edge sigma U(0.3, 0.8) px;
- faint: a signed shift of U(0.05, 0.30) in every channel (brighter p 0.6, darker otherwise),
  its strength varying by 0.6-1 along the line, fading in and out over 10 px at its ends, and
  with p 0.3 fading out over a stretch or two in the middle.
"""

from __future__ import annotations

import numpy as np

from .canvas import Canvas, Layer
from .geometry import combine, curve, fractal_edge, pad_patch, runs, smooth_noise_1d, soften, stroke
from .palette import is_light
from .shapes import ShapeLibrary


def draw_print(canvas: Canvas, rng: np.random.Generator, budget: float, shapes: ShapeLibrary | None,
               state: dict) -> tuple[list[Layer], dict]:
    h, w = canvas.shape
    diag = float(np.hypot(h, w))
    width = float(1.0 + 11.0 * rng.random() ** 3)
    length = float(np.exp(rng.uniform(np.log(10.0), np.log(max(diag, 10.0)))))
    soft = float(rng.uniform(0.4, 1.0))
    length = max(min(length, budget / (width + 2.0 + 4.0 * soft)), 10.0)
    bend = float(rng.uniform(0.0, 0.2))
    path = curve(rng.uniform([0, 0], [w, h]), length, bend, rng, wobble=float(rng.uniform(0, 1)))
    n = len(path)
    s = np.linspace(0, 1, n)
    profile = np.clip(np.minimum(s, 1 - s) / 0.15, 0.3, 1.0) * (1 + 0.15 * smooth_noise_1d(n, 30, rng))
    keep = np.ones(n, bool)
    broken = rng.random() < 0.5
    if broken:
        keep = smooth_noise_1d(n, rng.uniform(8, 40), rng) > rng.uniform(-1.0, 0.0)
    light = rng.random() < 0.7
    if light:
        colour = canvas.paper if is_light(canvas.paper) else np.full(3, rng.uniform(0.92, 1.0), np.float32)
    else:
        colour = np.full(3, rng.uniform(0.02, 0.25), np.float32)
        width = min(width, float(1.0 + 2.0 * rng.random()))  # dark scratches are fine lines
    opacity = float(rng.uniform(0.5, 1.0) if width <= 5 else rng.uniform(0.3, 0.7))
    scuff = width > 5 and rng.random() < 0.6
    layers = []
    if scuff:
        tangent = np.gradient(path, axis=0)
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-6)
        for _ in range(int(rng.integers(3, 8))):
            offset = rng.uniform(-width / 2, width / 2) * profile[:, None]
            a0, b0 = sorted(int(i) for i in rng.integers(0, n, 2))
            if b0 - a0 < 5:
                a0, b0 = 0, n
            alpha, top, left = stroke((path + normal * offset)[a0:b0], float(rng.uniform(1.0, 2.0)), soft)
            layers.append(Layer(alpha * opacity * rng.uniform(0.5, 1.0), top, left, colour))
    else:  # one stroke per unbroken run, then a ragged edge and (over 3 px) a streaky inside
        patch = combine([stroke(path[a:b], np.maximum(width * profile[a:b], 0.5)) for a, b in runs(keep) or [(0, n)]])
        ragged = 0.2 * width
        alpha, top, left = pad_patch(patch, int(np.ceil(2 * ragged + 3 * soft)) + 1)
        noise = canvas.noise(top, left, *alpha.shape, rng)
        alpha = soften(fractal_edge(alpha, ragged, noise), soft)
        if width > 3:
            alpha *= np.clip(0.75 + 0.5 * noise[::-1], 0.3, 1.0)
        layers.append(Layer(alpha * opacity, top, left, colour))
    params = {"length": round(length, 1), "width": round(width, 2), "bend": round(bend, 3),
              "light": bool(light), "opacity": round(opacity, 3), "soft": round(soft, 3),
              "broken": bool(broken), "scuff": bool(scuff)}
    return layers, params


def min_footprint(shape: tuple[int, int]) -> float:
    """Mask pixels of the smallest film scratch: half the image's longer side, about 4 px wide."""
    return 0.5 * max(shape) * 4.0


def draw_film(canvas: Canvas, rng: np.random.Generator, budget: float, shapes: ShapeLibrary | None,
              state: dict) -> tuple[list[Layer], dict]:
    h, w = canvas.shape
    vertical = state.setdefault("vertical", bool(rng.random() < 0.75))
    along, across = (h, w) if vertical else (w, h)
    width = float(1.0 + 3.0 * rng.random() ** 2)
    soft = float(rng.uniform(0.3, 0.8))
    if budget < min_footprint(canvas.shape):  # the smallest: thin, sharp, half the image long
        width, soft = 1.0, 0.3
    span = min(rng.uniform(0.6, 1.0), budget / (width + 2.0 + 4.0 * soft) / along)
    span = max(span, 0.5) * along
    start = rng.uniform(0, along - span + 1)
    if "last" in state and rng.random() < 0.5:
        pos = float(np.clip(state["last"] + rng.uniform(-25, 25), 0, across - 1))
    else:
        pos = float(rng.uniform(0, across))
    state["last"] = pos
    n = max(int(span), 2)
    t = np.linspace(start, start + span, n)
    tilt = np.tan(np.deg2rad(rng.normal(0, 0.5)))
    side = pos + (t - start) * tilt + rng.uniform(0, 1.5) * smooth_noise_1d(n, rng.uniform(40, 200), rng)
    path = np.stack([side, t], axis=1) if vertical else np.stack([t, side], axis=1)
    contrast = float(rng.uniform(0.05, 0.30))
    sign = 1.0 if rng.random() < 0.6 else -1.0
    strength = np.clip(0.8 + 0.2 * smooth_noise_1d(n, rng.uniform(20, 100), rng), 0.6, 1.0)
    strength *= np.clip(np.minimum(t - start, start + span - t) / 10.0, 0.0, 1.0)
    if rng.random() < 0.3:  # fading out over a stretch or two
        for _ in range(int(rng.integers(1, 3))):
            centre, half = rng.uniform(start, start + span), rng.uniform(5, max(span / 8, 6))
            strength *= np.clip(np.abs(t - centre) / half - 0.5, 0.0, 1.0)
    alpha, top, left = stroke(path, width, soft)
    # the line runs along rows (vertical) or columns: scale each by the strength at that position
    coords = np.arange(alpha.shape[0] if vertical else alpha.shape[1]) + (top if vertical else left)
    gain = np.interp(coords, t, strength, left=0.0, right=0.0).astype(np.float32)
    alpha *= gain[:, None] if vertical else gain[None, :]
    layers = [Layer(alpha, top, left, np.full(3, sign * contrast, np.float32), "add")]
    params = {"vertical": bool(vertical), "span": round(span, 1), "width": round(width, 2),
              "contrast": round(sign * contrast, 3), "soft": round(soft, 3)}
    return layers, params
