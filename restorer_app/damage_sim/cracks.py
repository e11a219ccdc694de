"""Cracks and craquelure: broken emulsion or varnish, or a cracked glass plate.

Three forms (one per call):
- plate crack (p 0.3, SimSpec.plate_crack_share; a crack through a glass negative, printed into every print made from it):
  1-3 long gentle arcs (cubic Bezier curves, bend U(0, 0.06)) joined at kinks of +-(15-70)
  degrees, from an image edge (p 0.8) or inside, U(0.4, 1.2) x the image diagonal long (capped
  by the budget as below); width 1 + 1.5 U^2 px, varying +-15 % along it; smooth edges (soft
  sigma U(0.3, 0.7) px). Mid-tone, not paper or black: it darkens the picture under it
  (p 0.65; multiplied by a grey of U(0.45, 0.85), so it keeps the print's tone) or brightens it
  (a shift of +U(0.08, 0.25)), its strength varying by 0.6-1 along it, with p 0.5 a faint
  opposite-signed halo (+-U(0.03, 0.08)) along one side. Where the picture is too dark or too
  light for the crack to show it is not in the mask (canvas rule).
- branching crack (always below a 1500 px budget, else p 0.6): a jagged random walk of 1.5 px
  steps from an image edge (p 0.6) or inside: straight runs with N(0, 0.12) rad jitter a step
  reverting (0.3 a step) to the run's direction, a kink of +-(15-50) degrees starting a new run
  with p 0.03 a step, the runs drifting back towards the first heading. It branches with
  p U(0.003, 0.015) a step at +-(25-80) degrees into a branch 0.5-0.8x as wide (30 branches at
  most). Main width 1 + 4 U^2 px (1-5, mostly thin; dark cracks 1 + 1.5 U^2), tapering to 40 %
  at the tips and varying +-20 %. Total length about budget / (width + 2 + 4 x soft edge
  sigma), at most U(0.4, 1.5) x the image diagonal (a larger budget draws more cracks). Flakes
  (blobs of radius 1-3 px) sit on it with p U(0, 0.02) a step where the emulsion chipped off;
  the whole crack then gets a ragged edge (geometry.fractal_edge, amount 0.25 x width).
- craquelure web: the borders of a Voronoi tessellation (cells U(12, 50) px) of warped
  coordinates (walls bend by 12 % of a cell and wobble by 0.5 px), inside a ragged region sized
  to the budget (up to the whole image), thinned out by a smooth keep-noise (only U(40, 90) %
  of the walls); walls U(1, 3) px (dark webs U(1, 2); a width noise decides where they are
  doubled or tripled), a ragged edge (0.3 x wall width) and a strength varying by 0.35-1 over
  the size of a cell.
Look: light (p 0.75 when the paper is light: the paper colour, as the emulsion is gone) or dark
(grey 0.02-0.25: dirt in the crack, a crack in a glass negative); opacity U(0.7, 1); soft edge
sigma U(0.3, 0.8) px.
"""

from __future__ import annotations

import cv2
import numpy as np

from .canvas import Canvas, Layer
from .geometry import (combine, curve, fill_polygon, fractal_edge, pad_patch, radial_polygon, smooth_noise_1d,
                       smooth_noise_2d, soften, stroke)
from .palette import is_light
from .shapes import ShapeLibrary


def _walk(start: np.ndarray, heading: float, length: float, shape: tuple[int, int],
          rng: np.random.Generator) -> np.ndarray:
    """A jagged path of 1.5 px steps that keeps roughly to ``heading`` and stops at the image edge."""
    h, w = shape
    n = max(int(length / 1.5), 2)
    points = np.empty((n, 2))
    points[0] = start
    main, angle = heading, heading
    jitter = rng.normal(0.0, 0.12, n)
    kinks = rng.random(n) < 0.03
    kink_angles = rng.uniform(np.deg2rad(15), np.deg2rad(50), n) * rng.choice([-1, 1], n)
    x, y = float(start[0]), float(start[1])
    for i in range(1, n):
        if kinks[i]:  # a new straight run in a new direction, drifting back towards ``heading``
            main += kink_angles[i]
            angle = main
        main += 0.05 * (heading - main)
        angle += jitter[i] + 0.3 * (main - angle)
        x += 1.5 * np.cos(angle)
        y += 1.5 * np.sin(angle)
        points[i] = (x, y)
        if not (-3 <= x <= w + 2 and -3 <= y <= h + 2):
            return points[: i + 1]
    return points


