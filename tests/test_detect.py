"""Automatic damage detection: finds dust and scratches, leaves grain, edges and texture alone."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from benchmarks.detection import tolerant_scores
from restorer_app.cli import main as cli_main
from restorer_app.restore.degradations import add_gaussian_noise, add_scratches
from restorer_app.imaging.io import read_image
from restorer_app.restore import detect
from restorer_app.restore.damage_finder import find_damage
from restorer_app.restore.detect import detect_damage, estimate_grain, repair_mask, tophat_baseline
from tests.conftest import synthetic_photo


def _gradient(h: int = 96, w: int = 128) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([0.3 + 0.3 * x / w, 0.35 + 0.2 * y / h, np.full_like(x, 0.45)], axis=2)


def _features(image: np.ndarray) -> list:
    """The detector's per-polarity contrasts of ``image``, as the band search computes them."""
    return [detect._contrasts(plane) for plane in detect._debris_planes(image)]


def _hand_damaged() -> tuple[np.ndarray, np.ndarray]:
    """A grainy gradient with two light and two dark specks and a light and a dark scratch."""
    image = add_gaussian_noise(_gradient(), 5, rng=0)
    truth = np.zeros(image.shape[:2], np.uint8)
    specks = [((20, 20), 2, 0.95), ((100, 70), 3, 0.05), ((60, 15), 1, 0.9), ((110, 30), 2, 0.1)]
    for centre, radius, value in specks:
        cv2.circle(truth, centre, radius, 1, -1)
        cv2.circle(image, centre, radius, (value,) * 3, -1)
    for points, value in [([(5, 80), (50, 60), (120, 75)], 0.92), ([(10, 5), (70, 40), (125, 20)], 0.08)]:
        curve = np.array(points, np.int32)
        cv2.polylines(truth, [curve], False, 1, thickness=1)
        cv2.polylines(image, [curve], False, (value,) * 3, thickness=1)
    return image, truth.astype(bool)


