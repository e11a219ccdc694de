"""Restore one whole image: tile, solve batches of patches, blend, report, persist.

This is the single code path behind the command line, the job queue and the GUI. Batches are
fixed slices of the row-major tile list, so a resumed run recomputes exactly the batches that
had not finished, with the same companions, and produces the identical image.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import torch

from restorer_app.devices import bf16_supported, resolve_device
from restorer_app.flow.glow import Glow
from restorer_app.flow.weights import default_model_path, load_model
from restorer_app.restore.ensemble import average_views, shifted_tile, to_view, views_for
from restorer_app.restore.prefill import start_point
from restorer_app.restore.settings import RestoreSettings
from restorer_app.restore.solver import solve_batch
from restorer_app.restore.strength import auto_lambda
from restorer_app.restore.tiling import Assembler, Tile, TileGrid, extract_patch, plan_tiles

MARGIN = 4
#: A noise estimate below this means a clean scan with holes: known pixels are pasted back.
CLEAN_SIGMA = 1.5 / 255.0
#: Below this, a masked scan gets its preset's ``holes_only`` schedule. Texture alone reads up to
#: 7.9/255 on clean Kodak24/McMaster18 crops and mask + noise 15 + JPEG 40 never less than 7.4/255,
#: so the line sits under both: textured clean scans keep the short schedule (no harm, E16).
HOLES_ONLY_SIGMA = 6.0 / 255.0


class RestoreCancelled(Exception):
    """Raised between batches when ``should_stop()`` asked for it; finished patches are kept."""

    def __init__(self, done: int, total: int):
        super().__init__(f"cancelled after {done} of {total} patches")
        self.done, self.total = done, total


class PatchStore(Protocol):
    def get(self, index: int) -> np.ndarray | None: ...
    def put(self, index: int, patch: np.ndarray) -> None: ...


@dataclass
class PatchProgress:
    index: int
    total: int
    done: int
    box: tuple[int, int, int, int]  # (y0, x0, y1, x1) in image pixels
    pixels: np.ndarray  # restored pixels of box, float32 HxWx3
    from_store: bool
    stats: dict = field(default_factory=dict)


@dataclass
class Plan:
    """What restore_image decided before the first patch: shown in provenance and the CLI."""

    lam: float
    sigma: float
    paste_known: bool
    batch_size: int
    device: str
    mixed_precision: bool
    patches: int
    schedule: dict  # the preset's schedule, with its ``holes_only`` variant applied where chosen


@functools.lru_cache(maxsize=4)
def _cached_model(path: str, device: str) -> Glow:
    return load_model(path, device)


def get_model(settings: RestoreSettings, device: torch.device) -> Glow:
    path = settings.model_path or str(default_model_path())
    return _cached_model(str(path), str(device))


def _as_rgb(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Split an HxW / HxWxC image into RGB, alpha (or None) and the colour channel count."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"image of shape {image.shape}: expected HxW or HxWxC with 1-4 channels")
    channels = image.shape[2]
    alpha = image[:, :, -1] if channels in (2, 4) else None
    colour = image[:, :, : 1 if channels <= 2 else 3]
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    return colour, alpha, 1 if channels <= 2 else 3


def make_plan(image: np.ndarray, mask: np.ndarray | None, settings: RestoreSettings, device: torch.device, grid) -> Plan:
    lam, sigma = auto_lambda(image, mask)  # sigma also decides paste-back and the holes schedule
    if settings.strength != "auto":
        lam = float(settings.strength)
    default_batch = 256 if device.type == "cuda" else 64
    mixed = settings.mixed_precision and bf16_supported(device)
    masked = mask is not None and mask.any()
    schedule = {k: v for k, v in settings.schedule.items() if k != "holes_only"}
    if masked and sigma < HOLES_ONLY_SIGMA:  # holes in a clean scan: filling them pays for more steps
        schedule.update(settings.schedule.get("holes_only", {}))
    return Plan(
        lam=lam,
        sigma=sigma,
        paste_known=bool(masked and sigma < CLEAN_SIGMA),
        batch_size=settings.batch_size or default_batch,
        device=str(device),
        mixed_precision=mixed,
        patches=len(grid),
        schedule=schedule,
    )


def restore_image(
    image: np.ndarray,
    mask: np.ndarray | None,
    settings: RestoreSettings,
    model: Glow | None = None,
    on_progress: Callable[[PatchProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    patch_store: PatchStore | None = None,
    on_plan: Callable[[Plan], None] | None = None,
) -> np.ndarray:
    """Restore ``image`` (float32 HxW[xC] in [0, 1]); ``mask`` True marks damaged pixels."""
    image = np.asarray(image, dtype=np.float32)
    colour, alpha, out_channels = _as_rgb(image)
    height, width = colour.shape[:2]
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (height, width):
            raise ValueError(f"mask of {mask.shape[1]}x{mask.shape[0]} pixels does not match the image ({width}x{height})")
    if not np.isfinite(colour).all():
        raise ValueError("image contains NaN or infinite values")
    device = resolve_device(settings.device)
    model = model if model is not None else get_model(settings, device)
    model = model.to(device).eval()
    torch.manual_seed(settings.seed)
    grid = plan_tiles(height, width, patch=model.config.patch_size, margin=MARGIN)
    plan = make_plan(colour, mask, settings, device, grid)
    if on_plan:
        on_plan(plan)
    output = np.empty((height, width, 3), dtype=np.float32)
    assembler = Assembler(grid, output)
    tiles = list(grid.tiles())
    done = 0
    for first in range(0, len(tiles), plan.batch_size):
        if should_stop is not None and should_stop():
            raise RestoreCancelled(done, len(tiles))
        batch = tiles[first : first + plan.batch_size]
        stored = {t.index: patch_store.get(t.index) for t in batch} if patch_store is not None else {}
        todo = [t for t in batch if stored.get(t.index) is None]
        results = _solve_tiles(model, colour, mask, grid, todo, plan, device) if todo else {}
        for tile in batch:
            from_store = stored.get(tile.index) is not None
            patch, stats = (stored[tile.index], {}) if from_store else results[tile.index]
            if patch_store is not None and not from_store:
                patch_store.put(tile.index, patch)
            assembler.add(tile, patch)
            done += 1
            if on_progress is not None:
                on_progress(_progress(grid, tile, patch, done, from_store, stats))
    output = np.clip(output, 0.0, 1.0)
    if out_channels == 1:
        output = output.mean(axis=2, keepdims=True)
    if alpha is not None:
        output = np.concatenate([output, alpha[:, :, None]], axis=2)
    return output if image.ndim == 3 else output[:, :, 0]


def _progress(grid: TileGrid, tile: Tile, patch, done, from_store, stats) -> PatchProgress:
    y0, x0, y1, x1 = grid.core_box(tile)
    m = grid.margin
    pixels = patch[m : m + y1 - y0, m : m + x1 - x0]
    return PatchProgress(tile.index, len(grid), done, (y0, x0, y1, x1), pixels, from_store, stats)


def _solve_tiles(model, colour, mask, grid, tiles, plan: Plan, device) -> dict:
    """Restore ``tiles``; a CUDA out-of-memory halves the batch and goes on."""
    try:
        return _solve_chunk(model, colour, mask, grid, tiles, plan, device)
    except torch.cuda.OutOfMemoryError:
        if len(tiles) == 1:
            raise
        torch.cuda.empty_cache()
        half = len(tiles) // 2
        plan.batch_size = max(1, half)
        left = _solve_tiles(model, colour, mask, grid, tiles[:half], plan, device)
        return left | _solve_tiles(model, colour, mask, grid, tiles[half:], plan, device)


def patch_inputs(colour, mask, grid, tiles) -> tuple[list, list, list]:
    """Per tile: the degraded patch, its valid-pixel mask and its MAP start point (HxWxC)."""
    patches, valid, starts = [], [], []
    for tile in tiles:
        patch = extract_patch(colour, grid, tile)
        damaged = extract_patch(mask, grid, tile) if mask is not None else np.zeros(patch.shape[:2], bool)
        patches.append(patch)
        valid.append(~damaged)
        starts.append(start_point(patch, damaged))
    return patches, valid, starts


def to_batch(arrays, device) -> torch.Tensor:
    """HxWxC arrays (or HxW masks) -> an NCHW float tensor on ``device``."""
    stacked = torch.from_numpy(np.stack(arrays))
    stacked = stacked[:, :, :, None] if stacked.ndim == 3 else stacked
    return stacked.permute(0, 3, 1, 2).contiguous().float().to(device)


def _solve_chunk(model, colour, mask, grid, tiles, plan: Plan, device) -> dict:
    schedule = plan.schedule
    views = views_for(schedule, grid.margin)
    inputs = {}  # per window shift: mirrored views share one extraction, hole fill and blur
    for shift in dict.fromkeys(view.shift for view in views):
        patches, valid, starts = patch_inputs(colour, mask, grid, [shifted_tile(t, shift) for t in tiles])
        inputs[shift] = (to_batch(patches, device) - 0.5, to_batch(valid, device), to_batch(starts, device) - 0.5)
    x_hat, valid_t, start = ([to_view(inputs[view.shift][k], view) for view in views] for k in range(3))
    result = solve_batch(
        model,
        torch.cat(x_hat),
        torch.cat(valid_t),
        torch.cat(start),
        torch.full((len(tiles) * len(views),), plan.lam, device=device),
        schedule["stages"],
        lr=schedule["lr"],
        fp32_tail=schedule["fp32_tail"],
        autocast_dtype=torch.bfloat16 if plan.mixed_precision else None,
    )
    n = len(tiles)
    x = average_views(list(result.x.split(n)), views)
    result.loss, result.retries, result.failed = result.loss[:n], result.retries.view(-1, n).sum(0), result.failed.view(-1, n).any(0)
    if plan.paste_known:
        x = torch.where(valid_t[0].bool(), x_hat[0], x)
    restored = (x + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)
    out = {}
    for i, tile in enumerate(tiles):
        stats = {"loss": float(result.loss[i]), "retries": int(result.retries[i]), "failed": bool(result.failed[i])}
        out[tile.index] = (np.ascontiguousarray(restored[i]), stats)
    return out
