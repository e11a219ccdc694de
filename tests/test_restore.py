"""The restoration engine: tiles, batching independence, stop/continue, divergence guard."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restorer_app.restore.pipeline import RestoreCancelled, restore_image
from restorer_app.restore.settings import PRESETS, RestoreSettings
from restorer_app.restore.solver import solve_batch
from restorer_app.restore.strength import estimate_noise_sigma
from restorer_app.restore.tiling import Assembler, extract_patch, plan_tiles
from tests.conftest import DictStore, make_tiny_flow, synthetic_photo

FAST = RestoreSettings(preset="fast", device="cpu", mixed_precision=False)


@pytest.mark.parametrize("shape", [(1, 1), (5, 300), (300, 7), (64, 64), (113, 57), (200, 130), (10, 10)])
def test_identity_tiles_reassemble_bit_for_bit(shape):
    image = np.random.default_rng(0).random((*shape, 3)).astype(np.float32)
    grid = plan_tiles(*shape)
    output = np.full_like(image, np.nan)
    assembler = Assembler(grid, output)
    tiles = list(grid.tiles())
    for i in np.random.default_rng(1).permutation(len(tiles)):
        assembler.add(tiles[i], extract_patch(image, grid, tiles[i]))
    assert assembler.done
    assert np.array_equal(output, image)


def test_tiles_reassemble_into_split_outputs():
    # the pipeline keeps colour and spread in separate arrays: each takes its channels in order
    image = np.random.default_rng(2).random((130, 75, 4)).astype(np.float32)
    grid = plan_tiles(130, 75)
    colour, spread = np.full((130, 75, 3), np.nan, np.float32), np.full((130, 75, 1), np.nan, np.float32)
    assembler = Assembler(grid, (colour, spread))
    for tile in grid.tiles():
        assembler.add(tile, extract_patch(image, grid, tile))
    assert np.array_equal(colour, image[:, :, :3]) and np.array_equal(spread, image[:, :, 3:])


def test_tiles_overlap_by_twice_the_margin():
    grid = plan_tiles(200, 200, patch=64, margin=4)
    a, b = list(grid.tiles())[:2]
    assert b.left - a.left == 56 and (a.left + 64) - b.left == 8


#: Tolerance for this test flow (patches in [-0.5, 0.5], fast schedule), alone against batched or
#: one thread against two: CPU convolution kernels differ by batch size and thread count (solver
#: docstring; the bundled 64x64 model drifts more, up to ~1e-2). Measured here on 22 inputs:
#: largest pixel 1.8e-3, mean 1.3e-5; patches that really interact (masks or a loss scale shared
#: across the batch) give largest 2e-2 to 0.7, mean 1e-3 to 2e-2.
COMPANION_MAX = 1 / 255  # one 8-bit level
COMPANION_MEAN = 5e-5


@pytest.fixture
def torch_threads():
    """Lets a test set torch's thread count; restores the caller's afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_patch_result_does_not_depend_on_batch_companions(torch_threads):
    model = make_tiny_flow()
    rng = torch.Generator().manual_seed(0)
    x_hat = torch.rand(5, 3, 16, 16, generator=rng) - 0.5
    valid = torch.ones(5, 1, 16, 16)
    valid[1, :, 4:9, 4:9] = 0
    lam = torch.full((5,), 200.0)
    stages = PRESETS["fast"]["stages"]

    def solve(rows):
        return solve_batch(model, x_hat[rows], valid[rows], x_hat[rows].clone(), lam[rows], stages).x

    def assert_close(a, b, what):
        diff = (a - b).abs()
        assert diff.max() < COMPANION_MAX and diff.mean() < COMPANION_MEAN, (what, diff.max().item(), diff.mean().item())

    together = {}
    for threads in (1, 2):
        torch_threads(threads)
        together[threads] = solve(slice(0, 5))
        # what resume relies on: the same batch on the same thread count gives the same bits
        assert torch.equal(solve(slice(0, 5)), together[threads]), threads
    torch_threads(1)
    alone = torch.cat([solve(slice(i, i + 1)) for i in range(5)])
    assert_close(alone, together[1], "alone vs batch of 5, one thread")
    assert_close(alone, together[2], "alone on one thread vs batch of 5 on two")
    assert_close(together[1], together[2], "batch of 5, one thread vs two")


