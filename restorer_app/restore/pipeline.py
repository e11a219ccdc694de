"""Restore one whole image: tile, solve batches of patches, blend, report, persist.

This is the single code path behind the command line, the job queue, the GUI and the cluster
runner. A resumed run produces the bit-identical image of an uninterrupted one by construction,
not by tolerance: batches are fixed slices of the row-major list of tiles to solve, so it
recomputes exactly the batches that had not finished, with the same companions (a batch stored in
part is solved whole), and on a CPU every batch is solved with the thread count the job started
with, recorded in the patch store (``Plan.threads``): a CPU kernel's summation order follows the
batch and the thread count, and nothing else of the arithmetic varies. Where a batch is solved is the :class:`Solver`'s business: here, one batch at a
time (:class:`LocalSolver`), or on Ray workers (jobs/cluster.py), which get the batch's windows as
plain arrays (:class:`BatchWork`) and run the same :func:`solve_work`.

Scope: with a damage mask the archivist's rule applies by default (``scope="mask"``): only
masked pixels are replaced, every other pixel is returned exactly as given, and only windows
that follow the damage are solved (``restore.windows``), so cost follows the damage.
``scope="image"`` restores every pixel (noise and JPEG everywhere, plus the mask) on the grid.
"""

from __future__ import annotations

import functools
import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch

from restorer_app.devices import bf16_supported, cpu_threads, gpu_batch_tiles, resolve_device
from restorer_app.flow.glow import Glow
from restorer_app.flow.weights import default_model_path, load_model
from restorer_app.restore.ensemble import average_views, shifted_tile, to_view, views_for
from restorer_app.restore.prefill import start_point
from restorer_app.restore.settings import RestoreSettings
from restorer_app.restore.solver import SolveStopped, solve_batch
from restorer_app.restore.strength import auto_lambda
from restorer_app.restore.tiling import Assembler, TileGrid, extract_patch, plan_tiles
from restorer_app.restore.windows import MaskBlender, Window, damage_windows, grid_windows

MARGIN = 4
#: A noise estimate below this means a clean scan with holes: known pixels are pasted back.
CLEAN_SIGMA = 1.5 / 255.0
#: Below this, a masked scan gets its preset's ``holes_only`` schedule. Texture alone reads up to
#: 7.9/255 on clean Kodak24/McMaster18 crops and mask + noise 15 + JPEG 40 never less than 7.4/255,
#: so the line sits under both: textured clean scans keep the short schedule (no harm).
HOLES_ONLY_SIGMA = 6.0 / 255.0
SCOPES = ("auto", "mask", "image")
#: Tiles per batch on a CPU. Each tile is solved in its four mirrored views, so a batch is 64
#: patches through the flow: on this 2-core CPU a step costs 16.7 ms a patch in bf16 against 24.8
#: for 256 patches, and peaks at 0.87 GB instead of 2.23 GB (one thread; benchmarks/batch_size.py).
DEFAULT_CPU_BATCH = 16
#: Optimiser steps left out of the speed measurement (the first ones pay for allocations).
ETA_WARMUP_STEPS = 2
#: Steps measured before an ETA is given; until then the ETA is None ("estimating").
ETA_MIN_STEPS = 3
#: The speed is measured over about this many recent seconds, so it follows a change of load.
ETA_WINDOW_S = 60.0


class RestoreCancelled(Exception):
    """Raised when ``should_stop()`` asked for it, between batches or between two optimiser steps
    of a batch (that batch is dropped); every patch of the earlier batches is kept. ``why``
    replaces the message (``restore_file`` stopped before any patch, while detecting damage)."""

    def __init__(self, done: int, total: int, why: str | None = None):
        super().__init__(why or f"cancelled after {done} of {total} patches")
        self.done, self.total = done, total


class PatchStore(Protocol):
    """Finished patches of one job. ``threads`` is the CPU thread count its patches were solved
    with (None until the first restoration sets it); a resumed job solves the rest with it."""

    threads: int | None

    def get(self, index: int) -> np.ndarray | None: ...
    def put(self, index: int, patch: np.ndarray) -> None: ...


