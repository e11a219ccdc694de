"""The standard degradations and the benchmark metrics: deterministic, at the stated strength."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import metrics
from restorer_app.restore import degradations as deg


@pytest.fixture
def smooth_image() -> np.ndarray:
    """A mid-grey gradient: no clipping at 0 or 1, so the added noise is measured unbiased."""
    y, x = np.mgrid[0:96, 0:128].astype(np.float32)
    img = np.stack([0.3 + 0.4 * x / 127, 0.3 + 0.4 * y / 95, np.full_like(x, 0.5)], axis=2)
    return np.round(img * 255) / 255


@pytest.mark.parametrize("name", sorted(deg.DEGRADATIONS))
def test_every_degradation_runs_and_is_deterministic(smooth_image, name):
    out1, mask1 = deg.degrade(smooth_image, name, rng=7)
    out2, mask2 = deg.degrade(smooth_image, name, rng=np.random.default_rng(7))
    assert out1.dtype == np.float32 and out1.shape == smooth_image.shape
    assert 0.0 <= out1.min() and out1.max() <= 1.0
    assert np.array_equal(out1, out2)
    info = deg.DEGRADATIONS[name]
    assert (mask1 is None) == (not (info["holes"] or info["scratches"]))
    if mask1 is not None:
        assert np.array_equal(mask1, mask2)
    if info["holes"]:
        assert np.all(out1[mask1] == 0.0)
    assert not np.array_equal(out1, smooth_image)


def test_different_seeds_differ(smooth_image):
    a, _ = deg.degrade(smooth_image, "noise25", rng=1)
    b, _ = deg.degrade(smooth_image, "noise25", rng=2)
    assert not np.array_equal(a, b)


def test_unknown_name_is_rejected(smooth_image):
    with pytest.raises(ValueError, match="unknown degradation"):
        deg.degrade(smooth_image, "blur3", rng=0)


@pytest.mark.parametrize("sigma", [15, 25, 50])
def test_noise_std_matches_sigma_and_is_8bit(smooth_image, sigma):
    noisy = deg.add_gaussian_noise(smooth_image, sigma, rng=0)
    measured = float(np.std(noisy - smooth_image)) * 255
    # sigma 50 clips a little at 0 and 1 around this mid-grey image
    assert measured == pytest.approx(sigma, rel=0.05 if sigma < 50 else 0.1)
    assert np.allclose(noisy * 255, np.round(noisy * 255), atol=1e-3)


def test_jpeg_changes_image_within_range_and_lower_quality_is_worse():
    rng = np.random.default_rng(0)
    img = rng.random((64, 64, 3), dtype=np.float32)
    q10, q40 = deg.jpeg_compress(img, 10), deg.jpeg_compress(img, 40)
    assert q10.shape == img.shape and q10.dtype == np.float32
    assert 0.0 <= q10.min() and q10.max() <= 1.0
    assert metrics.psnr(img, q10) < metrics.psnr(img, q40) < 40


def test_jpeg_keeps_greyscale_shape():
    img = np.full((32, 32, 1), 0.5, dtype=np.float32)
    assert deg.jpeg_compress(img, 20).shape == (32, 32, 1)


def test_mask_coverage_and_square_size():
    mask = deg.random_square_mask(200, 300, rng=3)
    assert mask.shape == (200, 300) and mask.dtype == bool
    assert 0.10 <= mask.mean() < 0.10 + 100 / (200 * 300)  # stops at the first square past 10 %
    single = deg.random_square_mask(50, 50, coverage=1e-6, rng=5)
    ys, xs = np.nonzero(single)
    assert single.sum() == 100 and np.ptp(ys) == 9 and np.ptp(xs) == 9


def test_apply_mask_hides_damaged_pixels_only(smooth_image):
    mask = np.zeros(smooth_image.shape[:2], dtype=bool)
    mask[10:20, 30:40] = True
    out = deg.apply_mask(smooth_image, mask, fill=0.25)
    assert np.all(out[mask] == 0.25)
    assert np.array_equal(out[~mask], smooth_image[~mask])


def test_psnr_values():
    img = np.full((16, 16, 3), 0.5, dtype=np.float32)
    assert metrics.psnr(img, img) == math.inf
    assert metrics.psnr(img, img + 0.1) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01


def test_masked_psnr_counts_damaged_pixels_only():
    ref = np.zeros((16, 16, 3), dtype=np.float32)
    test = ref.copy()
    mask = np.zeros((16, 16), dtype=bool)
    mask[:4] = True
    test[mask] = 0.1
    test[~mask] = 0.5  # error outside the mask must not count
    assert metrics.masked_psnr(ref, test, mask) == pytest.approx(20.0, abs=1e-4)
    assert math.isnan(metrics.masked_psnr(ref, test, np.zeros_like(mask)))


def test_ssim_and_ms_ssim():
    rng = np.random.default_rng(0)
    img = rng.random((32, 32, 3), dtype=np.float32)
    noisy = deg.add_gaussian_noise(img, 25, rng=1)
    assert metrics.ssim(img, img) == pytest.approx(1.0)
    assert metrics.ssim(img, noisy) < 0.95
    assert math.isnan(metrics.ms_ssim(img, img))  # too small for 5 scales
    big = rng.random((170, 170, 3), dtype=np.float32)
    assert metrics.ms_ssim(big, big) == pytest.approx(1.0, abs=1e-4)


def test_scratches_are_seeded_and_match_degrade(smooth_image):
    out1, mask1 = deg.add_scratches(smooth_image, rng=11)
    out2, mask2 = deg.degrade(smooth_image, "scratches", rng=np.random.default_rng(11))
    assert np.array_equal(out1, out2) and np.array_equal(mask1, mask2)
    other, _ = deg.add_scratches(smooth_image, rng=12)
    assert not np.array_equal(out1, other)
    assert mask1.dtype == bool and mask1.shape == smooth_image.shape[:2]


@pytest.mark.parametrize("seed", range(4))
def test_scratches_cover_one_to_three_percent(seed):
    y, x = np.mgrid[0:200, 0:300].astype(np.float32)
    grey = np.repeat((0.35 + 0.3 * x / 299)[:, :, None], 3, axis=2)
    _, mask = deg.add_scratches(grey, rng=seed)
    assert 0.01 <= mask.mean() <= 0.03


def test_scratch_mask_marks_exactly_the_visibly_changed_pixels(smooth_image):
    out, mask = deg.add_scratches(smooth_image, rng=5)
    grainy = deg.add_gaussian_noise(smooth_image, deg.SCRATCH_GRAIN_SIGMA, rng=5)  # the same first draw
    change = np.abs(out - grainy).max(axis=2)
    assert np.all(change[mask] >= 0.1) and np.all(change[~mask] < 0.1)
    assert np.allclose(out * 255, np.round(out * 255), atol=1e-3)  # still 8-bit levels


def test_scratches_are_light_and_dark_and_neutral(smooth_image):
    out, mask = deg.add_scratches(smooth_image, rng=2)
    damaged = out[mask]
    light = damaged.min(axis=1) >= 0.75
    dark = damaged.max(axis=1) <= 0.25
    assert np.all(light | dark) and light.sum() > 20 and dark.sum() > 20
    assert np.ptp(damaged, axis=1).max() <= 0.2  # the same level in every channel, +- a little


def test_scratch_defects_reach_the_coverage_and_work_on_greyscale():
    mask = deg.scratch_mask(120, 90, rng=4, coverage=0.05)
    assert mask.dtype == bool and mask.shape == (120, 90) and mask.mean() >= 0.05
    assert np.array_equal(mask, deg.scratch_mask(120, 90, rng=4, coverage=0.05))
    grey = np.full((64, 80, 1), 0.5, dtype=np.float32)
    out, grey_mask = deg.add_scratches(grey, rng=1)
    assert out.shape == grey.shape and grey_mask.any()


@pytest.mark.parametrize("share", [0.0, 0.2, 1.0])
def test_defects_take_the_other_polarity_than_the_picture_but_for_a_share(share):
    """Debris is light over dark picture and dark over light picture, except the given share
    (the damage network is trained with more of those than the benchmark paints)."""
    labels = np.arange(2000, dtype=np.int32).reshape(40, 50)
    picture = np.where(labels % 2 == 0, 0.2, 0.8).astype(np.float32)[:, :, None]
    levels = deg.defect_levels(labels, picture, np.random.default_rng(0), same_as_picture=share)[1:]
    light = levels > 0.5
    under_dark = (np.arange(1, 2000) % 2 == 0)
    same = np.mean(light == ~under_dark)
    assert same == pytest.approx(share, abs=0.04)
