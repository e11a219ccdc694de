"""The picture being damaged: composites defect layers and keeps the mask and class map current.

Choices, stated once:
- A layer is an alpha patch with a colour (one RGB triple or a per-pixel RGB patch) and a mode:
  "over" (paint: x + a (c - x)), "multiply" (a translucent dye: x (1 - a + a c)) or "add"
  (a signed shift: x + a c, clipped to [0, 1]). Consecutive layers of one defect with the same
  mode and colour are combined by the maximum of their alphas first (overlapping strokes of one
  crack are one object).
- Mask rule: a pixel is damaged where the damaged picture differs from the toned clean picture by
  at least ``VISIBLE`` = 0.04 (about 10/255) in some channel. The soft fringe a person sees is in
  the mask; a white speck on white sky that changed nothing is not. Changes below the threshold
  are reset to the clean value at the end, so outside the mask image == clean before the finish.
- Class rule: each pixel belongs to the defect that changed it most, where an opaque later
  defect ("over" with alpha a) scales the claim of the ones under it by (1 - a).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import NoiseField

VISIBLE = 0.04


@dataclass
class Layer:
    """One paint operation of a defect (see the module docstring for ``mode``)."""

    alpha: np.ndarray
    top: int
    left: int
    colour: np.ndarray | tuple[float, float, float]
    mode: str = "over"


def _channel_max(x: np.ndarray) -> np.ndarray:
    """Per-pixel maximum over the three channels (faster than ``max(axis=2)``)."""
    return np.maximum(np.maximum(x[:, :, 0], x[:, :, 1]), x[:, :, 2])


def _window(top: int, left: int, shape: tuple[int, int], bounds: tuple[int, int, int, int]):
    """(image slices, patch slices) of a patch at (top, left) clipped to ``bounds`` (t, l, b, r),
    or None when they do not meet."""
    t0, l0, b0, r0 = bounds
    y0, x0 = max(top, t0), max(left, l0)
    y1, x1 = min(top + shape[0], b0), min(left + shape[1], r0)
    if y0 >= y1 or x0 >= x1:
        return None
    return (slice(y0, y1), slice(x0, x1)), (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))


def _merge(layers: list[Layer], box: tuple[int, int, int, int]):
    """Yield (alpha, colour, mode) over the whole ``box`` for runs of consecutive layers that share
    a mode and a plain colour, their alphas combined by maximum (strokes of one defect that
    overlap are one object, not two coats of paint)."""
    t, le, b, r = box
    run_key, run_alpha, run_colour = None, None, None
    for layer in layers:
        colour = np.asarray(layer.colour, np.float32)
        win = _window(layer.top - t, layer.left - le, layer.alpha.shape, (0, 0, b - t, r - le))
        if win is None:
            continue
        (ys, xs), (py, px) = win
        key = (layer.mode, colour.tobytes()) if colour.ndim == 1 else None
        if key is None or key != run_key:
            if run_alpha is not None:
                yield run_alpha, run_colour, run_key[0]
                run_alpha = None
            run_key, run_colour = key, colour
        if key is None:  # a per-pixel colour: its own layer, the colour padded to the box
            alpha = np.zeros((b - t, r - le), np.float32)
            alpha[ys, xs] = layer.alpha[py, px]
            full = np.zeros((b - t, r - le, 3), np.float32)
            full[ys, xs] = colour[py, px]
            yield alpha, full, layer.mode
            run_key = None
            continue
        if run_alpha is None:
            run_alpha = np.zeros((b - t, r - le), np.float32)
        np.maximum(run_alpha[ys, xs], layer.alpha[py, px], out=run_alpha[ys, xs])
    if run_alpha is not None:
        yield run_alpha, run_colour, run_key[0]


class Canvas:
    """Toned clean picture + the damage drawn so far, its mask, class map and per-pixel claim."""

    def __init__(self, toned: np.ndarray, paper: np.ndarray):
        self.toned = toned
        self.image = toned.copy()
        h, w = toned.shape[:2]
        self.shape = (h, w)
        self.mask = np.zeros((h, w), bool)
        self.classes = np.zeros((h, w), np.uint8)
        self.claim = np.zeros((h, w), np.float32)
        self.paper = paper  # colour of the print's paper / the plate's base, shared by every defect
        self._noise: NoiseField | None = None

    def noise(self, top: int, left: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        """Fractal noise under a patch (one field per image, made on first use)."""
        if self._noise is None:
            self._noise = NoiseField(*self.shape, rng)
        return self._noise.patch(top, left, h, w, rng)

    def bbox(self, layers: list[Layer]) -> tuple[int, int, int, int] | None:
        """Union bounding box (top, left, bottom, right) of ``layers`` inside the image."""
        h, w = self.shape
        t = max(min(l.top for l in layers), 0)
        le = max(min(l.left for l in layers), 0)
        b = min(max(l.top + l.alpha.shape[0] for l in layers), h)
        r = min(max(l.left + l.alpha.shape[1] for l in layers), w)
        return (t, le, b, r) if t < b and le < r else None

    def apply(self, class_id: int, layers: list[Layer], limit: float | None = None
              ) -> tuple[int, tuple[int, int, int, int] | None]:
        """Paint one defect; returns (pixels newly in the mask, its bbox in the image); (0, None)
        when it misses the image; (-1, None) when it would add more than ``limit`` mask pixels
        (then it is undone)."""
        if not layers:
            return 0, None
        box = self.bbox(layers)
        if box is None:
            return 0, None
        t, le, b, r = box
        region = self.image[t:b, le:r]
        before = region.copy()
        cover = np.zeros((b - t, r - le), np.float32)
        for alpha, colour, mode in _merge(layers, box):
            a = alpha[:, :, None]
            if mode == "over":
                region += a * (colour - region)
                np.maximum(cover, alpha, out=cover)
            elif mode == "multiply":
                region *= 1.0 - a + a * colour
            elif mode == "add":  # the only mode that can leave [0, 1]
                region += a * colour
                np.clip(region, 0.0, 1.0, out=region)
            else:
                raise ValueError(f"unknown layer mode {mode!r}")
        visible = _channel_max(np.abs(region - self.toned[t:b, le:r])) >= VISIBLE
        mask = self.mask[t:b, le:r]
        added = int(np.count_nonzero(visible)) - int(np.count_nonzero(mask))
        if limit is not None and added > limit:
            region[...] = before
            return -1, None
        mask[...] = visible
        change = _channel_max(np.abs(region - before))
        claim = self.claim[t:b, le:r]
        claim *= 1.0 - cover
        won = change > claim
        claim[won] = change[won]
        self.classes[t:b, le:r][won] = class_id
        return added, box

    def finish(self) -> None:
        """Reset invisible changes to the clean picture and clear the classes outside the mask."""
        self.image = np.where(self.mask[:, :, None], self.image, self.toned)
        self.classes *= self.mask
