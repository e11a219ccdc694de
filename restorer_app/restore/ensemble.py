"""Self-ensemble: each tile restored under several views (mirrored, transposed, shifted), averaged.

A single restoration carries a faint structure with the 8-pixel period of the deepest latent
grid. Measured (benchmarks/artifacts.py): it follows the orientation of the content, not the
grid's phase in the image, so mirrors cancel most of it (4.8x -> 1.65x the floor of independent
errors) and gain +0.64 dB on noise, while moving the window by half a cell (4 px) barely changes
it (4.7x, +0.14 dB). The presets therefore use the four mirrors; transposes and shifts stay
selectable per preset for the benchmarks' experiments.

A shifted view covers the tile window minus a strip of ``shift`` pixels on one side; since the
shift never exceeds the tile margin, the core of the tile is covered by every view and the
strips are averaged over the views that cover them (the unshifted view covers everything).
"""

from __future__ import annotations

import dataclasses
import itertools

import torch

from restorer_app.restore.tiling import Tile

#: The eight symmetries of the square as (mirrored dims, transposed): identity and mirrors first.
SYMMETRIES = [((), False), ((3,), False), ((2,), False), ((2, 3), False), ((), True), ((3,), True), ((2,), True), ((2, 3), True)]
SHIFTS = [(0, 0), (4, 4), (0, 4), (4, 0)]


@dataclasses.dataclass(frozen=True)
class View:
    flip: tuple[int, ...] = ()  # tensor dims (NCHW) mirrored
    transpose: bool = False  # rows and columns swapped after mirroring
    shift: tuple[int, int] = (0, 0)  # (down, right) move of the patch window, pixels


def views_for(schedule: dict, margin: int) -> list[View]:
    """The views a preset asks for: its first ``shifts`` shifts times its first ``flips`` symmetries."""
    shifts = SHIFTS[: schedule.get("shifts", 1)]
    if any(max(s) > margin for s in shifts):
        raise ValueError(f"ensemble shifts {shifts} exceed the tile margin {margin}")
    return [View(f, t, s) for s, (f, t) in itertools.product(shifts, SYMMETRIES[: schedule.get("flips", 1)])]


def shifted_tile(tile: Tile, shift: tuple[int, int]) -> Tile:
    return dataclasses.replace(tile, top=tile.top + shift[0], left=tile.left + shift[1])


def to_view(batch: torch.Tensor, view: View) -> torch.Tensor:
    batch = batch.flip(view.flip) if view.flip else batch
    return batch.transpose(2, 3) if view.transpose else batch


def from_view(batch: torch.Tensor, view: View) -> torch.Tensor:
    batch = batch.transpose(2, 3) if view.transpose else batch
    return batch.flip(view.flip) if view.flip else batch


def average_views(results: list[torch.Tensor], views: list[View]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and spread of NCHW results of the same tiles seen through ``views``, in the tile's
    own frame. The spread (N1HW) is the standard deviation over the views that cover a pixel,
    the largest over the channels: where the views disagree, the result is uncertain."""
    total = torch.zeros_like(results[0])
    squares = torch.zeros_like(results[0])
    count = torch.zeros_like(results[0][:1, :1])
    size = results[0].shape[-1]
    for result, view in zip(results, views):
        dy, dx = view.shift
        seen = from_view(result, view)[..., : size - dy, : size - dx]
        total[..., dy:, dx:] += seen
        squares[..., dy:, dx:] += seen * seen
        count[..., dy:, dx:] += 1
    mean = total / count
    variance = (squares / count - mean * mean).clamp_min(0)
    return mean, variance.sqrt().amax(dim=1, keepdim=True)