def _branching(canvas: Canvas, rng: np.random.Generator, budget: float, colour: np.ndarray,
               opacity: float, soft: float, light: bool) -> tuple[list[Layer], dict]:
    h, w = canvas.shape
    width = float(1.0 + (4.0 if light else 1.5) * rng.random() ** 2)
    total = float(np.clip(budget / (width + 2.0 + 4.0 * soft), 12.0, rng.uniform(0.4, 1.5) * np.hypot(h, w)))
    if rng.random() < 0.6:  # from an edge, heading inwards
        side = int(rng.integers(4))
        along = rng.uniform(0.1, 0.9)
        start = [(along * w, 0), (w, along * h), (along * w, h), (0, along * h)][side]
        heading = [np.pi / 2, np.pi, -np.pi / 2, 0.0][side] + rng.uniform(-0.7, 0.7)
    else:
        start, heading = rng.uniform([0, 0], [w, h]), rng.uniform(0, 2 * np.pi)
    branch_p = float(rng.uniform(0.003, 0.015))
    chip_p = float(rng.uniform(0.0, 0.02))
    queue = [(np.asarray(start, float), heading, width, total)]
    drawn, patches, branches = 0.0, [], 0
    while queue and drawn < total and branches < 30:
        start, heading, bw, blen = queue.pop(0)
        path = _walk(start, heading, min(blen, total - drawn), (h, w), rng)
        branches += 1
        n = len(path)
        drawn += 1.5 * n
        s = np.linspace(0, 1, n)
        widths = bw * np.clip(1.0 - 0.6 * s, 0.4, 1.0) * (1 + 0.2 * smooth_noise_1d(n, 12, rng))
        patches.append(stroke(path, np.maximum(widths, 0.6)))
        for i in np.flatnonzero(rng.random(n) < branch_p):
            turn = rng.uniform(np.deg2rad(25), np.deg2rad(80)) * rng.choice([-1, 1])
            queue.append((path[i], float(np.arctan2(*(path[min(i + 1, n - 1)] - path[max(i - 1, 0)])[::-1]) + turn),
                          bw * rng.uniform(0.5, 0.8), blen * rng.uniform(0.2, 0.6)))
        for i in np.flatnonzero(rng.random(n) < chip_p):
            patches.append(fill_polygon(radial_polygon(rng.uniform(1.0, 3.0), 0.6, rng, jagged=0.8) + path[i]))
    # one ragged edge for the whole crack (amount 0.25 x its width), then the soft edge
    ragged = 0.25 * width
    alpha, top, left = pad_patch(combine(patches), int(np.ceil(2 * ragged + 3 * soft)) + 1)
    alpha = soften(fractal_edge(alpha, ragged, canvas.noise(top, left, *alpha.shape, rng)), soft)
    params = {"form": "branching", "width": round(width, 2), "length": round(drawn, 1), "branches": branches,
              "branch_p": round(branch_p, 4)}
    return [Layer(alpha * opacity, top, left, colour)], params


