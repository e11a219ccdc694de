"""Shape primitives the damage classes share: smooth noise, curves, ragged polygons, and their
rasterisation into soft alpha patches.

A patch is ``(alpha, top, left)``: a float32 alpha map in [0, 1] and the image position of its
top-left pixel; it may stick out of the image (the canvas clips it). Points are (x, y) in
pixels. Rasterisation goes through OpenCV with 4 fractional bits (``shift=4``) and anti-aliasing,
so sub-pixel positions and thin lines keep their coverage; soft edges are a Gaussian blur of the
alpha after rasterisation, with the patch padded by 3 sigma so nothing is cut off.
"""

from __future__ import annotations

import cv2
import numpy as np

_SHIFT = 4
_ONE = 1 << _SHIFT

Patch = tuple[np.ndarray, int, int]


def smooth_noise_1d(n: int, period: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` values of smooth noise (about unit std) varying over ``period`` samples."""
    knots = max(int(np.ceil(n / max(period, 1.0))) + 2, 3)
    values = rng.standard_normal(knots)
    return np.interp(np.linspace(0.0, knots - 2.0, n) + rng.uniform(0, 1), np.arange(knots), values).astype(np.float32)


def smooth_noise_2d(h: int, w: int, cell: float, rng: np.random.Generator) -> np.ndarray:
    """HxW float32 smooth noise (about unit std) with features about ``cell`` px across."""
    gh, gw = max(int(np.ceil(h / cell)) + 2, 2), max(int(np.ceil(w / cell)) + 2, 2)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    big = cv2.resize(coarse, (int((gw - 1) * cell) + 1, int((gh - 1) * cell) + 1), interpolation=cv2.INTER_CUBIC)
    oy, ox = int(rng.integers(0, max(big.shape[0] - h, 0) + 1)), int(rng.integers(0, max(big.shape[1] - w, 0) + 1))
    out = big[oy : oy + h, ox : ox + w]
    if out.shape != (h, w):  # cell smaller than a pixel: fall back to white noise
        out = rng.standard_normal((h, w)).astype(np.float32)
    return np.ascontiguousarray(out)


def bezier(controls: np.ndarray, n: int) -> np.ndarray:
    """``n`` points along the cubic Bezier curve with four (x, y) ``controls``."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    return ((1 - t) ** 3 * controls[0] + 3 * t * (1 - t) ** 2 * controls[1]
            + 3 * t**2 * (1 - t) * controls[2] + t**3 * controls[3])


def curve(start: np.ndarray, length: float, bend: float, rng: np.random.Generator,
          angle: float | None = None, wobble: float = 0.0) -> np.ndarray:
    """A smooth random curve from ``start``, about one point per pixel of ``length``: a cubic
    Bezier whose inner controls are pushed sideways by N(0, ``bend`` * length), plus a sideways
    sine ``wobble`` (px amplitude, period 20-80 px)."""
    angle = rng.uniform(0, 2 * np.pi) if angle is None else angle
    along = np.array([np.cos(angle), np.sin(angle)])
    across = np.array([-along[1], along[0]])
    push = rng.normal(0.0, bend * length, 2)
    controls = np.array([start, start + along * length / 3 + across * push[0],
                         start + along * 2 * length / 3 + across * push[1], start + along * length])
    n = max(int(length), 2)
    phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(20, 80)  # drawn even without wobble
    return bezier(controls, n) + across * (wobble * np.sin(np.arange(n) * 2 * np.pi / period + phase))[:, None]


def radial_polygon(radius: float, roughness: float, rng: np.random.Generator,
                   jagged: float = 0.0, vertices: int = 128, elongation: float = 1.0) -> np.ndarray:
    """Vertices (x, y) around (0, 0) of an irregular blob ``radius`` px in mean radius.

    ``roughness`` scales low-frequency lobes (harmonics 2-5, amplitude ~ 1/k), ``jagged`` a
    finer wobble (harmonics 6-60, amplitude ~ 1/k; for a ragged edge see :func:`fractal_edge`);
    ``elongation`` stretches it along a random axis."""
    theta = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    k = np.r_[np.arange(2, 6), np.arange(6, 61, 3)] if jagged else np.arange(2, 6)
    amp = np.where(k < 6, 0.5 * roughness, 0.3 * jagged) / k * rng.normal(size=len(k))
    phase = rng.uniform(0, 2 * np.pi, len(k))
    r = 1.0 + (amp[:, None] * np.cos(k[:, None] * theta[None, :] + phase[:, None])).sum(axis=0)
    r = radius * np.clip(r, 0.3, None)
    points = np.stack([r * np.cos(theta) * elongation, r * np.sin(theta)], axis=1)
    rot = rng.uniform(0, np.pi)
    c, s = np.cos(rot), np.sin(rot)
    return points @ np.array([[c, s], [-s, c]])


def _frame(points: np.ndarray, pad: float) -> tuple[int, int, int, int]:
    top = int(np.floor(points[:, 1].min() - pad))
    left = int(np.floor(points[:, 0].min() - pad))
    bottom = int(np.ceil(points[:, 1].max() + pad)) + 1
    right = int(np.ceil(points[:, 0].max() + pad)) + 1
    return top, left, bottom, right


def fill_polygon(points: np.ndarray, soft: float = 0.0) -> Patch:
    """Anti-aliased filled polygon (x, y ``points`` in image coordinates), edge blurred by ``soft``."""
    top, left, bottom, right = _frame(points, 2 + 3 * soft)
    alpha = np.zeros((bottom - top, right - left), np.uint8)
    local = np.round((points - [left, top]) * _ONE).astype(np.int32)
    cv2.fillPoly(alpha, [local], 255, lineType=cv2.LINE_AA, shift=_SHIFT)
    return soften(alpha.astype(np.float32) / 255.0, soft), top, left


def stroke(points: np.ndarray, width: float | np.ndarray, soft: float = 0.0) -> Patch:
    """Anti-aliased polyline through (x, y) ``points``, ``width`` px wide (one value, or one per
    point for a stroke that swells and tapers), edge blurred by ``soft``."""
    widths = np.broadcast_to(np.asarray(width, np.float64), (len(points),))
    top, left, bottom, right = _frame(points, widths.max() / 2 + 2 + 3 * soft)
    alpha = np.zeros((bottom - top, right - left), np.uint8)
    local = np.round((points - [left, top]) * _ONE).astype(np.int32)
    if np.all(widths == widths[0]):
        _polyline(alpha, local, widths[0])
    else:  # runs of equal rounded width, each drawn as one polyline
        rounded = np.maximum(np.round(widths * 2) / 2, 0.5)
        cuts = np.flatnonzero(np.diff(rounded)) + 1
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(points)]):
            _polyline(alpha, local[max(a - 1, 0) : b], rounded[a])
    return soften(alpha.astype(np.float32) / 255.0, soft), top, left


def _polyline(alpha: np.ndarray, local: np.ndarray, width: float) -> None:
    """Draw one constant-width anti-aliased polyline; a width below 1 px is drawn 1 px and dimmed."""
    if len(local) < 2:
        local = np.repeat(local, 2, axis=0)
    value = 255 if width >= 1.0 else int(255 * width)
    cv2.polylines(alpha, [local], False, value, thickness=max(int(round(width)), 1),
                  lineType=cv2.LINE_AA, shift=_SHIFT)


def soften(alpha: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an alpha map (no-op below 0.1 px)."""
    if sigma < 0.1:
        return alpha
    return cv2.GaussianBlur(alpha, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_CONSTANT)


def place_mask(mask: np.ndarray, centre: tuple[float, float], angle: float, scale: float,
               flip: bool, soft: float) -> Patch:
    """A binary ``mask`` (e.g. a real dust shape) rotated by ``angle`` rad, scaled, optionally
    mirrored, centred at ``centre`` (x, y) as a soft alpha patch (bilinear, then blur ``soft``)."""
    src = mask.astype(np.float32)
    if flip:
        src = src[:, ::-1]
    h, w = src.shape
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    half_w = (abs(c) * w + abs(s) * h) / 2 + 2 + 3 * soft
    half_h = (abs(s) * w + abs(c) * h) / 2 + 2 + 3 * soft
    cx, cy = centre
    top, left = int(np.floor(cy - half_h)), int(np.floor(cx - half_w))
    out_h, out_w = int(np.ceil(cy + half_h)) - top + 1, int(np.ceil(cx + half_w)) - left + 1
    # source centre -> patch position of ``centre``
    m = np.array([[c, -s, 0.0], [s, c, 0.0]])
    m[:, 2] = np.array([cx - left, cy - top]) - m[:, :2] @ np.array([(w - 1) / 2, (h - 1) / 2])
    alpha = cv2.warpAffine(src, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return soften(alpha, soft), top, left


def wander(start: np.ndarray, length: float, heading: float, turn: float, period: float,
           rng: np.random.Generator) -> np.ndarray:
    """A smoothly meandering path (one point per pixel) from ``start``: its heading deviates from
    ``heading`` by ``turn`` rad times smooth noise varying over ``period`` px."""
    n = max(int(length), 2)
    angles = heading + turn * smooth_noise_1d(n, period, rng)
    steps = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return start + np.cumsum(steps, axis=0) - steps[0]


def ridge(alpha: np.ndarray, width: float) -> np.ndarray:
    """The middle ``width`` px of an elongated shape (alpha >= 0.5), anti-aliased: keeps pixels
    within width/2 of the local maximum of the distance to the shape's edge, so a thick outline
    of a hair becomes a thin hair of the same path."""
    inside = (alpha >= 0.5).astype(np.uint8)
    if not inside.any():
        return np.zeros_like(alpha)
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    k = 2 * int(np.ceil(dist.max())) + 1
    local = cv2.dilate(dist, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return (np.clip(dist - (local - width / 2) + 0.5, 0.0, 1.0) * inside).astype(np.float32)


OCTAVES = (1.5, 3.0, 6.0, 12.0)


def fractal_noise(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """HxW fractal noise: smooth noise at ``OCTAVES`` px, each weighted by cell / 6 (so a
    feature's height grows with its width, as a torn or eroded edge looks)."""
    noise = np.zeros((h, w), np.float32)
    for cell in OCTAVES:
        noise += cell / 6.0 * smooth_noise_2d(h, w, cell, rng)
    return noise


class NoiseField:
    """One fractal noise field for a whole image (plus a margin), so the many small patches that
    need a ragged edge read their noise from it instead of making their own."""

    def __init__(self, h: int, w: int, rng: np.random.Generator, margin: int = 32):
        self.margin = margin
        self.field = fractal_noise(h + 2 * margin, w + 2 * margin, rng)

    def patch(self, top: int, left: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        """The field under the patch at (top, left), size h x w (fresh noise where it sticks out)."""
        y, x = top + self.margin, left + self.margin
        if y < 0 or x < 0 or y + h > self.field.shape[0] or x + w > self.field.shape[1]:
            return fractal_noise(h, w, rng)
        return self.field[y : y + h, x : x + w]


def fractal_edge(alpha: np.ndarray, amount: float, noise: np.ndarray, shrink: float = 0.0) -> np.ndarray:
    """A ragged version of the shape ``alpha >= 0.5``: its signed distance to the edge plus
    ``amount`` times the fractal ``noise`` (same shape; see :func:`fractal_noise`), cut at
    ``shrink`` px inside, anti-aliased over one pixel. Pad ``alpha`` by ``2 * amount`` px first
    if the shape should be free to grow."""
    inside = (alpha >= 0.5).astype(np.uint8)
    if not inside.any():
        return np.zeros_like(alpha, dtype=np.float32)
    signed = cv2.distanceTransform(inside, cv2.DIST_L2, 3) - cv2.distanceTransform(1 - inside, cv2.DIST_L2, 3)
    signed += np.float32(amount) * noise + np.float32(0.5 - shrink)
    return np.clip(signed, 0.0, 1.0, out=signed)


def pad_patch(patch: Patch, pad: int) -> Patch:
    """``patch`` with ``pad`` zero pixels added on every side."""
    alpha, top, left = patch
    out = np.zeros((alpha.shape[0] + 2 * pad, alpha.shape[1] + 2 * pad), np.float32)
    out[pad : pad + alpha.shape[0], pad : pad + alpha.shape[1]] = alpha
    return out, top - pad, left - pad


def runs(keep: np.ndarray, minimum: int = 3) -> list[tuple[int, int]]:
    """(start, stop) of the runs of True in ``keep`` that are at least ``minimum`` long."""
    edges = np.flatnonzero(np.diff(np.r_[0, keep.astype(np.int8), 0]))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2]) if b - a >= minimum]


def combine(patches: list[Patch]) -> Patch:
    """One patch holding the maximum of ``patches`` over their union bounding box."""
    top = min(p[1] for p in patches)
    left = min(p[2] for p in patches)
    bottom = max(p[1] + p[0].shape[0] for p in patches)
    right = max(p[2] + p[0].shape[1] for p in patches)
    out = np.zeros((bottom - top, right - left), np.float32)
    for alpha, t, le in patches:
        view = out[t - top : t - top + alpha.shape[0], le - left : le - left + alpha.shape[1]]
        np.maximum(view, alpha, out=view)
    return out, top, left
