"""What a restoration changed, pixel by pixel: the ``<output>.changes.png`` beside every output.

Archivists change only what is damaged and document every change, so the map is exact: it is
computed on the integer levels actually written (the input's bit depth), zero wherever the
output equals the input. Its three 8-bit channels:

- red: 255 where a pixel was synthesised (damaged, in the mask) and changed;
- green: how much a changed pixel moved, in 8-bit levels (the largest channel; at least 1, so a
  change of a single 16-bit level is still visible); cleaned pixels have green and no red;
- blue: the posterior uncertainty where the engine estimated one (the spread of the averaged
  views), in 8-bit levels x 4 (at least 1 where the spread is nonzero), only on changed pixels.
"""

from __future__ import annotations

import numpy as np

#: Spread is small next to the changes themselves; this gain makes a spread of 1/255 read 4.
SPREAD_GAIN = 4.0


def to_levels(pixels: np.ndarray, depth: int) -> np.ndarray:
    """Float [0, 1] -> the integer levels a ``depth``-bit file stores (HxWxC), as the writer does."""
    top = np.float32(255 if depth == 8 else 65535)
    pixels = pixels if pixels.ndim == 3 else pixels[:, :, None]
    return np.rint(np.clip(pixels.astype(np.float32), 0.0, 1.0) * top).astype(np.int32)


#: Rows compared at once: the integer copies of a 100-megapixel scan would otherwise take GBs.
BAND_ROWS = 512


def change_map(before: np.ndarray, after: np.ndarray, depth: int, mask: np.ndarray | None,
               spread: np.ndarray | None = None) -> np.ndarray:
    """uint8 HxWx3 change map of ``after`` against ``before`` (float HxW[xC] in [0, 1])."""
    out = np.zeros(before.shape[:2] + (3,), dtype=np.uint8)
    for top in range(0, before.shape[0], BAND_ROWS):
        rows = slice(top, top + BAND_ROWS)
        out[rows] = _band(before[rows], after[rows], depth, None if mask is None else mask[rows],
                          None if spread is None else spread[rows])
    return out


def _band(before, after, depth, mask, spread) -> np.ndarray:
    moved = np.abs(to_levels(after, depth) - to_levels(before, depth)).max(axis=2)
    changed = moved > 0
    per_8bit = 1 if depth == 8 else 257
    out = np.zeros(changed.shape + (3,), dtype=np.uint8)
    if mask is not None:
        out[:, :, 0] = np.where(changed & mask, 255, 0)
    out[:, :, 1] = np.where(changed, np.clip(np.ceil(moved / per_8bit), 1, 255), 0)
    if spread is not None:
        levels = np.clip(np.ceil(spread * 255.0 * SPREAD_GAIN), 0, 255)
        out[:, :, 2] = np.where(changed, levels, 0)
    return out


def change_summary(changes: np.ndarray) -> dict:
    """The numbers that go into the provenance and the XMP history."""
    total = changes.shape[0] * changes.shape[1]
    changed = changes[:, :, 1] > 0
    synthesised = changes[:, :, 0] > 0
    return {
        "pixels": int(total),
        "changed_fraction": round(float(changed.sum()) / total, 6),
        "synthesised_fraction": round(float(synthesised.sum()) / total, 6),
        "cleaned_fraction": round(float((changed & ~synthesised).sum()) / total, 6),
        "largest_change_8bit_levels": int(changes[:, :, 1].max()),
        "mean_spread_8bit_levels": round(float(changes[:, :, 2][changed].mean()) / SPREAD_GAIN, 3) if changed.any() else 0.0,
    }