@dataclass
class PatchProgress:
    index: int
    total: int
    done: int
    box: tuple[int, int, int, int]  # (y0, x0, y1, x1) in image pixels
    pixels: np.ndarray  # restored pixels of box, float32 HxWx3 (in scope "mask": before paste-back)
    from_store: bool
    stats: dict = field(default_factory=dict)


@dataclass
class StepProgress:
    """Where a restoration stands: sent after every optimiser step and at every batch end."""

    done: float  # finished patches + the solved fraction of the batch in work; never goes back
    total: int  # patches to solve (Plan.patches)
    elapsed_s: float  # since restore_image started
    eta_s: float | None  # measured seconds per step x steps left; None while estimating
    patches_per_s: float | None  # measured speed of the batch in work; None while estimating
    batch_steps_done: int = 0  # optimiser steps of the batch in work (0 between batches)
    batch_steps_total: int = 0  # its steps, retries of diverged patches included

    @property
    def estimating(self) -> bool:
        return self.eta_s is None and self.done < self.total


@dataclass
class Plan:
    """What restore_image decided before the first patch: shown in provenance and the CLI."""

    lam: float
    sigma: float
    paste_known: bool
    batch_size: int
    device: str
    mixed_precision: bool
    patches: int  # windows to solve (progress counts these)
    schedule: dict  # the preset's schedule, with its ``holes_only`` variant applied where chosen
    scope: str = "image"  # "mask": only masked pixels change; "image": every pixel is restored
    tiles_in_image: int = 0
    views: int = 1  # restorations averaged per tile; more than one gives a spread
    threads: int = 0  # CPU threads that solve every batch of the job (0: a GPU, or as they are)
    light_patches: int = 0  # tiles solved with the schedule's ``light`` variant (barely damaged windows)


@dataclass
class BatchWork:
    """One batch as plain arrays, so it can be solved in this process or shipped to another
    machine: per window shift, the tiles' degraded windows (NxPxPx3 float32) and their damaged
    pixels (NxPxP bool). Start points are made where the batch is solved (hole filling is the
    costly part of preparing a batch, and it would load the head of a cluster)."""

    plan: Plan
    margin: int
    windows: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]
    schedule: dict  # the plan's schedule, or its light variant for a batch of barely damaged tiles

    def __len__(self) -> int:
        return len(next(iter(self.windows.values()))[0])

    def split(self, at: int) -> tuple["BatchWork", "BatchWork"]:
        def part(rows: slice) -> BatchWork:
            return BatchWork(self.plan, self.margin, {k: (p[rows], d[rows]) for k, (p, d) in self.windows.items()},
                             self.schedule)

        return part(slice(None, at)), part(slice(at, None))


@dataclass
class BatchResult:
    patches: np.ndarray  # NxPxPx4 float32: restored colour and the spread over the views
    stats: list[dict]  # per patch: loss, retries, failed


class Submitted(Protocol):
    def result(self, steps: "_StepReporter | None", should_stop: Callable[[], bool] | None) -> BatchResult:
        """Wait for the batch; raises SolveStopped when ``should_stop()`` asks for it meanwhile."""

    def cancel(self) -> None:
        """The result will not be asked for (a stopped or failed restoration)."""


class Solver(Protocol):
    """Where batches are solved, and what the plan needs to know about it."""

    device: torch.device  # the device that solves (the plan's batch size follows it)
    bf16: bool  # whether bf16 autocast pays off there
    patch_size: int
    model_path: Path
    model_info: dict
    lookahead: int  # batches of one restoration in flight at most
    threads: int  # CPU threads that solve a batch there, for a job that has none recorded

    def submit(self, make_work: Callable[[], BatchWork], wait: bool,
               should_stop: Callable[[], bool] | None) -> Submitted | None:
        """Start the batch ``make_work()`` makes when there is room for it; ``wait`` blocks until
        there is (SolveStopped if ``should_stop()`` asks meanwhile), else None when there is not."""


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