def test_finds_hand_drawn_specks_and_scratches():
    image, truth = _hand_damaged()
    scores = tolerant_scores(detect_damage(image), truth)
    assert scores["recall"] >= 0.9 and scores["precision"] >= 0.9, scores


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_finds_the_scratches_degradation_on_a_synthetic_photo(seed):
    damaged, truth = add_scratches(synthetic_photo(96, 128, seed), rng=seed)
    scores = tolerant_scores(detect_damage(damaged), truth)
    assert scores["f1"] >= 0.9, scores
    assert tolerant_scores(tophat_baseline(damaged), truth)["f1"] < scores["f1"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greyscale_scan_works_like_colour(seed):
    damaged, truth = add_scratches(synthetic_photo(96, 128, seed).mean(axis=2, keepdims=True), rng=seed)
    assert tolerant_scores(detect_damage(damaged), truth)["f1"] >= 0.9
    assert np.array_equal(detect_damage(damaged), detect_damage(damaged[:, :, 0]))


def test_alpha_is_ignored():
    damaged, _ = add_scratches(synthetic_photo(64, 80, 4), rng=4)
    alpha = np.random.default_rng(0).random((64, 80, 1), dtype=np.float32)
    assert np.array_equal(detect_damage(damaged), detect_damage(np.concatenate([damaged, alpha], axis=2)))


def test_large_images_are_searched_in_bands_with_the_same_result(monkeypatch):
    damaged, _ = add_scratches(synthetic_photo(200, 150, 7), rng=7)
    whole, whole_repair = detect_damage(damaged), repair_mask(damaged)
    monkeypatch.setattr(detect, "BAND_PIXELS", 150 * 40)  # bands of 32 rows
    assert np.array_equal(detect_damage(damaged), whole) and whole.any()
    assert np.array_equal(repair_mask(damaged), whole_repair)  # two readings per band, sharing its scores


def _patterns() -> dict[str, np.ndarray]:
    y, x = np.mgrid[0:128, 0:128].astype(np.float32)
    grey = {
        "checkerboard": np.where((y // 3 + x // 3) % 2 == 0, 0.1, 0.9),
        "thin stripes": np.where(x % 8 < 2, 0.95, 0.3),
        "halftone dots": np.where((x % 6 < 2) & (y % 6 < 2), 0.05, 0.9),
        "hard edge": np.where(x + 0.3 * y > 70, 0.95, 0.05),
        "fine sine texture": 0.5 + 0.45 * np.sin(x / 2.0) * np.cos(y / 3.0),
    }
    patterns = {name: np.repeat(p[:, :, None], 3, axis=2).astype(np.float32) for name, p in grey.items()}
    patterns["photo with discs and stripes"] = synthetic_photo(128, 128, 5)
    patterns["flat grey"] = np.full((128, 128, 3), 0.5, np.float32)
    return patterns


@pytest.mark.parametrize("name", list(_patterns()))
def test_grain_edges_and_texture_are_not_damage(name):
    grainy = add_gaussian_noise(_patterns()[name], 5, rng=1)
    assert detect_damage(grainy).mean() <= 0.002


def test_repair_mask_covers_the_suggested_one_and_the_parts_of_defects_it_drops():
    """Two touching specks of different levels fail the flatness test where their windows meet;
    the repair mask (``--mask auto``) takes those parts back, and leaves out the picture around
    them that the suggested mask's margin covers."""
    image = add_gaussian_noise(_gradient(), 5, rng=0)
    truth = np.zeros(image.shape[:2], np.uint8)
    for centre, radius, value in [((40, 40), 3, 0.98), ((45, 40), 2, 0.8), ((90, 60), 1, 0.97), ((93, 60), 1, 0.8)]:
        cv2.circle(truth, centre, radius, 1, -1)
        cv2.circle(image, centre, radius, (value,) * 3, -1)
    truth = truth.astype(bool)
    suggested, repair = detect_damage(image), repair_mask(image)
    assert repair.dtype == bool and repair.shape == truth.shape
    assert not (truth & suggested & ~repair).any()
    assert (truth & repair).sum() >= 0.75 * truth.sum() > (truth & suggested).sum()
    assert (repair & ~truth).sum() < (suggested & ~truth).sum()
    assert repair.sum() <= 1.5 * truth.sum()


def test_a_speck_on_a_scratch_is_found_whole_once_the_scratch_is_filled():
    """A speck of another level on a scratch is only partly found beside it (the windows holding
    both are not flat, the fill of the scratch takes the speck's level); searching again with
    what was found filled finds the rest, and nothing of the picture."""
    image = add_gaussian_noise(np.full((64, 64, 3), 0.5, np.float32), 5, rng=0)
    scratch, speck = np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.uint8)
    cv2.line(scratch, (5, 30), (60, 34), 1, 2)
    cv2.circle(speck, (30, 32), 3, 1, -1)
    image[scratch > 0], image[speck > 0] = 0.97, 0.8
    truth = (scratch | speck) > 0
    first = detect_damage(image, detect.REPAIR_MARGIN, detect.REPAIR._replace(peel=False))
    repair = repair_mask(image)
    assert (first & truth).sum() < truth.sum() == (repair & truth).sum()
    assert not (repair & ~truth).any()


def _scratch_into_light_texture() -> tuple[np.ndarray, np.ndarray]:
    """A grey scan: dark on the left, light grainy texture on the right, and one 2-px light
    scratch at a single level running across both."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (160, 160)).astype(np.float32), (0, 0), 1.2)
    image = np.full((160, 160), 0.25, np.float32)
    image[:, 80:] = 0.72 + 0.1 * texture[:, 80:] / texture.std()
    image = add_gaussian_noise(np.clip(image, 0, 1)[:, :, None], 5, rng=0)
    truth = np.zeros((160, 160), bool)
    truth[79:81, 10:150] = True
    image[truth] = 0.93
    return image, truth


def test_a_scratch_is_followed_at_its_level_into_light_texture():
    """Over light texture a scratch's contrast falls under the texture-raised bars, so only the
    part over the dark picture is found; its level, the same along its length, finds the rest."""
    image, truth = _scratch_into_light_texture()
    over_texture = truth.copy()
    over_texture[:, :80] = False
    before = detect_damage(image, detect.REPAIR_MARGIN, detect.REPAIR._replace(scratches=False))
    after = repair_mask(image)
    assert (before & over_texture).sum() < 0.5 * over_texture.sum()
    assert (after & over_texture).sum() >= 0.95 * over_texture.sum()
    assert not (before & ~after).any()
    beside = ~cv2.dilate(truth.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    assert (after & beside).sum() <= 0.15 * truth.sum()  # texture highlights at its level, touching it


def test_only_long_defects_grow_and_only_through_their_own_level():
    """A speck does not grow (highlights of the picture are often at its level); a scratch stops
    where a thin line of the picture at another level meets it."""
    image = add_gaussian_noise(np.full((96, 96, 3), 0.3, np.float32), 5, rng=1)
    mask = np.zeros((96, 96), bool)
    mask[40, 10:60] = True  # a found scratch, level 0.93
    mask[70:73, 70:73] = True  # a found speck, level 0.93
    image[40, 10:90] = 0.93  # the scratch runs on
    image[70:73, 70:76] = 0.93  # and so does the speck
    image[10:40, 30] = 0.8  # a picture line at another level meets the scratch
    grown = detect._continued_scratches(image, mask, _features(image))
    assert grown[40, 10:90].all() and grown[40].sum() == 80
    assert not grown[70:73, 73:76].any() and not grown[10:40, 30].any()


def test_a_scratch_found_in_a_piece_of_fifteen_pixels_is_followed():
    """Over a mesh of picture lines a scratch may be found only in short pieces (CBSD68's
    223061-grey); a piece spanning 15 px is followed at its level, one of a speck's size (12 px)
    is not."""
    image = add_gaussian_noise(np.full((96, 96, 3), 0.3, np.float32), 5, rng=1)
    mask = np.zeros((96, 96), bool)
    mask[40, 10:25] = True
    mask[70, 10:22] = True
    image[40, 10:90] = image[70, 10:90] = 0.93
    grown = detect._continued_scratches(image, mask, _features(image))
    assert grown[40, 10:90].all() and not grown[70, 22:].any()


def test_a_speck_grows_by_a_pixel_at_its_own_colour_and_no_further():
    """A found speck whose edge the cuts left out takes the edge pixels at its own colour that stand
    out as specks; picture beside it (another level, or no contrast), and a scratch, do not grow."""
    image = add_gaussian_noise(np.full((64, 96, 3), 0.35, np.float32), 5, rng=4)
    speck = np.zeros((64, 96), np.uint8)
    cv2.circle(speck, (20, 30), 3, 1, -1)
    speck = speck > 0
    image[speck] = 0.92
    found = cv2.erode(speck.view(np.uint8), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))).view(bool)  # its core
    image[24:37, 24] = 0.8  # a picture line at another level touching its edge
    scratch = np.zeros_like(speck)
    scratch[50, 10:80] = True
    image[50, 10:90] = 0.92  # a found scratch that runs on: step 14's business, not this step's
    features = _features(image)
    grown = detect._grown_specks(image, found | scratch, features, 1)
    np.testing.assert_array_equal(grown & speck, speck)
    assert not (grown & ~speck & ~scratch).any()
    assert not (detect._grown_specks(image, found | scratch, features, 3) & ~speck & ~scratch).any()


def test_a_dark_speck_on_a_light_scratch_grows_at_its_own_colour():
    """Light and dark flagged pixels are separate defects: a dark speck whose lower half the cuts
    left out, touching a found light scratch, takes that half back at its own colour, while the
    scratch, a defect of its own, stays as found."""
    image = add_gaussian_noise(np.full((64, 96, 3), 0.45, np.float32), 5, rng=5)
    scratch, speck = np.zeros((64, 96), bool), np.zeros((64, 96), np.uint8)
    scratch[30, 10:70] = True
    image[scratch] = 0.93
    cv2.circle(speck, (40, 33), 3, 1, -1)
    speck = speck > 0
    image[speck] = 0.05
    rows = np.arange(64)[:, None]
    found = (scratch & ~speck) | (speck & (rows <= 33))
    grown = detect._grown_specks(image, found, _features(image), 3)
    np.testing.assert_array_equal(grown, found | speck)


def test_picture_pinched_by_a_dark_scratch_is_not_light_debris():
    """A 4-px strip of a bright area cut off by a dark scratch beside a dark area is, to the
    top-hat, a light line; once the scratch is filled it is the bright area again."""
    image = np.full((64, 64, 1), 0.88, np.float32)
    image[:, :24] = 0.1
    image = add_gaussian_noise(image, 5, rng=2)
    scratch = np.zeros((64, 64), bool)
    scratch[8:56, 28:30] = True
    image[scratch] = 0.06
    strip = np.zeros_like(scratch)
    strip[12:52, 24:28] = True
    without = detect_damage(image, detect.REPAIR_MARGIN, detect.REPAIR._replace(apart=False))
    with_test = detect_damage(image, detect.REPAIR_MARGIN, detect.REPAIR)
    assert (without & strip).sum() > 0.5 * strip.sum()
    assert not (with_test & strip).any()
    repair = repair_mask(image)  # the looser reading's specks, grown 2 px, touch the strip's end
    assert (repair & strip).sum() <= 0.05 * strip.sum()
    assert (repair & scratch).sum() >= 0.95 * scratch.sum()


def test_a_light_speck_touching_a_dark_scratch_stands_apart():
    """Judged with the scratch filled, a real speck beside it still stands out and stays whole; the
    scratch, judged with the speck and its 1-px edge filled, loses at most the pixels that edge
    covers (the repair mask's extension, step 9, takes them back)."""
    image = add_gaussian_noise(np.full((64, 64, 3), 0.45, np.float32), 5, rng=3)
    scratch, speck = np.zeros((64, 64), bool), np.zeros((64, 64), np.uint8)
    scratch[8:56, 30] = True
    cv2.circle(speck, (33, 32), 2, 1, -1)
    speck = speck > 0
    image[scratch], image[speck] = 0.05, 0.95
    features = _features(image)
    light, dark = detect._standing_apart(image, (speck, scratch), (speck, scratch), features, detect.REPAIR)
    np.testing.assert_array_equal(light, speck)
    edge = cv2.dilate(speck.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    np.testing.assert_array_equal(dark | (scratch & edge), scratch)
    assert repair_mask(image)[scratch | speck].all()


@pytest.mark.parametrize("value, width", [(0.97, 1), (0.97, 2), (0.03, 2)])
def test_repair_mask_is_pixel_tight_around_a_scratch(value, width):
    """A hard-edged scratch is repaired over its own pixels, not a margin of picture around it:
    the pixels beside a thin scratch are what constrains its fill."""
    image = add_gaussian_noise(_gradient(), 5, rng=0)
    truth = np.zeros(image.shape[:2], np.uint8)
    cv2.line(truth, (10, 20), (110, 70), 1, width)
    truth = truth.astype(bool)
    image[truth] = value
    repair = repair_mask(image)
    assert (truth & repair).sum() >= 0.98 * truth.sum()
    assert (repair & ~truth).sum() <= 0.05 * truth.sum() < (detect_damage(image) & ~truth).sum()


def _faint_speck() -> tuple[np.ndarray, np.ndarray]:
    """A speck of level 0.84 on grainy 0.62 grey: contrast 0.22, under the seed bar of 0.25."""
    image = add_gaussian_noise(np.full((64, 64, 3), 0.62, np.float32), 5, rng=0)
    truth = np.zeros((64, 64), np.uint8)
    cv2.circle(truth, (30, 30), 2, 1, -1)
    cv2.circle(image, (30, 30), 2, (0.84,) * 3, -1)
    return image, truth.astype(bool)


def test_repair_mask_adds_a_faint_speck_the_network_vouches_for():
    image, truth = _faint_speck()
    assert not (detect_damage(image) & truth).any()
    repair = repair_mask(image)
    assert (repair & truth).sum() == truth.sum() and (repair & ~truth).sum() <= 2


@pytest.mark.parametrize("grey", [False, True])
@pytest.mark.parametrize("offset, found", [(-1.0, False), (-0.01, False), (0.01, True)])
def test_the_network_gate_decides_on_loose_candidates(monkeypatch, offset, found, grey):
    """The loose candidates are kept exactly when the network's score reaches the gate (the
    looser reading's: the repair mask holds what either reading finds; a greyscale scan's own)."""
    image, truth = _faint_speck()
    if grey:
        image = image.mean(axis=2, keepdims=True)
    score = max((detect.REPAIR_LOOSE_GREY if grey else detect.REPAIR_LOOSE).gate + offset, 0.0)
    monkeypatch.setattr(detect.TileScores, "at", lambda self, where=None: np.full((self.height, self.width), score, np.float32))
    assert (repair_mask(image) & truth).any() == found


def test_repair_mask_is_the_strict_and_the_loose_reading_together():
    """A looser reading alone can drop damaged pixels the strict one holds (its cuts are not
    monotone), so the repair mask is both; sharing the network's scores changes neither."""
    damaged, _ = add_scratches(add_gaussian_noise(synthetic_photo(128, 160, 3).mean(axis=2, keepdims=True), 4, rng=3), rng=3)
    strict = detect_damage(damaged, detect.REPAIR_MARGIN, detect.REPAIR)
    loose = detect_damage(damaged, detect.REPAIR_MARGIN, detect.REPAIR_LOOSE_GREY)  # a greyscale scan's
    assert (loose & ~strict).any()
    np.testing.assert_array_equal(repair_mask(damaged), detect._fill_holes(strict | loose, detect.REPAIR_HOLE))


def test_repair_mask_fills_its_small_holes_at_the_debris_level(monkeypatch):
    """An unflagged pixel inside the repair mask is context the flow leans on from every side, so a
    hole of up to REPAIR_HOLE px at the level of the debris around it is filled; a hole showing
    picture, a larger one and a gap open to the border are not."""
    image = np.full((64, 64, 3), 0.5, np.float32)
    readings = np.zeros((64, 64), bool)
    for top in (5, 20):  # two specks with a 1-px hole each
        readings[top : top + 5, 5:10] = True
        image[top : top + 5, 5:10] = 0.95
        readings[top + 2, 7] = False
    image[7, 7] = 0.93  # the speck's own pixel, a little darker
    image[22, 7] = 0.5  # picture showing through
    readings[40:47, 20:27] = True
    image[40:47, 20:27] = 0.95
    readings[42:45, 22:25] = False  # a 9-px hole
    readings[40:45, 0:5] = True
    image[40:45, 0:5] = 0.95
    readings[42, 0:3] = False  # a gap open to the left border
    monkeypatch.setattr(detect, "_detect_band", lambda *args: readings.copy())
    expected = readings.copy()
    expected[7, 7] = True
    np.testing.assert_array_equal(repair_mask(image), expected)


def test_repair_mask_stops_when_asked():
    """The caller's stop check is polled between readings and network tiles; it changes nothing
    while it says no."""
    damaged, _ = add_scratches(synthetic_photo(128, 160, 3), rng=3)
    polls = []

    def stop_at_the_third_poll() -> bool:
        polls.append(1)
        return len(polls) >= 3

    with pytest.raises(detect.DetectionStopped):
        repair_mask(damaged, should_stop=stop_at_the_third_poll)
    assert len(polls) == 3
    np.testing.assert_array_equal(repair_mask(damaged, should_stop=lambda: False), repair_mask(damaged))


def test_a_job_stopped_while_looking_for_damage_is_cancelled_and_writes_nothing(tmp_path):
    from restorer_app.jobs.restore_file import AUTO_MASK, restore_file
    from restorer_app.restore.pipeline import RestoreCancelled
    from restorer_app.restore.settings import RestoreSettings

    source, output = tmp_path / "scan.png", tmp_path / "out.png"
    Image.fromarray((synthetic_photo(64, 64, 1) * 255).astype(np.uint8)).save(source)
    with pytest.raises(RestoreCancelled, match="looking for damage"):
        restore_file(source, output, RestoreSettings(preset="fast", device="cpu"), mask_path=AUTO_MASK,
                     should_stop=lambda: True)
    assert not output.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["scan.png"]


@pytest.mark.parametrize("channels, grey", [(1, True), (3, True), (3, False)])
def test_greyscale_scans_are_read_by_the_greyscale_network(monkeypatch, channels, grey):
    """A scan with one channel, or three equal ones, is scored by the network fine-tuned on
    greyscale crops; any colour at all, by the other."""
    image, _ = _faint_speck()
    if grey:
        image = np.repeat(image.mean(axis=2, keepdims=True), channels, axis=2)
    asked = []
    load = detect._damage_net
    monkeypatch.setattr(detect, "_damage_net", lambda greyscale: asked.append(greyscale) or load(greyscale))
    repair_mask(image)
    assert asked == [grey]


def test_a_reading_with_only_the_sure_specks_loads_the_network_too():
    """Every step that asks the network gets its scores, whichever of them a reading uses."""
    image, truth = _faint_speck()
    image[truth] = 0.97
    found = detect_damage(image, detect.REPAIR_MARGIN, detect.REPAIR._replace(gate=0.0, margin_gate=0.0))
    assert found[truth].all()


def test_the_network_gate_judges_each_pixel_of_a_candidate(monkeypatch):
    """Only the pixels the network vouches for join, not the whole candidate they were grown in
    (a candidate grown through texture also holds picture)."""
    image, truth = _faint_speck()
    vouched = np.zeros(truth.shape, bool)
    vouched[:, :30] = True
    scores = np.where(vouched, detect.REPAIR.gate + 0.01, 0.0).astype(np.float32)
    monkeypatch.setattr(detect.TileScores, "at", lambda self, where=None: scores)
    gated = detect.detect_damage(image, detect.REPAIR_MARGIN, detect.REPAIR._replace(speck_growth=0))
    assert (gated & truth & vouched).sum() == (truth & vouched).sum() > 0
    assert not (gated & ~vouched).any()
    # the growth of step 16 then takes the speck's edge beyond the vouched half, and only that
    grown = repair_mask(image) & ~gated
    assert grown.any() and not (grown & ~truth).any() and not grown[:, 32:].any()


def test_a_kept_defect_far_from_the_fill_survives_the_nearer_level_test():
    """A speck flagged before the margin stays even when the flagged region it touches is mostly
    picture of another level (the region's median is then far from the speck's own level)."""
    colour = np.full((40, 40, 3), 0.05, np.float32)
    core = np.zeros((40, 40), bool)
    core[18:21, 10:13] = True
    colour[core] = 1.0
    mask = core.copy()
    mask[16:23, 13:20] = True  # picture at 0.5 beside it, flagged by the margin: 49 px against 9
    colour[16:23, 13:20] = 0.5
    tuning = detect.REPAIR
    assert not (detect._deviating(colour, mask, np.zeros_like(core), tuning) & core).any()
    assert (detect._deviating(colour, mask, core, tuning) & core).sum() == core.sum()


@pytest.mark.parametrize("score, margin_kept", [(0.19, False), (0.21, True)])
def test_the_margin_stays_only_where_the_network_reads_damage(monkeypatch, score, margin_kept):
    """The pixels the 2-px margin adds around a defect are kept exactly where the network scores
    them at least ``margin_gate``; the defect's own pixels do not depend on it."""
    image, truth = _faint_speck()
    image[truth] = 0.97  # a speck the seeds find, whatever the network says
    image[26:35, 33] = 0.35  # a dark line of picture beside it: far from the fill, yet not debris
    monkeypatch.setattr(detect.TileScores, "at", lambda self, where=None: np.full((self.height, self.width), score, np.float32))
    ungated = detect.detect_damage(image, detect.REPAIR_MARGIN, detect.REPAIR._replace(margin_gate=0.0))
    core = detect.detect_damage(image, 0, detect.REPAIR._replace(tight=0.0, nearer_level=0.0))
    assert (ungated & ~core).any() and truth.sum() == (core & truth).sum()
    expected = ungated if margin_kept else ungated & core
    np.testing.assert_array_equal(repair_mask(image), expected)


def test_the_networks_surest_specks_are_added_and_nothing_else():
    """Specks the network is sure of (score >= peak, near-extreme level, at most 80 px) join
    the repair mask even when no candidate proposed them, the faintest painted ones (level 0.78,
    under the seed bar) too; large, mid-grey or doubtful marks do not."""
    class Scores:
        scores = np.zeros((64, 96), np.float32)
    level = np.full((64, 96), 0.4, np.float32)
    marks = {"speck": (slice(5, 9), slice(5, 9)), "faint": (slice(50, 54), slice(60, 62)),
             "blob": (slice(20, 40), slice(5, 25)), "grey": (slice(5, 9), slice(40, 44)),
             "doubtful": (slice(5, 9), slice(60, 64))}
    levels = {"faint": 0.78, "grey": 0.7}
    for name, where in marks.items():
        Scores.scores[where] = 0.5 if name == "doubtful" else 0.95
        level[where] = levels.get(name, 0.95)
    peaks = detect._net_peaks(Scores(), level, np.zeros((64, 96), bool), detect.REPAIR)
    assert peaks[marks["speck"]].all() and peaks[marks["faint"]].all() and peaks.sum() == 16 + 8


def test_a_flagged_pixel_that_looks_like_the_picture_is_dropped():
    """Of the pixels that differ from the fill by the cut, those nearer the fill than their
    defect's own level are picture beside the defect (a highlight of texture), not debris."""
    colour = np.full((32, 32, 3), 0.5, np.float32)
    mask = np.zeros((32, 32), bool)
    mask[14:18, 10:20] = True
    colour[14:17, 10:20] = 0.95  # debris
    colour[17, 10:20] = 0.75  # a bright edge of the picture right beside it, 0.25 from the fill
    core = np.zeros_like(mask)
    core[14:17, 10:20] = True  # what the detector flagged before the margin
    tuning = detect.REPAIR._replace(nearer_level=0.0)
    np.testing.assert_array_equal(detect._deviating(colour, mask, core, tuning), mask)
    kept = detect._deviating(colour, mask, core, detect.REPAIR)
    assert kept[14:17, 10:20].all() and not kept[17].any()


@pytest.mark.parametrize("name", ["photo with discs and stripes", "flat grey", "fine sine texture"])
def test_repair_mask_leaves_grain_and_texture_almost_alone(name):
    grainy = add_gaussian_noise(_patterns()[name], 5, rng=1)
    assert repair_mask(grainy).mean() <= 0.005


@pytest.mark.parametrize("shape", [(1, 1), (1, 1, 3), (2, 3, 4), (5, 1, 1), (7, 9, 2), (3, 40, 3)])
def test_tiny_images_do_not_crash(shape):
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    assert detect_damage(image).shape == shape[:2] and detect_damage(image).dtype == bool
    assert repair_mask(image).shape == shape[:2] and repair_mask(image).dtype == bool
    assert tophat_baseline(image).shape == shape[:2]


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_blank_image_has_no_damage(value):
    assert not detect_damage(np.full((40, 50, 3), value, np.float32)).any()


def test_bad_shape_is_a_value_error():
    with pytest.raises(ValueError, match="channels"):
        detect_damage(np.zeros((4, 4, 5), np.float32))


def test_grain_estimate_matches_the_added_noise():
    grainy = add_gaussian_noise(np.full((128, 128, 1), 0.5, np.float32), 5, rng=0)[:, :, 0]
    assert estimate_grain(grainy) == pytest.approx(5 / 255, rel=0.15)


def _save(path, pixels: np.ndarray, bits: int = 8) -> None:
    top = 255 if bits == 8 else 65535
    data = np.round(np.clip(pixels, 0, 1) * top).astype(np.uint8 if bits == 8 else np.uint16)
    Image.fromarray(data[:, :, 0] if data.shape[2] == 1 else data).save(path)


@pytest.mark.parametrize("kind", ["rgb8", "grey16", "rgba8"])
def test_cli_writes_an_8bit_mask_of_the_image_size(tmp_path, capsys, kind):
    damaged, truth = add_scratches(synthetic_photo(50, 70, 6), rng=6)
    if kind == "grey16":
        damaged = damaged.mean(axis=2, keepdims=True)
    if kind == "rgba8":
        damaged = np.concatenate([damaged, np.ones((50, 70, 1), np.float32)], axis=2)
    scan, out = tmp_path / "scan.png", tmp_path / "mask.png"
    _save(scan, damaged, 16 if kind == "grey16" else 8)
    assert cli_main(["detect", str(scan), "-o", str(out)]) == 0
    mask = Image.open(out)
    assert mask.mode == "L" and mask.size == (70, 50)
    values = np.asarray(mask)
    assert set(np.unique(values)) <= {0, 255}
    assert tolerant_scores(values == 255, truth)["recall"] >= 0.9  # the union keeps what the chain finds
    assert np.array_equal(values == 255, find_damage(read_image(scan).pixels).repair)  # what --mask auto repairs
    line = capsys.readouterr().out.strip()
    assert line.startswith("wrote ") and "% of the pixels flagged" in line


def test_cli_blank_image_writes_an_empty_mask(tmp_path, capsys):
    scan, out = tmp_path / "blank.png", tmp_path / "mask.png"
    _save(scan, np.full((20, 30, 3), 0.5, np.float32))
    assert cli_main(["detect", str(scan), "-o", str(out)]) == 0
    assert not np.asarray(Image.open(out)).any()
    assert "no damage found" in capsys.readouterr().out


def test_cli_refuses_to_overwrite_unless_asked(tmp_path, capsys):
    scan, out = tmp_path / "scan.png", tmp_path / "mask.png"
    _save(scan, synthetic_photo(20, 30))
    out.write_bytes(b"keep me")
    assert cli_main(["detect", str(scan), "-o", str(out)]) == 2
    assert out.read_bytes() == b"keep me"
    assert cli_main(["detect", str(scan), "-o", str(out), "--overwrite"]) == 0
    assert Image.open(out).size == (30, 20)
    capsys.readouterr()


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    scan = tmp_path / "scan.png"
    _save(scan, synthetic_photo(20, 30))
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    cases = [
        [str(tmp_path / "missing.png"), "-o", str(tmp_path / "a.png")],
        [str(text), "-o", str(tmp_path / "b.png")],
        [str(scan), "-o", str(tmp_path / "c.jpg")],
        [str(scan), "-o", str(scan)],
        [str(scan), "-o", str(tmp_path / "no-such-folder" / "d.png")],
    ]
    for args in cases:
        assert cli_main(["detect", *args]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("restorer: error: "), err
        assert "Traceback" not in err[0]
    assert not any(tmp_path.glob("*.part"))
