"""The damage mask being painted: brush, eraser, clear, invert, PNG files, undo and redo.

Pure numpy (no Qt) so it is tested directly. A stroke saves only the 128x128 tiles it touches
before changing them, and keeps the ones that really changed, so undo on a 50-megapixel scan
costs the size of the stroke, not of the image. Undo and redo swap those saved tiles back in.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from restorer_app.imaging.atomic import atomic_output
from restorer_app.imaging.io import read_mask

TILE = 128
#: Oldest undo steps are dropped past this many bytes of saved mask.
UNDO_BUDGET = 256 * 2**20
MIN_RADIUS, MAX_RADIUS = 1, 2000

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1)


class _Step:
    """One undoable edit: boxes with the mask content to swap back in (None = invert)."""

    def __init__(self, regions: list[tuple[Box, np.ndarray | None]]):
        self.regions = regions

    @property
    def nbytes(self) -> int:
        return sum(data.nbytes for _, data in self.regions if data is not None)


class MaskLayer:
    """bool HxW, True = damaged. ``on_change(box)`` listeners hear every changed box."""

    def __init__(self, shape: tuple[int, int]):
        self.mask = np.zeros(shape[:2], dtype=bool)
        self.radius = 12.0
        self.listeners: list[Callable[[Box], None]] = []
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []
        self._saved: dict[tuple[int, int], np.ndarray] | None = None
        self._erase = False
        self._last: tuple[float, float] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.mask.shape

    @property
    def full_box(self) -> Box:
        return (0, 0) + self.mask.shape

    @property
    def stroking(self) -> bool:
        """A stroke is under way (between begin_stroke and end_stroke)."""
        return self._saved is not None

    def resize_brush(self, factor: float) -> float:
        self.radius = float(min(MAX_RADIUS, max(MIN_RADIUS, self.radius * factor)))
        return self.radius

    # strokes -----------------------------------------------------------------------------
    def begin_stroke(self, x: float, y: float, erase: bool = False) -> None:
        """Start painting (or erasing) at image coordinates (x, y); pixel (i, j) has its
        centre at (j + 0.5, i + 0.5)."""
        self._saved, self._erase, self._last = {}, erase, (x, y)
        self._paint_segment(x, y, x, y)

    def stroke_to(self, x: float, y: float) -> None:
        if self._saved is None:
            return
        ax, ay = self._last
        self._last = (x, y)
        self._paint_segment(ax, ay, x, y)

    def end_stroke(self) -> None:
        """Close the stroke as one undo step holding only the tiles it changed."""
        if self._saved is None:
            return
        regions = []
        for (ty, tx), before in self._saved.items():
            box = self._tile_box(ty, tx)
            if not np.array_equal(before, self._region(box)):
                regions.append((box, before))
        self._saved, self._last = None, None
        if regions:
            self._push(_Step(regions))

    def _paint_segment(self, ax: float, ay: float, bx: float, by: float) -> None:
        r = self.radius
        h, w = self.mask.shape
        y0, y1 = max(0, math.floor(min(ay, by) - r)), min(h, math.ceil(max(ay, by) + r) + 1)
        x0, x1 = max(0, math.floor(min(ax, bx) - r)), min(w, math.ceil(max(ax, bx) + r) + 1)
        if y0 >= y1 or x0 >= x1:
            return
        self._save_tiles((y0, x0, y1, x1))
        py = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5
        px = np.arange(x0, x1, dtype=np.float64)[None, :] + 0.5
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = np.clip(((px - ax) * dx + (py - ay) * dy) / length2, 0.0, 1.0) if length2 > 0 else 0.0
        inside = (px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2 <= r * r
        self.mask[y0:y1, x0:x1][inside] = not self._erase
        self._changed((y0, x0, y1, x1))

    def _save_tiles(self, box: Box) -> None:
        y0, x0, y1, x1 = box
        for ty in range(y0 // TILE, (y1 - 1) // TILE + 1):
            for tx in range(x0 // TILE, (x1 - 1) // TILE + 1):
                if (ty, tx) not in self._saved:
                    self._saved[(ty, tx)] = self._region(self._tile_box(ty, tx)).copy()

    def _tile_box(self, ty: int, tx: int) -> Box:
        h, w = self.mask.shape
        return ty * TILE, tx * TILE, min(h, (ty + 1) * TILE), min(w, (tx + 1) * TILE)

    def _region(self, box: Box) -> np.ndarray:
        y0, x0, y1, x1 = box
        return self.mask[y0:y1, x0:x1]

    # whole-mask edits ------------------------------------------------------------------------
    def clear(self) -> None:
        """Unmark everything; the undo step keeps only the box that held damage."""
        rows, cols = np.flatnonzero(self.mask.any(axis=1)), np.flatnonzero(self.mask.any(axis=0))
        if rows.size == 0:
            return
        box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
        self._push(_Step([(box, self._region(box).copy())]))
        self._region(box)[:] = False
        self._changed(box)

    def invert(self) -> None:
        """Swap damaged and valid; its own inverse, so the undo step stores no pixels."""
        np.logical_not(self.mask, out=self.mask)
        self._push(_Step([(self.full_box, None)]))
        self._changed(self.full_box)

    def add_damage(self, found: np.ndarray) -> int:
        """Mark ``found`` (bool HxW, e.g. the detector's suggestion) as damaged too, keeping what
        was painted, as one undo step that saves only the box of newly marked pixels; returns
        how many pixels it newly marked."""
        found = np.asarray(found, dtype=bool)
        self._check_shape(found)
        new = found & ~self.mask
        rows, cols = np.flatnonzero(new.any(axis=1)), np.flatnonzero(new.any(axis=0))
        if rows.size == 0:
            return 0
        box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
        self._push(_Step([(box, self._region(box).copy())]))
        y0, x0, y1, x1 = box
        self._region(box)[:] |= found[y0:y1, x0:x1]
        self._changed(box)
        return int(new[y0:y1, x0:x1].sum())

    def _check_shape(self, mask: np.ndarray) -> None:
        if mask.shape != self.mask.shape:
            raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]} pixels but the image is "
                             f"{self.mask.shape[1]}x{self.mask.shape[0]}")

    def replace(self, mask: np.ndarray) -> None:
        self._check_shape(mask)
        self._push(_Step([(self.full_box, self.mask.copy())]))
        self.mask[:] = mask
        self._changed(self.full_box)

    # files -------------------------------------------------------------------------------------
    def save_png(self, path) -> None:
        """8-bit PNG, 255 = damaged (the engine's mask-file contract), written atomically."""
        with atomic_output(Path(path), True) as f:
            Image.fromarray(self.mask.astype(np.uint8) * 255, mode="L").save(f, format="PNG")

    def load_png(self, path) -> None:
        """Read a mask file (nonzero = damaged) as one undoable step; ImageError if unusable."""
        self.replace(read_mask(path, self.mask.shape))

    # undo / redo ----------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        return self._swap(self._undo, self._redo)

    def redo(self) -> bool:
        return self._swap(self._redo, self._undo)

    def _swap(self, source: list[_Step], target: list[_Step]) -> bool:
        if not source:
            return False
        step = source.pop()
        for i, (box, data) in enumerate(step.regions):
            region = self._region(box)
            if data is None:
                np.logical_not(region, out=region)
            else:
                current = region.copy()
                region[:] = data
                step.regions[i] = (box, current)
            self._changed(box)
        target.append(step)
        return True

    def _push(self, step: _Step) -> None:
        self._undo.append(step)
        self._redo.clear()
        total = sum(s.nbytes for s in self._undo)
        while len(self._undo) > 1 and total > UNDO_BUDGET:
            total -= self._undo.pop(0).nbytes

    def _changed(self, box: Box) -> None:
        for listener in self.listeners:
            listener(box)