def test_non_finite_patch_is_retried_and_never_returns_nan(monkeypatch):
    model = make_tiny_flow()
    x_hat = torch.rand(3, 3, 16, 16) - 0.5
    lam = torch.full((3,), 100.0)
    lam[1] = float("inf")  # patch 1 diverges on every attempt
    result = solve_batch(model, x_hat, torch.ones(3, 1, 16, 16), x_hat.clone(), lam, [(1, 3), (3, 3)], max_retries=2)
    assert torch.isfinite(result.x).all()
    assert result.failed.tolist() == [False, True, False]
    assert result.retries.tolist() == [0, 2, 0]
    assert torch.equal(result.x[1], x_hat[1])  # fell back to its start point


def test_restore_image_shapes_and_channels(tiny_flow):
    photo = synthetic_photo(40, 50)
    grey = photo.mean(axis=2)
    rgba = np.concatenate([photo, np.linspace(0, 1, 40 * 50, dtype=np.float32).reshape(40, 50, 1)], axis=2)
    out_rgb = restore_image(photo, None, FAST, model=tiny_flow)
    out_grey = restore_image(grey, None, FAST, model=tiny_flow)
    out_rgba = restore_image(rgba, None, FAST, model=tiny_flow)
    assert out_rgb.shape == photo.shape and out_rgb.dtype == np.float32
    assert out_grey.shape == grey.shape
    assert out_rgba.shape == rgba.shape and np.array_equal(out_rgba[..., 3], rgba[..., 3])
    assert np.isfinite(out_rgb).all() and out_rgb.min() >= 0 and out_rgb.max() <= 1


def test_same_input_and_seed_give_the_same_output(tiny_flow):
    photo = synthetic_photo(30, 30)
    assert np.array_equal(restore_image(photo, None, FAST, model=tiny_flow), restore_image(photo, None, FAST, model=tiny_flow))


def _stop_in_the_third_batch(store: DictStore, steps: list):
    """A stop two optimiser steps into the third batch of three patches: two batches stored, one dropped."""
    return lambda: store.puts >= 6 and steps[-1].batch_steps_done >= 2


def test_stop_and_continue_gives_the_identical_image(thread_count):
    model = make_tiny_flow()
    photo = synthetic_photo(40, 40, seed=2)
    mask = np.zeros(photo.shape[:2], bool)
    mask[5:15, 20:30] = True
    settings = RestoreSettings(preset="fast", device="cpu", batch_size=3, mixed_precision=False)
    uninterrupted = restore_image(photo, mask, settings, model=model)

    store, steps = DictStore(), []
    with pytest.raises(RestoreCancelled):
        restore_image(photo, mask, settings, model=model, patch_store=store, on_step=steps.append,
                      should_stop=_stop_in_the_third_batch(store, steps))
    assert store.puts == 6 and store.threads == thread_count
    seen = []
    resumed = restore_image(photo, mask, settings, model=model, patch_store=store, on_progress=seen.append)
    assert store.puts == len(seen)  # only the missing patches were computed
    assert sum(p.from_store for p in seen) == 6
    assert np.array_equal(resumed, uninterrupted)