def resolve_scope(scope: str, mask: np.ndarray | None) -> str:
    """``auto`` means ``mask`` when a mask was given, else ``image``; ``mask`` needs a mask."""
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r}: expected one of {', '.join(SCOPES)}")
    if scope == "auto":
        return "mask" if mask is not None else "image"
    if scope == "mask" and mask is None:
        raise ValueError("--scope mask: no damage mask was given (use --mask FILE or --mask auto, or --scope image)")
    return scope


def windows_to_solve(grid: TileGrid, mask: np.ndarray | None, scope: str) -> list[Window]:
    """Every tile of the grid for scope ``image``; for ``mask`` the windows that follow the damage."""
    return grid_windows(grid) if scope == "image" else damage_windows(grid, mask)


def light_schedule(schedule: dict) -> dict | None:
    """The schedule's ``light`` variant for tiles whose window is barely damaged (its ``below``:
    the damaged share of the window under which a tile counts as light), or None."""
    light = schedule.get("light")
    if light is None:
        return None
    return {**{k: v for k, v in schedule.items() if k != "light"}, **{k: v for k, v in light.items() if k != "below"}}


def slice_batches(grid: TileGrid, mask: np.ndarray | None, solve: list[Window], plan: Plan,
                  size: int) -> tuple[list[list[Window]], list[dict]]:
    """The windows to solve in fixed slices of ``size``, and each slice's schedule: where the plan's
    schedule has a ``light`` variant, tiles whose window is damaged under its ``below`` share are
    sliced apart and take it (a speck pins most of its window: the known pixels decide it). The
    slices are ordered by their first tile, so the streaming assembler never waits long.
    Sets ``plan.light_patches``."""
    light = light_schedule(plan.schedule)
    is_light = set()
    if light is not None and mask is not None:
        below = plan.schedule["light"]["below"]
        is_light = {tile.index for tile in solve if extract_patch(mask, grid, tile).mean() < below}
    plan.light_patches = len(is_light)
    slices = []
    for tiles, schedule in (([t for t in solve if t.index not in is_light], plan.schedule),
                            ([t for t in solve if t.index in is_light], light)):
        slices += [(tiles[first : first + size], schedule) for first in range(0, len(tiles), size)]
    slices.sort(key=lambda part: part[0][0].index)
    return [tiles for tiles, _ in slices], [schedule for _, schedule in slices]


def default_batch_tiles(device: torch.device) -> int:
    """Tiles per batch when the settings ask for none: the card's share on CUDA, else the CPU's."""
    return gpu_batch_tiles(device) if device.type == "cuda" else DEFAULT_CPU_BATCH


def steps_per_run(schedule: dict) -> int:
    return sum(steps for _, steps in schedule["stages"])