def _plate(canvas: Canvas, rng: np.random.Generator, budget: float) -> tuple[list[Layer], dict]:
    """A crack of the glass negative (see the module docstring): smooth arcs in the print's own tone."""
    h, w = canvas.shape
    width = float(1.0 + 1.5 * rng.random() ** 2)
    soft = float(rng.uniform(0.3, 0.7))
    total = float(np.clip(budget / (width + 2.0 + 4.0 * soft), 12.0, rng.uniform(0.4, 1.2) * np.hypot(h, w)))
    if rng.random() < 0.8:  # from an edge, heading inwards
        side = int(rng.integers(4))
        along = rng.uniform(0.1, 0.9)
        start = np.array([(along * w, 0), (w, along * h), (along * w, h), (0, along * h)][side], float)
        heading = [np.pi / 2, np.pi, -np.pi / 2, 0.0][side] + rng.uniform(-0.9, 0.9)
    else:
        start, heading = rng.uniform([0, 0], [w, h]), rng.uniform(0, 2 * np.pi)
    arcs = int(rng.integers(1, 4))
    pieces = []
    for i in range(arcs):
        arc = curve(start, total / arcs, float(rng.uniform(0.0, 0.06)), rng, angle=heading)
        pieces.append(arc if i == 0 else arc[1:])
        start = arc[-1]
        heading = float(np.arctan2(*(arc[-1] - arc[-2])[::-1])) + rng.uniform(np.deg2rad(15), np.deg2rad(70)) * rng.choice([-1, 1])
    path = np.concatenate(pieces)
    n = len(path)
    widths = np.maximum(width * (1 + 0.15 * smooth_noise_1d(n, 40, rng)), 0.6)
    strength = np.clip(0.8 + 0.2 * smooth_noise_1d(n, rng.uniform(30, 150), rng), 0.6, 1.0)
    alpha, top, left = stroke(path, widths, soft)
    alpha *= _along_path(alpha.shape, top, left, path, strength)
    dark = rng.random() < 0.65
    if dark:
        layers = [Layer(alpha, top, left, np.full(3, rng.uniform(0.45, 0.85), np.float32), "multiply")]
    else:
        layers = [Layer(alpha, top, left, np.full(3, rng.uniform(0.08, 0.25), np.float32), "add")]
    halo = rng.random() < 0.5
    if halo:
        tangent = np.gradient(path, axis=0)
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-6)
        side_path = path + normal * (width / 2 + 1.0) * rng.choice([-1, 1])
        h_alpha, h_top, h_left = stroke(side_path, 1.0, soft + 0.3)
        sign = 1.0 if dark else -1.0
        layers.append(Layer(h_alpha, h_top, h_left, np.full(3, sign * rng.uniform(0.03, 0.08), np.float32), "add"))
    return layers, {"form": "plate", "width": round(width, 2), "length": round(float(n), 1), "arcs": arcs,
                    "dark": bool(dark), "halo": bool(halo), "soft": round(soft, 3)}