def test_a_job_resumed_with_another_thread_count_finishes_with_the_one_it_started_with(monkeypatch):
    """The GUI's thread preference changed, or a job paused in the app is resumed by ``restorer
    queue run``: the remaining batches are still solved with the job's first count, so the image
    is the one an uninterrupted run gives (with another count a CPU kernel sums in another order)."""
    from restorer_app.restore import pipeline

    model = make_tiny_flow()
    photo = synthetic_photo(40, 40, seed=4)
    settings = RestoreSettings(preset="fast", device="cpu", batch_size=3, mixed_precision=False)
    solved_with = []
    solve_chunk = pipeline._solve_chunk

    def spy(*args, **kwargs):
        solved_with.append(torch.get_num_threads())
        return solve_chunk(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_solve_chunk", spy)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        uninterrupted = restore_image(photo, None, settings, model=model)
        store, steps = DictStore(), []
        with pytest.raises(RestoreCancelled):
            restore_image(photo, None, settings, model=model, patch_store=store, on_step=steps.append,
                          should_stop=_stop_in_the_third_batch(store, steps))
        torch.set_num_threads(2)
        solved_with.clear()
        resumed = restore_image(photo, None, settings, model=model, patch_store=store)
        assert torch.get_num_threads() == 2  # given back after each batch
    finally:
        torch.set_num_threads(threads)
    assert solved_with and set(solved_with) == {1}
    assert np.array_equal(resumed, uninterrupted)


def test_a_batch_stored_in_part_is_solved_whole_with_the_same_companions(thread_count):
    """A kill between two patch writes leaves part of a batch stored; the resume must not solve
    the rest in a smaller batch (other CPU kernels, other bits)."""
    model = make_tiny_flow()
    photo = synthetic_photo(40, 40, seed=5)
    settings = RestoreSettings(preset="fast", device="cpu", batch_size=4, mixed_precision=False)
    full = DictStore()
    uninterrupted = restore_image(photo, None, settings, model=model, patch_store=full)
    partial = DictStore()
    for index in (0, 1, 2, 3, 4, 5):  # the first batch whole, two patches of the second
        partial.put(index, full.get(index))
    partial.puts = 0
    resumed = restore_image(photo, None, settings, model=model, patch_store=partial)
    assert np.array_equal(resumed, uninterrupted)
    assert partial.puts == len(full.patches) - 6  # nothing stored is written again


def test_progress_reports_every_patch_with_its_box(tiny_flow):
    photo = synthetic_photo(30, 45)
    reports = []
    restore_image(photo, None, FAST, model=tiny_flow, on_progress=reports.append)
    grid = plan_tiles(30, 45, patch=16, margin=4)
    assert [r.index for r in reports] == list(range(len(grid)))
    assert reports[-1].done == reports[-1].total == len(grid)
    covered = np.zeros((30, 45), int)
    for r in reports:
        y0, x0, y1, x1 = r.box
        covered[y0:y1, x0:x1] += 1
        assert r.pixels.shape == (y1 - y0, x1 - x0, 3)
    assert (covered == 1).all()


def test_mask_of_wrong_size_is_refused(tiny_flow):
    with pytest.raises(ValueError, match="does not match"):
        restore_image(synthetic_photo(20, 20), np.zeros((10, 10), bool), FAST, model=tiny_flow)


def test_noise_estimate_tracks_the_true_sigma():
    photo = synthetic_photo(256, 256)
    for sigma in (5, 15, 25, 50):
        noisy = photo + np.random.default_rng(sigma).normal(0, sigma / 255, photo.shape).astype(np.float32)
        assert estimate_noise_sigma(noisy) * 255 == pytest.approx(sigma, rel=0.2)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        RestoreSettings(preset="ultra")
    with pytest.raises(ValueError):
        RestoreSettings(strength="strong")
    with pytest.raises(ValueError):
        RestoreSettings(strength=-1.0)


def test_blockiness_detects_jpeg_and_sets_a_softer_lambda():
    from restorer_app.restore.degradations import degrade
    from restorer_app.restore.strength import auto_lambda, estimate_blockiness

    photo = synthetic_photo(128, 128, seed=4)
    compressed, _ = degrade(photo, "jpeg20", 0)
    noisy, _ = degrade(photo, "noise15", 0)
    assert abs(estimate_blockiness(noisy)) * 255 < 1.0
    assert estimate_blockiness(compressed) * 255 > 1.5
    lam_clean, _ = auto_lambda(photo)
    lam_jpeg, sigma_jpeg = auto_lambda(compressed)
    lam_noise, sigma_noise = auto_lambda(noisy)
    assert lam_jpeg < lam_clean and sigma_jpeg * 255 > 5
    assert sigma_noise * 255 == pytest.approx(15, rel=0.25) and lam_noise < lam_clean


def test_barely_damaged_tiles_take_the_light_schedule(tiny_flow):
    # standard's holes schedule has a light variant: a window less than `below` damaged takes it
    from restorer_app.restore.pipeline import light_schedule, steps_per_run

    photo = synthetic_photo(40, 40, seed=7)
    mask = np.zeros((40, 40), bool)
    mask[8, 8] = True  # a speck: its window is barely damaged
    mask[22:38, 22:38] = True  # a hole: its windows are not
    settings = RestoreSettings(preset="standard", device="cpu", mixed_precision=False, batch_size=2)
    plans, runs = [], set()
    restored = restore_image(photo, mask, settings, model=tiny_flow, on_plan=plans.append,
                             on_step=lambda p: runs.add(p.batch_steps_total))
    plan = plans[0]
    assert plan.schedule["stages"] == PRESETS["standard"]["holes_only"]["stages"]
    assert 0 < plan.light_patches < plan.patches
    light = light_schedule(plan.schedule)
    assert light["flips"] == plan.schedule["flips"] and steps_per_run(light) < steps_per_run(plan.schedule)
    assert {steps_per_run(light), steps_per_run(plan.schedule)} <= runs
    assert np.array_equal(restored[~mask], photo[~mask]) and np.isfinite(restored).all()
    fast = RestoreSettings(preset="fast", device="cpu", mixed_precision=False)
    restore_image(photo, mask, fast, model=tiny_flow, on_plan=plans.append)
    assert plans[-1].light_patches == 0  # no light variant: every tile takes the one schedule


def test_blockiness_does_not_depend_on_its_bands(monkeypatch):
    # measured in bands of rows to keep a large scan's memory flat: bands must not change the figure
    from restorer_app.restore import strength
    from restorer_app.restore.degradations import degrade

    compressed, _ = degrade(synthetic_photo(100, 90, seed=6), "jpeg20", 0)
    whole = strength.estimate_blockiness(compressed)
    monkeypatch.setattr(strength, "BLOCKINESS_BAND_ROWS", 24)
    assert strength.estimate_blockiness(compressed) == pytest.approx(whole, rel=1e-12, abs=1e-15)
    assert strength.estimate_blockiness(compressed[:, :, 0]) != pytest.approx(0.0)


def test_best_preset_averages_the_mirrored_restorations(tiny_flow, monkeypatch):
    # the single view must be compared with its own schedule: `fast` averages mirrors as well
    monkeypatch.setitem(PRESETS, "single", dict(PRESETS["best"], flips=1))
    photo = synthetic_photo(24, 24, seed=5)
    best = RestoreSettings(preset="best", device="cpu", mixed_precision=False)
    single = RestoreSettings(preset="single", device="cpu", mixed_precision=False)
    plain = restore_image(photo, None, single, model=tiny_flow)
    mirrored = restore_image(photo[:, ::-1].copy(), None, single, model=tiny_flow)[:, ::-1]
    ensemble = restore_image(photo, None, best, model=tiny_flow)
    assert np.isfinite(ensemble).all()
    assert np.array_equal(ensemble, restore_image(photo, None, best, model=tiny_flow))
    assert not np.allclose(plain, mirrored, atol=1e-6)  # mirroring changes the solution ...
    assert np.abs(ensemble - plain).max() > 1e-6  # ... and the ensemble is not the plain one


def test_every_ensemble_view_maps_back_onto_its_tile(monkeypatch):
    """Solver returning its input: all 8 symmetries x 4 shifts must average back to the image."""
    from restorer_app.restore import pipeline
    from restorer_app.restore.solver import SolveResult

    def identity(model, x_hat, valid, start, lam, *args, **kwargs):
        n = x_hat.shape[0]
        return SolveResult(x_hat.clone(), torch.zeros(n), torch.zeros(n, dtype=torch.int64), torch.zeros(n, dtype=torch.bool))

    monkeypatch.setattr(pipeline, "solve_batch", identity)
    monkeypatch.setitem(PRESETS, "views", dict(PRESETS["fast"], flips=8, shifts=4))
    photo = synthetic_photo(150, 97)
    settings = RestoreSettings(preset="views", device="cpu", mixed_precision=False, strength=100.0)
    restored = restore_image(photo, None, settings, model=make_tiny_flow())
    np.testing.assert_allclose(restored, photo, atol=1e-6)


def test_best_takes_the_longer_schedule_only_for_clean_scans_with_holes():
    from restorer_app.restore.pipeline import make_plan

    clean = synthetic_photo(96, 96, seed=2)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 15 / 255, clean.shape), 0, 1).astype(np.float32)
    holes = np.zeros((96, 96), bool)
    holes[40:50, 40:50] = True
    best = RestoreSettings(preset="best", device="cpu")
    grid = plan_tiles(96, 96)
    plan = lambda image, mask: make_plan(image, mask, best, torch.device("cpu"), grid)  # noqa: E731
    assert plan(clean, holes).schedule["stages"] == PRESETS["best"]["holes_only"]["stages"]
    assert plan(clean, holes).schedule["flips"] == 4
    for image, mask in [(noisy, holes), (clean, None), (noisy, None)]:
        assert plan(image, mask).schedule["stages"] == PRESETS["best"]["stages"]
        assert "holes_only" not in plan(image, mask).schedule