def make_plan(image: np.ndarray, mask: np.ndarray | None, settings: RestoreSettings, device: torch.device, grid,
              solve: list[Window] | None = None, bf16: bool | None = None, threads: int = 0) -> Plan:
    """``bf16``: whether the solving device has bf16 units (None: ask ``device`` here);
    ``threads``: the CPU threads that solve the job's batches (ignored on a GPU)."""
    lam, sigma = auto_lambda(image, mask)  # sigma also decides paste-back and the holes schedule
    if settings.strength != "auto":
        lam = float(settings.strength)
    mixed = settings.mixed_precision and (bf16_supported(device) if bf16 is None else bf16)
    masked = mask is not None and mask.any()
    schedule = {k: v for k, v in settings.schedule.items() if k != "holes_only"}
    if masked and sigma < HOLES_ONLY_SIGMA:  # holes in a clean scan: filling them pays for more steps
        schedule.update(settings.schedule.get("holes_only", {}))
    return Plan(
        lam=lam,
        sigma=sigma,
        paste_known=bool(masked and sigma < CLEAN_SIGMA),
        batch_size=settings.batch_size or default_batch_tiles(device),
        device=str(device),
        mixed_precision=mixed,
        patches=len(grid) if solve is None else len(solve),
        schedule=schedule,
        scope=resolve_scope(settings.scope, mask),
        tiles_in_image=len(grid),
        views=len(views_for(schedule, MARGIN)),
        threads=threads if device.type == "cpu" else 0,
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
    with_spread: bool = False,
    on_step: Callable[[StepProgress], None] | None = None,
    solver: Solver | None = None,
):
    """Restore ``image`` (float32 HxW[xC] in [0, 1]); ``mask`` True marks damaged pixels.

    Returns the restored image, or with ``with_spread`` the pair (image, spread): the per-pixel
    standard deviation of the averaged views (float32 HxW, the largest over the colour
    channels; zero where a single view was solved or nothing was solved).

    ``on_progress`` gets every finished patch; ``on_step`` gets a :class:`StepProgress` after
    every optimiser step and at every batch end. ``should_stop`` is polled before every batch, before every optimiser step and
    between the flow's layers within a step (keep it cheap); true raises :class:`RestoreCancelled`
    within a fraction of a step. None of them changes a bit of the result.

    ``solver`` (default: a :class:`LocalSolver` with ``model``) solves the batches; the next ones
    are submitted while the oldest is awaited, up to its ``lookahead``, and taken in order.
    """
    started = time.monotonic()
    image = np.asarray(image, dtype=np.float32)
    colour, alpha, out_channels = _as_rgb(image)
    height, width = colour.shape[:2]
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (height, width):
            raise ValueError(f"mask of {mask.shape[1]}x{mask.shape[0]} pixels does not match the image ({width}x{height})")
    if not np.isfinite(colour).all():
        raise ValueError("image contains NaN or infinite values")
    scope = resolve_scope(settings.scope, mask)
    solver = solver if solver is not None else LocalSolver(settings, model)
    torch.manual_seed(settings.seed)
    grid = plan_tiles(height, width, patch=solver.patch_size, margin=MARGIN)
    solve = windows_to_solve(grid, mask, scope)
    recorded = patch_store.threads if patch_store is not None else None
    plan = make_plan(colour, mask, settings, solver.device, grid, solve, bf16=solver.bf16,
                     threads=recorded or solver.threads)  # a resumed job keeps its count
    if patch_store is not None and recorded is None and plan.threads:
        patch_store.threads = plan.threads
    size = plan.batch_size  # the fixed slices (a CUDA out-of-memory splits a slice, never moves it)
    batches, schedules = slice_batches(grid, mask, solve, plan, size)
    if on_plan:
        on_plan(plan)
    if scope == "mask":  # only masked pixels are blended in: the rest stays as given
        restored, spread = colour.copy(), np.zeros((height, width, 1), dtype=np.float32)
        assembler = MaskBlender(grid, solve, mask, (restored, spread))
    else:
        restored = np.empty((height, width, 3), dtype=np.float32)
        spread = np.empty((height, width, 1), dtype=np.float32)
        assembler = Assembler(grid, (restored, spread))
    runs = [(len(batch), steps_per_run(schedule)) for batch, schedule in zip(batches, schedules)]
    steps = _StepReporter(on_step, plan, len(solve), runs, started) if on_step is not None else None
    pending: deque = deque()  # (batch, its stored patches, Submitted or None when all stored), oldest first
    done = ahead = 0
    try:
        for _ in batches:
            if should_stop is not None and should_stop():
                raise RestoreCancelled(done, len(solve))
            while ahead < len(batches) and len(pending) < solver.lookahead:
                batch, schedule = batches[ahead], schedules[ahead]
                stored = {t.index: patch_store.get(t.index) for t in batch} if patch_store is not None else {}
                submitted = None
                # a batch partly stored (a kill mid-way) is solved whole: same companions
                if any(stored.get(t.index) is None for t in batch):
                    submitted = solver.submit(functools.partial(batch_work, colour, mask, grid, batch, plan, schedule),
                                              wait=not pending, should_stop=should_stop)
                    if submitted is None:
                        break
                pending.append((batch, stored, submitted))
                ahead += 1
            batch, stored, submitted = pending.popleft()
            if steps is not None:
                steps.start_batch(done, len(batch) if submitted else 0)
            result = submitted.result(steps, should_stop) if submitted else None
            for i, tile in enumerate(batch):
                from_store = stored.get(tile.index) is not None
                patch, stats = (stored[tile.index], {}) if from_store else (result.patches[i], result.stats[i])
                if patch_store is not None and not from_store:
                    patch_store.put(tile.index, patch)
                assembler.add(tile, patch)
                done += 1
                if on_progress is not None:
                    on_progress(_progress(tile, patch, done, len(solve), from_store, stats))
            if steps is not None:
                steps.end_batch(done)
    except SolveStopped:
        raise RestoreCancelled(done, len(solve)) from None
    finally:
        for _, _, submitted in pending:
            if submitted is not None:
                submitted.cancel()
    if scope == "mask":
        assembler.finish()
    # in place from here: a 50-megapixel scan's colour is 600 MB a copy
    np.clip(restored, 0.0, 1.0, out=restored)
    spread = spread[:, :, 0]
    if out_channels == 1:
        restored = restored.mean(axis=2, keepdims=True)
    if alpha is not None:
        restored = np.concatenate([restored, alpha[:, :, None]], axis=2)
    restored = restored if image.ndim == 3 else restored[:, :, 0]
    if scope == "mask":  # every pixel outside the mask exactly as given, alpha included
        keep = ~mask
        np.copyto(restored, image, where=keep if restored.ndim == 2 else keep[:, :, None])
        spread[keep] = 0.0
    return (restored, spread) if with_spread else restored


