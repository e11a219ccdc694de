"""Photographic tones applied before the damage: most old prints are monochrome.

- "keep": the photo as is.
- "grey": Rec. 601 luminance Y = 0.299 R + 0.587 G + 0.114 B in all three channels.
- "sepia" and "cyanotype": Y mapped through a three-colour ramp (black point at Y = 0, mid at
  Y = 0.5, paper at Y = 1, piecewise linear per channel). Every stop has R >= G >= B for sepia and
  R <= G <= B for cyanotype, so every toned pixel keeps that hue order. The sepia stops are
  the median colours at the 3 %, 50 % and 97 % luminance quantiles of real sepia prints, rounded;
  the cyanotype stops are Prussian blue to a pale blue-white.
"""

from __future__ import annotations

import numpy as np

TONES: tuple[str, ...] = ("keep", "grey", "sepia", "cyanotype")

LUMA = np.array([0.299, 0.587, 0.114], np.float32)

#: (black, mid, paper) RGB stops of the ramps.
RAMPS: dict[str, np.ndarray] = {
    "sepia": np.array([[0.10, 0.06, 0.03], [0.56, 0.44, 0.30], [0.96, 0.90, 0.78]], np.float32),
    "cyanotype": np.array([[0.05, 0.14, 0.30], [0.22, 0.44, 0.66], [0.88, 0.94, 0.97]], np.float32),
}


def luminance(img: np.ndarray) -> np.ndarray:
    """Rec. 601 luminance of a float HxWx3 image (HxW float32)."""
    img = img.astype(np.float32, copy=False)
    return img[:, :, 0] * LUMA[0] + img[:, :, 1] * LUMA[1] + img[:, :, 2] * LUMA[2]


def apply_tone(img: np.ndarray, tone: str) -> np.ndarray:
    """``img`` (float32 HxWx3 in [0, 1]) in the named tone, a new float32 array."""
    if tone == "keep":
        return img.astype(np.float32, copy=True)
    y = np.clip(luminance(img), 0.0, 1.0)
    if tone == "grey":
        return np.repeat(y[:, :, None], 3, axis=2)
    if tone not in RAMPS:
        raise ValueError(f"unknown tone {tone!r}; expected one of {TONES} or 'random'")
    stops = RAMPS[tone]
    # piecewise linear through the three stops at Y = 0, 0.5 and 1
    low = np.minimum(y * 2.0, 1.0)[:, :, None]
    high = np.maximum(y * 2.0 - 1.0, 0.0)[:, :, None]
    return stops[0] + (stops[1] - stops[0]) * low + (stops[2] - stops[1]) * high


def pick_tone(tone: str, probs: dict[str, float], rng: np.random.Generator) -> str:
    """``tone`` itself, or for "random" one of :data:`TONES` drawn with ``probs``."""
    if tone != "random":
        if tone not in TONES:
            raise ValueError(f"unknown tone {tone!r}; expected one of {TONES} or 'random'")
        return tone
    names = [t for t in TONES if probs.get(t, 0.0) > 0]
    p = np.array([probs[t] for t in names], np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]
