"""Display pyramids kept in numpy, so repaints never touch the float32 scan.

Level 0 is the image as 8-bit RGB (or the mask as 0/1 bytes); each further level halves both
sides (mean for pixels, max for the mask so a one-pixel scratch stays visible when zoomed out).
Edits update only the levels' pixels under the changed box.
"""

from __future__ import annotations

import numpy as np

#: Stop halving once the longer side is at most this many pixels.
SMALLEST = 256
#: Rows converted at a time, so a 50-megapixel scan needs no full-size float temporary.
CHUNK_ROWS = 512


def to_display(pixels: np.ndarray) -> np.ndarray:
    """float32 HxWxC (C = 1 or 3) in [0, 1] -> uint8 HxWx3, converted in bands of rows."""
    height, width = pixels.shape[:2]
    out = np.empty((height, width, 3), dtype=np.uint8)
    for y in range(0, height, CHUNK_ROWS):
        band = pixels[y : y + CHUNK_ROWS]
        band = band[:, :, :3] if band.ndim == 3 else band[:, :, None]
        out[y : y + CHUNK_ROWS] = np.clip(band * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


class Pyramid:
    """Halved copies of a uint8 HxW[xC] array; ``reduce`` is "mean" (pixels) or "max" (mask)."""

    def __init__(self, base: np.ndarray, reduce: str = "mean"):
        self.reduce = reduce
        self.levels = [base]
        while max(self.levels[-1].shape[:2]) > SMALLEST:
            level = self.levels[-1]
            self.levels.append(np.empty(((level.shape[0] + 1) // 2, (level.shape[1] + 1) // 2) + level.shape[2:],
                                        dtype=level.dtype))
        self.update((0, 0) + base.shape[:2])

    @property
    def shape(self) -> tuple[int, int]:
        return self.levels[0].shape[:2]

    def level_for(self, zoom: float) -> int:
        """The coarsest level still at least as detailed as the screen at ``zoom``."""
        level = 0
        while level + 1 < len(self.levels) and zoom <= 0.5 ** (level + 1):
            level += 1
        return level

    def write(self, box: tuple[int, int, int, int], pixels: np.ndarray) -> None:
        """Replace level-0 pixels in ``box`` (y0, x0, y1, x1) and refresh the coarser levels."""
        y0, x0, y1, x1 = box
        self.levels[0][y0:y1, x0:x1] = pixels
        self.update(box)

    def update(self, box: tuple[int, int, int, int]) -> None:
        """Recompute the coarser levels under a changed level-0 box."""
        y0, x0, y1, x1 = box
        for finer, coarser in zip(self.levels, self.levels[1:]):
            y0, x0 = y0 // 2, x0 // 2
            y1, x1 = min((y1 + 1) // 2, coarser.shape[0]), min((x1 + 1) // 2, coarser.shape[1])
            for row in range(y0, y1, CHUNK_ROWS):
                end = min(row + CHUNK_ROWS, y1)
                coarser[row:end, x0:x1] = self._halve(finer[2 * row : 2 * end, 2 * x0 : 2 * x1])

    def _halve(self, block: np.ndarray) -> np.ndarray:
        h, w = block.shape[:2]
        if h % 2 or w % 2:  # odd edge: repeat the last row/column
            block = np.pad(block, ((0, h % 2), (0, w % 2)) + ((0, 0),) * (block.ndim - 2), mode="edge")
        quads = (block[0::2, 0::2], block[1::2, 0::2], block[0::2, 1::2], block[1::2, 1::2])
        if self.reduce == "max":
            return np.maximum(np.maximum(quads[0], quads[1]), np.maximum(quads[2], quads[3]))
        total = sum(q.astype(np.uint16) for q in quads)
        return ((total + 2) // 4).astype(block.dtype)

    def copy(self) -> "Pyramid":
        """An independent pyramid (memcpy of every level, no recomputation)."""
        twin = Pyramid.__new__(Pyramid)
        twin.reduce, twin.levels = self.reduce, [level.copy() for level in self.levels]
        return twin
