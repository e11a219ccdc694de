"""Windows that follow the damage: a speck costs one window, every damaged pixel lies well inside
one, large pieces keep the grid, and the blender gives back what the windows return."""

from __future__ import annotations

import numpy as np
import pytest

from restorer_app.restore.tiling import extract_patch, plan_tiles
from restorer_app.restore.windows import MASK_DILATION, MaskBlender, context, damage_windows, pending_cells


def _inside(window, grid, y, x, distance) -> bool:
    """Whether pixel (y, x) lies at least ``distance`` pixels inside the window (or the image edge)."""
    top, left = window.top, window.left
    rows_ok = (y - top >= distance or top <= 0) and (top + grid.patch - 1 - y >= distance or top + grid.patch >= grid.height)
    cols_ok = (x - left >= distance or left <= 0) and (left + grid.patch - 1 - x >= distance or left + grid.patch >= grid.width)
    return rows_ok and cols_ok


def test_a_speck_where_four_tiles_meet_costs_one_window():
    grid = plan_tiles(200, 200)  # 64-px windows, cores of 56
    mask = np.zeros((200, 200), bool)
    mask[54:59, 110:114] = True  # across the corner where four grid cores meet
    windows = damage_windows(grid, mask)
    assert len(windows) == 1
    window = windows[0]
    assert all(_inside(window, grid, y, x, context(grid) + MASK_DILATION) for y, x in zip(*np.nonzero(mask)))
    assert window.box == (52, 108, 61, 116)  # the grown speck: what the window answers for


def test_nearby_specks_share_a_window_and_distant_ones_do_not():
    grid = plan_tiles(300, 300)
    mask = np.zeros((300, 300), bool)
    mask[100, 100] = mask[120, 130] = True  # 30 px apart: one window holds both
    mask[250, 40] = True  # far away
    windows = damage_windows(grid, mask)
    assert len(windows) == 2
    assert [w.top for w in windows] == sorted(w.top for w in windows) and [w.index for w in windows] == [0, 1]


def test_large_thick_pieces_keep_the_grid_and_cover_the_specks_in_their_tiles():
    grid = plan_tiles(200, 200)
    mask = np.zeros((200, 200), bool)
    mask[20:40, 10:150] = True  # a tear: too large for one window, and thick
    mask[45, 60] = True  # a speck in the cores of the tear's tiles
    windows = damage_windows(grid, mask)
    assert {(w.top, w.left) for w in windows} == {(-4, -4), (-4, 52), (-4, 108)}  # the tear's tiles
    assert [w.box for w in windows] == [grid.core_box(t) for t in list(grid.tiles())[:3]]