def _along_path(shape: tuple[int, int], top: int, left: int, path: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A patch of ``shape`` at (top, left) holding, at each pixel, ``values`` at the nearest path point."""
    seeds = np.full(shape, 255, np.uint8)
    local = np.round(path - [left, top]).astype(int)
    inside = (local[:, 0] >= 0) & (local[:, 0] < shape[1]) & (local[:, 1] >= 0) & (local[:, 1] < shape[0])
    local, vals = local[inside], values[inside]
    if not len(local):
        return np.ones(shape, np.float32)
    index = np.full(shape, -1, np.int64)
    index[local[:, 1], local[:, 0]] = np.arange(len(local))
    seeds[local[:, 1], local[:, 0]] = 0
    _, labels = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    # the labels number the seed pixels 1, 2, ... in scan order; map them back to path points
    point_of_label = index.ravel()[np.flatnonzero(seeds.ravel() == 0)]
    return vals[point_of_label[labels - 1]].astype(np.float32)


def _web(canvas: Canvas, rng: np.random.Generator, budget: float, colour: np.ndarray,
         opacity: float, soft: float, light: bool) -> tuple[list[Layer], dict]:
    h, w = canvas.shape
    cell = float(rng.uniform(12, 50))
    keep_share = float(rng.uniform(0.4, 0.9))
    wall = float(rng.uniform(1.0, 3.0 if light else 2.0))
    density = 2.0 * (wall + 1.0) / cell * keep_share  # share of the region's pixels on a wall
    radius = float(np.clip(np.sqrt(budget / (np.pi * density)), 2 * cell, np.hypot(h, w)))
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    top, left = int(max(cy - radius, 0)), int(max(cx - radius, 0))
    bottom, right = int(min(cy + radius, h)) + 1, int(min(cx + radius, w)) + 1
    ph, pw = bottom - top, right - left
    if ph < 4 or pw < 4:
        return [], {"form": "web"}
    # Voronoi cells of jittered grid seeds (distance transform with labels), sampled through
    # warped coordinates so the walls wander
    seeds = np.full((ph, pw), 255, np.uint8)
    gy = np.arange(rng.uniform(0, cell), ph, cell)
    gx = np.arange(rng.uniform(0, cell), pw, cell)
    sy, sx = np.meshgrid(gy, gx, indexing="ij")
    sy = np.clip(sy + rng.uniform(-0.4, 0.4, sy.shape) * cell, 0, ph - 1).astype(int)
    sx = np.clip(sx + rng.uniform(-0.4, 0.4, sx.shape) * cell, 0, pw - 1).astype(int)
    seeds[sy, sx] = 0
    _, labels = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
    warp = cell * 0.12
    dx = warp * smooth_noise_2d(ph, pw, cell, rng) + 0.5 * smooth_noise_2d(ph, pw, 2.5, rng)
    dy = warp * smooth_noise_2d(ph, pw, cell, rng) + 0.5 * smooth_noise_2d(ph, pw, 2.5, rng)
    labels = cv2.remap(labels.astype(np.float32), xx + dx, yy + dy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    walls = np.zeros((ph, pw), np.uint8)
    walls[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    walls[1:, :] |= labels[1:, :] != labels[:-1, :]
    # a ragged region that fades out, and only some of the walls in it
    dist = np.hypot(yy + top - cy, xx + left - cx) / radius
    region = 1.0 - dist + 0.25 * smooth_noise_2d(ph, pw, max(radius / 3, 4.0), rng)
    keep = smooth_noise_2d(ph, pw, cell * 1.5, rng) > _quantile_of_normal(1.0 - keep_share)
    walls &= ((region > 0) & keep).astype(np.uint8)
    thick = smooth_noise_2d(ph, pw, cell, rng)
    alpha = walls.astype(np.float32)
    if wall > 1.5:
        wide = cv2.dilate(walls, np.ones((2, 2), np.uint8))
        alpha = np.maximum(alpha, wide * (thick > 1.5 - wall / 2))
    if wall > 2.5:
        wider = cv2.dilate(walls, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))
        alpha = np.maximum(alpha, wider * (thick > 0.8))
    # walls of uneven strength and a ragged edge, like the real webs
    noise = canvas.noise(top, left, ph, pw, rng)
    alpha = fractal_edge(alpha.astype(np.float32), 0.3 * wall, noise)
    alpha = soften(alpha, soft) * opacity * np.clip(0.75 + 0.5 * smooth_noise_2d(ph, pw, cell, rng), 0.35, 1.0)
    return [Layer(alpha, top, left, colour)], {"form": "web", "cell": round(cell, 1), "radius": round(radius, 1),
                                               "wall": round(wall, 2), "keep": round(keep_share, 2)}


def _quantile_of_normal(p: float) -> float:
    """Approximate standard-normal quantile (the smooth noise is about unit std)."""
    p = float(np.clip(p, 1e-3, 1 - 1e-3))
    t = np.sqrt(-2 * np.log(min(p, 1 - p)))
    q = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t**3)
    return float(q if p > 0.5 else -q)


def draw(canvas: Canvas, rng: np.random.Generator, budget: float, shapes: ShapeLibrary | None,
         state: dict) -> tuple[list[Layer], dict]:
    light = is_light(canvas.paper) and rng.random() < 0.75
    colour = canvas.paper if light else np.full(3, rng.uniform(0.02, 0.25), np.float32)
    opacity = float(rng.uniform(0.7, 1.0))
    soft = float(rng.uniform(0.3, 0.8))
    if rng.random() < state["plate_crack_share"]:
        return _plate(canvas, rng, budget)
    if budget >= 1500 and rng.random() < 0.4:
        layers, params = _web(canvas, rng, budget, colour, opacity, soft, light)
    else:
        layers, params = _branching(canvas, rng, budget, colour, opacity, soft, light)
    params.update(light=bool(light), opacity=round(opacity, 3), soft=round(soft, 3))
    return layers, params