class LocalSolver:
    """Solves each batch in this process when its result is asked for: one at a time, with
    progress after every optimiser step and stops between two of them."""

    lookahead = 1

    def __init__(self, settings: RestoreSettings, model: Glow | None = None):
        self.device = resolve_device(settings.device)
        model = model if model is not None else get_model(settings, self.device)
        self.model = model.to(self.device).eval()
        self.bf16 = bf16_supported(self.device)
        self.patch_size = self.model.config.patch_size
        self.model_path = Path(getattr(model, "source_path", None) or default_model_path())
        self.model_info = getattr(model, "info", {})
        self.threads = torch.get_num_threads()  # of the thread that restores (a GUI worker sets its own)

    def submit(self, make_work, wait: bool, should_stop=None) -> Submitted:
        return _Deferred(self, make_work())  # one batch at a time: asked only when none is in flight


@dataclass
class _Deferred:
    solver: LocalSolver
    work: BatchWork

    def result(self, steps, should_stop) -> BatchResult:
        return solve_work(self.solver.model, self.work, self.solver.device, steps, should_stop)

    def cancel(self) -> None:
        pass  # nothing was started


def _progress(window: Window, patch, done, total, from_store, stats) -> PatchProgress:
    y0, x0, y1, x1 = window.box
    pixels = patch[y0 - window.top : y1 - window.top, x0 - window.left : x1 - window.left, :3]
    return PatchProgress(window.index, total, done, window.box, pixels, from_store, stats)


