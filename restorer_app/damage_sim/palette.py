"""Colours of what damage shows: the paper or base under the emulsion, and debris levels.

- Paper / base (one per image, shared by cracks, tears, creases and light scratches, since it is
  the same print): white (p 0.4, neutral 0.90-0.98), cream (p 0.4, (0.96, 0.90, 0.76) scaled
  by 0.90-1.02), or the black base of a tintype or of a glass plate on a dark backing (p 0.2,
  neutral 0.02-0.12).
- Mount: what a tear shows where it goes through the print to a card behind it (tears.py uses it
  with p 0.2): grey card, neutral 0.45-0.70.
- Debris (dust, dirt, hairs) is neutral grey: light 0.75-1.0, dark 0.0-0.25 or mid 0.30-0.70
  (p 0.15). Light debris sits on dark picture and dark on light with probability 0.7 (a scan
  shows a speck because it contrasts), the other way round otherwise.
"""

from __future__ import annotations

import numpy as np

CREAM = np.array([0.96, 0.90, 0.76], np.float32)


def paper(rng: np.random.Generator) -> np.ndarray:
    """An RGB paper / base colour (see the module docstring for the mix)."""
    kind = rng.random()
    if kind < 0.4:
        return np.full(3, rng.uniform(0.90, 0.98), np.float32)
    if kind < 0.8:
        return np.clip(CREAM * rng.uniform(0.90, 1.02), 0, 1).astype(np.float32)
    return np.full(3, rng.uniform(0.02, 0.12), np.float32)


def mount(rng: np.random.Generator) -> np.ndarray:
    """A grey card colour (see the module docstring)."""
    return np.full(3, rng.uniform(0.45, 0.70), np.float32)


def is_light(colour: np.ndarray) -> bool:
    return float(np.mean(colour)) > 0.5


def debris_level(under: float, rng: np.random.Generator, mid_share: float = 0.15,
                 contrast_share: float = 0.7) -> float:
    """A grey level for a speck or hair over a picture of luminance ``under``."""
    if rng.random() < mid_share:
        return float(rng.uniform(0.30, 0.70))
    light = (under < 0.5) == (rng.random() < contrast_share)
    return float(rng.uniform(0.75, 1.0) if light else rng.uniform(0.0, 0.25))


def luma_at(image: np.ndarray, x: float, y: float, radius: int = 2) -> float:
    """Mean luminance of ``image`` in a small window around (x, y) (clamped to the image)."""
    h, w = image.shape[:2]
    xi, yi = int(np.clip(x, 0, w - 1)), int(np.clip(y, 0, h - 1))
    window = image[max(yi - radius, 0) : yi + radius + 1, max(xi - radius, 0) : xi + radius + 1]
    return float(window.mean())
