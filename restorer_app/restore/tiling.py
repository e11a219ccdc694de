"""Cutting an image into overlapping 64x64 patches and putting them back together.

Each tile has a core of ``patch - 2 * margin`` pixels; neighbours overlap by ``2 * margin``.
Borders are padded by symmetric reflection, computed as index maps so the image is never
copied whole. Overlaps are blended with complementary dyadic ramps (k/16) that sum to exactly
1, and accumulated in float64: when every tile returns its input, the float64 sums are exact
and the reassembled image equals the input bit for bit.

The assembler streams: tiles arrive in row-major order and each band of rows is written to the
output as soon as no later tile can touch it, so only one band of accumulators lives at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Tile:
    index: int
    row: int
    col: int
    top: int  # image coordinates of the patch's top-left corner (may be negative: padding)
    left: int


@dataclass(frozen=True)
class TileGrid:
    height: int
    width: int
    patch: int = 64
    margin: int = 4

    @property
    def core(self) -> int:
        return self.patch - 2 * self.margin

    @property
    def rows(self) -> int:
        return max(1, math.ceil(self.height / self.core))

    @property
    def cols(self) -> int:
        return max(1, math.ceil(self.width / self.core))

    def __len__(self) -> int:
        return self.rows * self.cols

    def tiles(self):
        for row in range(self.rows):
            for col in range(self.cols):
                yield Tile(row * self.cols + col, row, col, row * self.core - self.margin, col * self.core - self.margin)

    def core_box(self, tile: Tile) -> tuple[int, int, int, int]:
        """(y0, x0, y1, x1) of the image pixels this tile is mainly responsible for."""
        y0, x0 = tile.row * self.core, tile.col * self.core
        return y0, x0, min(y0 + self.core, self.height), min(x0 + self.core, self.width)


def plan_tiles(height: int, width: int, patch: int = 64, margin: int = 4) -> TileGrid:
    if height < 1 or width < 1:
        raise ValueError(f"image of {width}x{height} pixels has nothing to restore")
    if patch <= 2 * margin:
        raise ValueError(f"patch {patch} must be larger than twice the margin {margin}")
    return TileGrid(height, width, patch, margin)


def reflect_indices(start: int, length: int, size: int) -> np.ndarray:
    """Indices of positions start..start+length-1 folded into [0, size) by symmetric reflection."""
    positions = np.arange(start, start + length)
    if size == 1:
        return np.zeros(length, dtype=np.intp)
    period = 2 * size
    folded = np.mod(positions, period)
    return np.where(folded < size, folded, period - 1 - folded).astype(np.intp)


def extract_patch(image: np.ndarray, grid: TileGrid, tile: Tile) -> np.ndarray:
    rows = reflect_indices(tile.top, grid.patch, image.shape[0])
    cols = reflect_indices(tile.left, grid.patch, image.shape[1])
    return image[np.ix_(rows, cols)]


def _ramp_weights(grid: TileGrid, index: int, count: int) -> np.ndarray:
    """1-D blending weights of one tile along one axis; dyadic so pairs sum to exactly 1."""
    overlap = 2 * grid.margin
    weights = np.ones(grid.patch, dtype=np.float64)
    rising = (np.arange(overlap) + 0.5) / overlap
    if index > 0:
        weights[:overlap] = rising
    if index < count - 1:
        weights[-overlap:] = rising[::-1]
    return weights


class Assembler:
    """Blends restored patches into ``output`` (HxWxC float32), streaming band by band.
    ``output`` may be a sequence of HxWxCi arrays that take the patches' channels in order
    (the pipeline keeps colour and spread apart, so neither needs a copy at the end)."""

    def __init__(self, grid: TileGrid, output: np.ndarray | Sequence[np.ndarray]):
        self.grid = grid
        self.outputs = [output] if isinstance(output, np.ndarray) else list(output)
        self.channels = sum(part.shape[2] for part in self.outputs)
        self.tiles = list(grid.tiles())
        self.waiting: dict[int, np.ndarray] = {}
        self.next_index = 0
        self.band: np.ndarray | None = None

    def add(self, tile: Tile, patch: np.ndarray) -> None:
        """Accept a restored patch (patch x patch x C) in any order; blend what is ready."""
        self.waiting[tile.index] = patch
        while self.next_index in self.waiting:
            self._blend(self.tiles[self.next_index], self.waiting.pop(self.next_index))
            self.next_index += 1

    @property
    def done(self) -> bool:
        return self.next_index == len(self.grid)

    def _blend(self, tile: Tile, patch: np.ndarray) -> None:
        g = self.grid
        if tile.col == 0:
            self._start_band(tile.row)
        wy = _ramp_weights(g, tile.row, g.rows)
        wx = _ramp_weights(g, tile.col, g.cols)
        left = tile.col * g.core  # band coordinates: x + margin
        self.band[:, left : left + g.patch] += (wy[:, None, None] * wx[None, :, None]) * patch
        if tile.col == g.cols - 1:
            self._flush_band(tile.row, final=tile.row == g.rows - 1)

    def _start_band(self, row: int) -> None:
        g = self.grid
        width = g.cols * g.core + 2 * g.margin
        band = np.zeros((g.patch, width, self.channels), dtype=np.float64)
        if self.band is not None:  # carry the overlap accumulated by the previous row
            band[: 2 * g.margin] = self.band[-2 * g.margin :]
        self.band = band

    def _flush_band(self, row: int, final: bool) -> None:
        """Write rows that no later tile touches: the band minus its bottom overlap."""
        g = self.grid
        band_top = row * g.core - g.margin  # image row of band row 0
        keep = g.patch if final else g.patch - 2 * g.margin
        y0 = max(band_top, 0)
        y1 = min(band_top + keep, g.height)
        if y1 > y0:
            rows = self.band[y0 - band_top : y1 - band_top, g.margin : g.margin + g.width]
            first = 0
            for part in self.outputs:
                part[y0:y1] = rows[:, :, first : first + part.shape[2]]
                first += part.shape[2]