class _StepReporter:
    """Turns the solver's step counts into :class:`StepProgress` with a measured ETA:
    seconds per step (over the last ``ETA_WINDOW_S``, after ``ETA_WARMUP_STEPS``, batch set-up
    and store writes included) x steps left (the batch in work, then its schedule's steps per
    chunk of every batch still to come)."""

    def __init__(self, on_step, plan: Plan, total: int, runs: list[tuple[int, int]], started: float,
                 clock=time.monotonic):
        """``runs``: (tiles, steps of one run of its schedule) per slice, in order."""
        self.on_step, self.plan, self.total = on_step, plan, total
        self.runs = runs
        self.slice = -1  # the slice in work
        self.per_run = runs[0][1] if runs else 0
        self.clock, self.started = clock, started
        self.steps = 0  # optimiser steps computed by this call
        self.samples: deque = deque()  # (time, steps) after the warm-up
        self.high = 0.0  # the most done ever reported: progress never goes back
        self.patch_rate: float | None = None
        self.base, self.todo = 0.0, 0
        self.offset = self.chunk = self.chunk_done = self.chunk_total = 0

    def start_batch(self, base: int, todo: int) -> None:
        """The next slice begins: ``base`` tiles done before it, ``todo`` of its tiles to solve here."""
        self.base, self.todo = float(base), todo
        self.slice += 1
        self.per_run = self.runs[self.slice][1]
        self.offset = self.chunk = self.chunk_done = self.chunk_total = 0
        self._emit()

    def for_chunk(self, offset: int, count: int):
        """The solver's ``on_step`` for ``count`` tiles starting at ``offset`` of the batch."""
        self.offset, self.chunk, self.chunk_done, self.chunk_total = offset, count, 0, self.per_run

        def on_step(steps_done: int, steps_total: int) -> None:
            now = self.clock()
            self.steps += 1
            self.chunk_done, self.chunk_total = steps_done, steps_total
            if self.steps >= ETA_WARMUP_STEPS:
                self._sample(now)
            self._emit(now)

        return on_step

    def solved_elsewhere(self) -> None:
        """The batch in work came back whole from another process: its steps count at once, and the
        speed is measured from the start, since workers solve batches side by side."""
        now = self.clock()
        if not self.samples:
            self.samples.append((self.started, self.steps))
        batch_steps = math.ceil(self.todo / max(1, self.plan.batch_size)) * self.per_run
        self.steps += batch_steps
        self._sample(now)
        per_step = self._seconds_per_step(now)
        if per_step and batch_steps:
            self.patch_rate = self.todo / batch_steps / per_step

    def _sample(self, now: float) -> None:
        self.samples.append((now, self.steps))
        while len(self.samples) > 2 and self.samples[1][0] <= now - ETA_WINDOW_S \
                and self.steps - self.samples[1][1] >= ETA_MIN_STEPS:
            self.samples.popleft()

    def end_batch(self, done: int) -> None:
        self.base, self.todo = float(done), 0
        self.offset = self.chunk = self.chunk_done = self.chunk_total = 0
        self._emit()

    def _seconds_per_step(self, now: float) -> float | None:
        if not self.samples or self.steps - self.samples[0][1] < ETA_MIN_STEPS:
            return None
        return (now - self.samples[0][0]) / (self.steps - self.samples[0][1])

    def _steps_left(self) -> int:
        chunks = lambda n: math.ceil(n / max(1, self.plan.batch_size))  # noqa: E731 (OOM may shrink it)
        left = self.chunk_total - self.chunk_done if self.chunk else 0
        left += chunks(self.todo - self.offset - self.chunk) * self.per_run
        return left + sum(chunks(tiles) * per_run for tiles, per_run in self.runs[self.slice + 1 :])

    def _emit(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        fraction = self.chunk_done / self.chunk_total if self.chunk_total else 0.0
        self.high = max(self.high, min(float(self.total), self.base + self.offset + self.chunk * fraction))
        per_step = self._seconds_per_step(now)
        eta = None
        if per_step is not None:
            eta = per_step * self._steps_left()
            if self.chunk and self.chunk_total:
                self.patch_rate = self.chunk / self.chunk_total / per_step if per_step > 0 else None
        if self.high >= self.total:
            eta = 0.0
        self.on_step(StepProgress(self.high, self.total, now - self.started, eta, self.patch_rate,
                                  self.chunk_done, self.chunk_total))


def solve_work(model, work: BatchWork, device, steps: _StepReporter | None = None, should_stop=None,
               offset: int = 0) -> BatchResult:
    """Restore one batch; the same call here and on a cluster worker. A CUDA out-of-memory halves
    the batch and goes on."""
    try:
        on_step = steps.for_chunk(offset, len(work)) if steps is not None else None
        with cpu_threads(work.plan.threads if device.type == "cpu" else 0):
            return _solve_chunk(model, work, device, on_step, should_stop)
    except torch.cuda.OutOfMemoryError:
        if len(work) == 1:
            raise
        torch.cuda.empty_cache()
        half = len(work) // 2
        work.plan.batch_size = max(1, half)
        first, second = work.split(half)
        left = solve_work(model, first, device, steps, should_stop, offset)
        right = solve_work(model, second, device, steps, should_stop, offset + half)
        return BatchResult(np.concatenate([left.patches, right.patches]), left.stats + right.stats)


def batch_work(colour, mask, grid: TileGrid, tiles: list[Window], plan: Plan, schedule: dict | None = None) -> BatchWork:
    """The windows of ``tiles`` under every window shift of the plan's views, to be solved with
    ``schedule`` (default: the plan's)."""
    shifts = dict.fromkeys(view.shift for view in views_for(plan.schedule, grid.margin))
    windows = {shift: extract_windows(colour, mask, grid, [shifted_tile(t, shift) for t in tiles]) for shift in shifts}
    return BatchWork(plan, grid.margin, windows, plan.schedule if schedule is None else schedule)


def extract_windows(colour, mask, grid: TileGrid, tiles: list[Window]) -> tuple[np.ndarray, np.ndarray]:
    """The tiles' degraded windows (NxPxPxC) and their damaged pixels (NxPxP bool)."""
    patches = np.stack([extract_patch(colour, grid, t) for t in tiles])
    damaged = (np.stack([extract_patch(mask, grid, t) for t in tiles]) if mask is not None
               else np.zeros(patches.shape[:3], bool))
    return patches, damaged


def start_points(patches: np.ndarray, damaged: np.ndarray) -> list[np.ndarray]:
    """Where the MAP search of each window starts (holes filled, see prefill)."""
    return [start_point(patch, hole) for patch, hole in zip(patches, damaged)]


def to_batch(arrays, device) -> torch.Tensor:
    """HxWxC arrays (or HxW masks) -> an NCHW float tensor on ``device``."""
    stacked = torch.from_numpy(np.stack(arrays))
    stacked = stacked[:, :, :, None] if stacked.ndim == 3 else stacked
    return stacked.permute(0, 3, 1, 2).contiguous().float().to(device)


def _solve_chunk(model, work: BatchWork, device, on_step=None, should_stop=None) -> BatchResult:
    plan = work.plan
    schedule = work.schedule
    views = views_for(schedule, work.margin)
    inputs = {}  # per window shift: mirrored views share one extraction, hole fill and blur
    for shift, (patches, damaged) in work.windows.items():
        inputs[shift] = (to_batch(patches, device) - 0.5, to_batch(~damaged, device),
                         to_batch(start_points(patches, damaged), device) - 0.5)
    x_hat, valid_t, start = ([to_view(inputs[view.shift][k], view) for view in views] for k in range(3))
    result = solve_batch(
        model,
        torch.cat(x_hat),
        torch.cat(valid_t),
        torch.cat(start),
        torch.full((len(work) * len(views),), plan.lam, device=device),
        schedule["stages"],
        lr=schedule["lr"],
        fp32_tail=schedule["fp32_tail"],
        autocast_dtype=torch.bfloat16 if plan.mixed_precision else None,
        on_step=on_step,
        should_stop=should_stop,
    )
    n = len(work)
    x, spread = average_views(list(result.x.split(n)), views)
    result.loss, result.retries, result.failed = result.loss[:n], result.retries.view(-1, n).sum(0), result.failed.view(-1, n).any(0)
    if plan.paste_known:
        x = torch.where(valid_t[0].bool(), x_hat[0], x)
        spread = torch.where(valid_t[0].bool(), torch.zeros_like(spread), spread)
    restored = torch.cat([(x + 0.5).clamp(0, 1), spread], dim=1).permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)
    stats = [{"loss": float(result.loss[i]), "retries": int(result.retries[i]), "failed": bool(result.failed[i])}
             for i in range(n)]
    return BatchResult(restored, stats)