def test_a_long_thin_scratch_is_solved_in_windows_along_it():
    grid = plan_tiles(200, 200)
    mask = np.zeros((200, 200), bool)
    rows = np.arange(10, 190)
    mask[rows, rows // 2 + 20] = True  # a thin diagonal scratch, 180 px long
    windows = damage_windows(grid, mask)
    assert len(windows) == 4  # the grid's tiles touching it: 8
    for y, x in zip(*np.nonzero(mask)):  # where it is cut, its grown pixels keep the context
        assert any(_inside(w, grid, y, x, context(grid)) for w in windows), (y, x)


@pytest.mark.parametrize("seed", range(4))
def test_every_damaged_pixel_lies_well_inside_a_window(seed):
    rng = np.random.default_rng(seed)
    height, width = rng.integers(40, 260, size=2)
    grid = plan_tiles(int(height), int(width))
    mask = rng.random((height, width)) < 0.002
    mask[rng.integers(height), :] |= rng.random() < 0.5  # sometimes a scratch across the scan
    windows = damage_windows(grid, mask)
    for y, x in zip(*np.nonzero(mask)):
        assert any(_inside(w, grid, y, x, grid.margin) for w in windows), (y, x)
    assert [w.index for w in windows] == list(range(len(windows)))
    assert [(w.top, w.left) for w in windows] == sorted((w.top, w.left) for w in windows)


def test_the_blender_gives_back_what_the_windows_return_and_touches_nothing_else():
    rng = np.random.default_rng(3)
    grid = plan_tiles(300, 170)
    mask = rng.random((300, 170)) < 0.003
    mask[150, 20:160] = True
    windows = damage_windows(grid, mask)
    image = rng.random((300, 170, 3)).astype(np.float32)
    out, spread = np.full_like(image, -1.0), np.full((300, 170, 1), -1.0, np.float32)
    blender = MaskBlender(grid, windows, mask, (out, spread))
    for window in reversed(windows):  # any order of arrival
        patch = extract_patch(image, grid, window)
        blender.add(window, np.concatenate([patch, np.full(patch.shape[:2] + (1,), 0.25, np.float32)], axis=2))
    blender.finish()
    assert np.array_equal(out[mask], image[mask]) and (spread[mask] == 0.25).all()
    assert (out[~mask] == -1.0).all() and (spread[~mask] == -1.0).all()


def test_the_blender_averages_overlapping_windows_by_their_ramps():
    grid = plan_tiles(120, 120)
    mask = np.ones((120, 120), bool)
    windows = damage_windows(grid, mask)  # the whole grid: one large piece
    out = np.zeros((120, 120, 1), np.float32)
    blender = MaskBlender(grid, windows, mask, (out,))
    for window in windows:
        blender.add(window, np.full((64, 64, 1), float(window.index), np.float32))
    blender.finish()
    assert out[10, 10, 0] == 0.0 and out[10, 100, 0] == 1.0  # cores: their own window alone
    between = out[10, 52:60, 0]  # the overlap of windows 0 and 1: the grid's ramp from one to the other
    assert np.array_equal(between, (np.arange(8) + 0.5) / 8)


def test_pending_cells_are_the_cells_under_the_boxes():
    grid = plan_tiles(200, 200)
    mask = np.zeros((200, 200), bool)
    mask[54:59, 110:114] = True
    cells = pending_cells(grid, damage_windows(grid, mask))
    assert cells.shape == (grid.rows, grid.cols) and set(zip(*np.nonzero(cells))) == {(0, 1), (0, 2), (1, 1), (1, 2)}


def test_a_job_paused_under_another_layout_does_not_reuse_its_patches(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from restorer_app.jobs import runner
    from restorer_app.restore.settings import RestoreSettings

    job = SimpleNamespace(input_path=str(tmp_path / "scan.png"), mask_path=None)
    key = runner._store_key(job, RestoreSettings(), None)
    monkeypatch.setattr(runner, "WINDOW_LAYOUT", "grid-tiles")
    assert runner._store_key(job, RestoreSettings(), None) != key


def test_a_repair_in_windows_resumes_to_the_identical_image(tiny_flow):
    from restorer_app.restore.pipeline import RestoreCancelled, restore_image
    from restorer_app.restore.settings import RestoreSettings
    from tests.conftest import DictStore, synthetic_photo

    photo = synthetic_photo(48, 48, seed=4)
    mask = np.zeros((48, 48), bool)
    mask[6, 6] = mask[7, 30] = mask[22, 12] = True  # specks: windows of their own
    mask[30:44, 28:44] = True  # a hole too large for one window: the grid's tiles
    windows = damage_windows(plan_tiles(48, 48, patch=16, margin=4), mask)
    assert {w.top % 8 for w in windows} != {4}  # centred windows beside grid tiles (tops -4, 4, 12, ...)
    settings = RestoreSettings(preset="fast", device="cpu", batch_size=2, mixed_precision=False)
    uninterrupted = restore_image(photo, mask, settings, model=tiny_flow)
    store = DictStore()
    with pytest.raises(RestoreCancelled):
        restore_image(photo, mask, settings, model=tiny_flow, patch_store=store, should_stop=lambda: store.puts >= 4)
    seen = []
    resumed = restore_image(photo, mask, settings, model=tiny_flow, patch_store=store, on_progress=seen.append)
    assert sum(p.from_store for p in seen) == 4 and len(seen) == len(windows)
    assert np.array_equal(resumed, uninterrupted) and np.array_equal(resumed[~mask], photo[~mask])
