"""Which windows a restoration solves, and how a repair's windows are blended back.

Scope ``image`` solves every tile of the fixed grid (``tiling``). Scope ``mask`` follows the
damage instead: the mask, grown by ``MASK_DILATION``, falls into connected pieces; pieces that fit
in a window's interior (the window minus ``context`` pixels on each side) are gathered, in reading
order, into windows centred on them, so a speck, a hair or a short scratch costs one 64x64 solve
instead of the two to four grid tiles it touches. A piece too large for one window but thin (a
long scratch or hair, up to ``THIN`` px from its middle to its edge) is cut into interior-sized
parts, which are gathered like small pieces, so windows run along it; a large thick piece (a
tear, a stain) is solved on the grid as before (every tile whose window touches it), and a small
piece lying wholly within the cores of those tiles needs no window of its own.

:class:`MaskBlender` blends the windows' results into the masked pixels only (every other pixel
of a repair is returned as given): each window weighs in with the grid's ramp towards its four
edges, normalised by the sum of the weights. The weights are dyadic and summed in float64, so
windows that return their input give it back bit for bit. Windows are ordered by their top row,
so rows above the next window are final and are written out: only a band lives at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from restorer_app.restore.tiling import TileGrid, extract_patch

#: Names how windows are chosen and numbered: stored patches of a job paused under another
#: layout belong to other windows, so the patch store's key includes it.
LAYOUT = "damage-windows-1"
#: Tiles are solved where they touch the mask grown by this many pixels: a masked pixel then
#: always lies well inside solved context, never at the edge of an unsolved neighbour.
MASK_DILATION = 2
#: A large piece no thicker than this (the grown piece's largest distance to its edge, px) is a
#: scratch or a hair: it is solved in windows along it, not on the grid.
THIN = 5.0


@dataclass(frozen=True)
class Window:
    index: int  # its place in the order of solving and blending
    top: int  # image coordinates of the window's top-left corner (may be negative: padding)
    left: int
    box: tuple[int, int, int, int]  # (y0, x0, y1, x1): the image pixels it answers for (progress)


def grid_windows(grid: TileGrid) -> list[Window]:
    """Every tile of the grid, answering for its core."""
    return [Window(tile.index, tile.top, tile.left, grid.core_box(tile)) for tile in grid.tiles()]


def context(grid: TileGrid) -> int:
    """Known pixels kept around a damaged piece in a window centred on it: 8 for 64-px windows."""
    return grid.patch // 8


def damage_windows(grid: TileGrid, mask: np.ndarray) -> list[Window]:
    """The windows that repair ``mask``: centred on its small pieces and along its thin ones, the
    grid's tiles under its large thick ones; ordered by (top, left)."""
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((2 * MASK_DILATION + 1,) * 2, np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    del grown
    interior = grid.patch - 2 * context(grid)
    boxes = [(int(y), int(x), int(y + h), int(x + w)) for x, y, w, h in stats[1:, :4]]
    large = np.zeros(count, dtype=bool)
    large[1:] = [y1 - y0 > interior or x1 - x0 > interior for y0, x0, y1, x1 in boxes]
    pieces = [box for box, big in zip(boxes, large[1:]) if not big]
    for label in np.flatnonzero(large):  # thin large pieces (scratches, hairs) in interior-sized parts
        y0, x0, y1, x1 = boxes[label - 1]
        piece = (labels[y0:y1, x0:x1] == label).astype(np.uint8)
        if cv2.distanceTransform(np.pad(piece, 1), cv2.DIST_L2, 3).max() <= THIN:  # padded: its edge counts
            large[label] = False
            pieces += _parts(piece, y0, x0, interior)
    on_grid: list[Window] = []
    chosen = np.zeros((grid.rows, grid.cols), dtype=bool)  # grid tiles solved for large pieces
    if large.any():
        under_large = large[labels]
        for tile in grid.tiles():
            if extract_patch(under_large, grid, tile).any():
                chosen[tile.row, tile.col] = True
                on_grid.append(Window(0, tile.top, tile.left, grid.core_box(tile)))
    del labels
    small = sorted(box for box in pieces if not _within(chosen, grid.core, box))
    centred = [_centred(grid, box) for box in _gather(small, interior)]
    ordered = sorted(on_grid + centred, key=lambda w: (w.top, w.left))
    return [Window(i, w.top, w.left, w.box) for i, w in enumerate(ordered)]


def _parts(piece: np.ndarray, top: int, left: int, size: int) -> list[tuple[int, int, int, int]]:
    """Boxes of the piece's pixels in each ``size``-square cell of its bounding box (image coordinates)."""
    parts = []
    for y in range(0, piece.shape[0], size):
        for x in range(0, piece.shape[1], size):
            rows, cols = np.nonzero(piece[y : y + size, x : x + size])
            if len(rows):
                parts.append((top + y + int(rows.min()), left + x + int(cols.min()),
                              top + y + int(rows.max()) + 1, left + x + int(cols.max()) + 1))
    return parts


def _within(chosen: np.ndarray, core: int, box) -> bool:
    """Whether every grid cell under ``box`` is the core of a tile already solved."""
    y0, x0, y1, x1 = box
    return bool(chosen[y0 // core : (y1 - 1) // core + 1, x0 // core : (x1 - 1) // core + 1].all())


def _gather(boxes: list[tuple[int, int, int, int]], interior: int) -> list[tuple[int, int, int, int]]:
    """Boxes merged greedily, first fit in the given order, into groups spanning at most
    ``interior`` pixels each way; candidates are found through cells of that size."""
    groups: list[list[int]] = []
    cells: dict[tuple[int, int], set[int]] = {}

    def cell_of(group) -> tuple[int, int]:
        return group[0] // interior, group[1] // interior

    for y0, x0, y1, x1 in boxes:
        cy, cx = y0 // interior, x0 // interior
        target = None
        for key in sorted((cy + dy, cx + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)):
            for g in sorted(cells.get(key, ())):
                a = groups[g]
                if max(a[2], y1) - min(a[0], y0) <= interior and max(a[3], x1) - min(a[1], x0) <= interior:
                    target = g if target is None else min(target, g)
        if target is None:
            groups.append([y0, x0, y1, x1])
            cells.setdefault(cell_of(groups[-1]), set()).add(len(groups) - 1)
            continue
        group = groups[target]
        cells[cell_of(group)].discard(target)
        group[:] = [min(group[0], y0), min(group[1], x0), max(group[2], y1), max(group[3], x1)]
        cells.setdefault(cell_of(group), set()).add(target)
    return [tuple(group) for group in groups]


def _centred(grid: TileGrid, box) -> Window:
    """A window centred on ``box``, kept within a margin of the image like the grid's tiles."""
    y0, x0, y1, x1 = box

    def place(low: int, high: int, size: int) -> int:
        start = (low + high) // 2 - grid.patch // 2
        first, last = -grid.margin, size + grid.margin - grid.patch
        return first if last < first else min(max(start, first), last)

    return Window(0, place(y0, y1, grid.height), place(x0, x1, grid.width), box)


def _ramp(patch: int, length: int) -> np.ndarray:
    """Weights across a window: rising over ``length`` pixels at both ends (the grid's dyadic ramp)."""
    rising = (np.arange(length) + 0.5) / length
    weights = np.ones(patch, dtype=np.float64)
    weights[:length] = rising
    weights[-length:] = np.minimum(weights[-length:], rising[::-1])
    return weights


class MaskBlender:
    """Blends windows' results into the masked pixels of ``outputs`` (HxWxCi arrays taking the
    patches' channels in order); the other pixels are left as they are."""

    def __init__(self, grid: TileGrid, windows: Sequence[Window], mask: np.ndarray,
                 outputs: Sequence[np.ndarray]):
        self.grid, self.windows, self.mask, self.outputs = grid, list(windows), mask, list(outputs)
        self.channels = sum(part.shape[2] for part in self.outputs)
        ramp = _ramp(grid.patch, 2 * grid.margin)
        self.weight = np.outer(ramp, ramp)
        self.pad = grid.patch  # columns of the band left and right of the image (windows overhang)
        self.top = self.windows[0].top if self.windows else 0  # image row of band row 0
        self.sums = np.zeros((2 * grid.patch, grid.width + 2 * self.pad, self.channels), dtype=np.float64)
        self.weights = np.zeros(self.sums.shape[:2], dtype=np.float64)
        self.waiting: dict[int, np.ndarray] = {}
        self.next_index = 0

    def add(self, window: Window, patch: np.ndarray) -> None:
        """Accept a solved window (patch x patch x C) in any order; blend what is ready."""
        self.waiting[window.index] = patch
        while self.next_index in self.waiting:
            self._blend(self.windows[self.next_index], self.waiting.pop(self.next_index))
            self.next_index += 1

    def finish(self) -> None:
        """Write the rows still in the band (after the last window)."""
        self._flush(self.top + len(self.sums))

    def _blend(self, window: Window, patch: np.ndarray) -> None:
        size = self.grid.patch
        if window.top + size > self.top + len(self.sums):
            self._flush(window.top)  # no later window reaches above this one's top
        y, x = window.top - self.top, window.left + self.pad
        self.sums[y : y + size, x : x + size] += self.weight[:, :, None] * patch
        self.weights[y : y + size, x : x + size] += self.weight

    def _flush(self, until: int) -> None:
        """Write the masked pixels of band rows above image row ``until``; move the band down."""
        done = min(until - self.top, len(self.sums))
        y0, y1 = max(self.top, 0), min(self.top + done, self.grid.height)
        if y1 > y0:
            rows = slice(y0 - self.top, y1 - self.top)
            cols = slice(self.pad, self.pad + self.grid.width)
            masked = self.mask[y0:y1]
            values = self.sums[rows, cols][masked] / self.weights[rows, cols][masked][:, None]
            first = 0
            for part in self.outputs:
                part[y0:y1][masked] = values[:, first : first + part.shape[2]]
                first += part.shape[2]
        for band in (self.sums, self.weights):
            band[: len(band) - done] = band[done:]
            band[len(band) - done :] = 0.0
        self.top = until


def pending_cells(grid: TileGrid, windows: Sequence[Window]) -> np.ndarray:
    """Grid cells (rows x cols, bool) under the boxes of ``windows``: what a live view shades as
    still to do (a finished window clears the cells under its box)."""
    cells = np.zeros((grid.rows, grid.cols), dtype=bool)
    for window in windows:
        y0, x0, y1, x1 = window.box
        cells[y0 // grid.core : (y1 - 1) // grid.core + 1, x0 // grid.core : (x1 - 1) // grid.core + 1] = True
    return cells
